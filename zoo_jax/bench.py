"""JAX benchmarked the way its experts run it: one `jax.jit` executable per cell (compiled ahead of the
timed rounds, its compile time reported apart), inputs already on the device, parameters, statistics
and momentum donated to the training step, bfloat16 compute on GPU, and `block_until_ready` before
every clock read (JAX dispatches asynchronously)."""
from __future__ import annotations

import os
import time

import zoo
from zoo.benchtools import HostMemory, ReferenceCatalogue, best_seconds
from zoo.contract import BenchCell, Prepared, Skip

# Flax ships no model zoo of these architectures, so JAX has no reference column.
REFERENCES = ReferenceCatalogue("flax")
reference_name, reference_variant = REFERENCES.name, REFERENCES.variant


def _set_threads(threads: int | None) -> None:
    # XLA's CPU thread pool is as large as the CPUs the process may run on, read once when the backend
    # starts (before the first array): narrowing the affinity of this worker process is what sets it.
    if threads and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:threads])


def bare_loop(name: str, batch: int, threads: int | None):
    """run(n): n calls of the jitted forward pass and one `block_until_ready` (`compare.baseline`)."""
    _set_threads(threads)
    import jax

    from .steps import inference

    spec = zoo.get_spec(name)
    size = spec.input_size[1]
    model = zoo.create_model(name, "jax")
    forward, params, rest = inference(model)
    forward = jax.jit(forward)
    x = jax.random.normal(jax.random.key(0), (batch, size, size, spec.in_channels), "float32")
    forward(params, rest, x).block_until_ready()

    def run(n):
        out = None
        for _ in range(n):
            out = forward(params, rest, x)
        out.block_until_ready()
    return run


class Runner:
    framework = "jax"

    def __init__(self, device: str, options: dict) -> None:
        _set_threads(options.get("threads"))
        import jax

        self.jax = jax
        self.threads = options.get("threads") or os.cpu_count()
        self.memory = HostMemory()
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        self.unavailable = None
        if device == "cpu" or not gpus:
            self.device, self.jax_device = "cpu", jax.devices("cpu")[0]
            if device == "gpu":
                self.unavailable = f"jax {jax.__version__} sees no GPU ({self._why_no_gpu()})"
        else:
            self.device, self.jax_device = "gpu", gpus[0]
        self.note = (f"GPU {self.jax_device.device_kind}" if self.device == "gpu" else
                     "CPU" + (f" (no GPU visible: {self._why_no_gpu()})" if device == "auto" else ""))
        self.peak_before = 0

    def _why_no_gpu(self) -> str:
        import jax

        try:
            import jax_cuda12_plugin  # noqa: F401
        except ImportError:
            try:
                import jax_cuda13_plugin  # noqa: F401
            except ImportError:
                return "this jaxlib has no CUDA plugin (pip install 'jax[cuda12]')"
        return f"CUDA plugin installed, but no device found (backend {jax.default_backend()})"

    def info(self) -> dict:
        from . import version

        return {"framework_version": version(), "threads": self.threads if self.device == "cpu" else None,
                "device": self.device, "device_note": self.note, "unavailable": self.unavailable}

    def amp_dtype(self) -> str | None:
        return "bfloat16" if self.device == "gpu" else None

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        jax = self.jax
        key_a, key_b = jax.random.split(jax.random.key(0))
        a = jax.device_put(jax.random.normal(key_a, (n, n), dtype), self.jax_device)
        b = jax.device_put(jax.random.normal(key_b, (n, n), dtype), self.jax_device)
        matmul = jax.jit(lambda a, b: a @ b)
        result = {}

        def run():
            result["c"] = matmul(a, b)

        return 2 * n ** 3 / best_seconds(run, lambda: result["c"].block_until_ready()) / 1e9

    def _device_stats(self) -> dict:
        try:
            return self.jax_device.memory_stats() or {}
        except Exception:  # noqa: BLE001  (not every platform keeps statistics)
            return {}

    def memory_start(self) -> None:
        self.memory.start()
        self.peak_before = self._device_stats().get("peak_bytes_in_use", 0)

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "gpu":
            stats = self._device_stats()
            peak = stats.get("peak_bytes_in_use")
            if peak is None:
                return None, "unavailable (the device keeps no memory statistics)"
            method = "device.memory_stats()['peak_bytes_in_use'] (XLA's allocator; the process's peak"
            if peak <= self.peak_before:
                method += ", not exceeded by this cell: an upper bound set by an earlier cell of this worker)"
            else:
                method += ", reached in this cell)"
            return peak / 2 ** 20, method
        return self.memory.peak_mb(), self.memory.method

    def prepare(self, cell: BenchCell) -> Prepared:
        jax = self.jax
        import jax.numpy as jnp

        from .steps import compiler_options, inference, train_step

        if cell.implementation == "reference":
            raise Skip("Flax ships no reference implementation of this model")
        with jax.default_device(self.jax_device):
            model = zoo.create_model(cell.model, "jax", **dict(cell.overrides))
            spec = zoo.get_spec(cell.model)
            batch, size = cell.batch_size, cell.input_size
            key_x, key_y = jax.random.split(jax.random.key(0))
            images = jax.random.normal(key_x, (batch, size, size, spec.in_channels), jnp.float32)
            labels = jax.random.randint(key_y, (batch,), 0, cell.num_classes)
        amp = self.device == "gpu" and cell.amp in ("auto", "on")
        compute_dtype = jnp.bfloat16 if amp else None
        train = cell.mode == "train"
        start = time.perf_counter()
        if not train:
            forward, params, rest = inference(model, compute_dtype)
            params, rest = jax.device_put((params, rest), self.jax_device)
            compiled = jax.jit(forward).lower(params, rest, images).compile()

            def step():
                return compiled(params, rest, images)
        else:
            update, params, rest, buffers = train_step(model, momentum=0.9, weight_decay=0.0,
                                                       compute_dtype=compute_dtype)
            arrays = list(jax.device_put((params, rest, buffers), self.jax_device))
            lr = jnp.asarray(0.01, jnp.float32)
            compiled = jax.jit(update, donate_argnums=(0, 1, 2),
                               compiler_options=compiler_options(self.jax_device)).lower(*arrays, images, labels, lr).compile()

            def step():
                arrays[0], arrays[1], arrays[2], loss = compiled(*arrays, images, labels, lr)
                return loss
        compile_s = time.perf_counter() - start

        def sync(out):
            if out is not None:
                out.block_until_ready()

        parts = ["jax.jit (AOT lower/compile, timed apart)",
                 "eval-mode forward" if not train else "SGD(momentum 0.9) step, cross-entropy, donated buffers",
                 "NHWC"]
        if amp:
            parts.append("bfloat16 compute, float32 parameters")
        parts.append(self.device if self.device == "gpu" else f"cpu, {self.threads} threads")
        notes = [] if not cell.compile else ["JAX always compiles: --compile changes nothing here"]
        return Prepared(step, sync, "jax: " + ", ".join(parts), precision="amp bfloat16" if amp else "fp32",
                        notes=notes, keep=[model, images, labels], compile_s=compile_s)

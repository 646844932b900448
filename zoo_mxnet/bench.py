"""MXNet benchmarked the way its experts run it: `hybridize(static_alloc=True, static_shape=True)`;
`mx.nd.waitall` before every clock read."""
from __future__ import annotations

import os

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import gluon  # noqa: E402

import zoo  # noqa: E402
from zoo.benchtools import RESNET_V1, HostMemory, ReferenceCatalogue, best_seconds  # noqa: E402
from zoo.contract import BenchCell, Prepared  # noqa: E402

# The Gluon model zoo's implementations of the zoo's models.
GLUON_MODEL_ZOO = {
    "alexnet": "alexnet", **{f"vgg{d}": f"vgg{d}" for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": f"vgg{d}_bn" for d in (11, 13, 16, 19)},
    **{f"resnet{d}": f"resnet{d}_v1" for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": f"densenet{d}" for d in (121, 161, 169, 201)},
    "mobilenet_v1": "mobilenet1.0", "mobilenet_v2": "mobilenetv2_1.0",
}
# With the variants the Gluon model zoo builds where they differ from the zoo's model (in work as well as in
# implementation); the zoo builds them with the knobs named.
REFERENCES = ReferenceCatalogue("mxnet.gluon.model_zoo.vision", GLUON_MODEL_ZOO, {
    f"resnet{d}": RESNET_V1.format("") for d in (50, 101, 152)})
reference_name, reference_variant = REFERENCES.name, REFERENCES.variant


def bare_loop(name: str, batch: int, threads: int | None):
    """run(n): n inference calls and one synchronisation, written out by hand (`compare.baseline`).

    MXNet takes its thread count from OMP_NUM_THREADS when it starts, which the caller sets."""
    spec = zoo.get_spec(name)
    size = spec.input_size[1]
    model = zoo.create_model(name, "mxnet")
    model.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.normal(shape=(batch, spec.in_channels, size, size))

    def run(n):
        for _ in range(n):
            model(x)
        mx.nd.waitall()
    return run


class Runner:
    framework = "mxnet"

    def __init__(self, device: str, options: dict) -> None:
        self.mx = mx
        self.memory = HostMemory()
        gpus = mx.context.num_gpus()
        self.unavailable = None
        if device == "cpu" or gpus == 0:
            self.device = "cpu"
            if device == "gpu":
                self.unavailable = f"mxnet {mx.__version__} sees no GPU ({self._why_no_gpu()})"
        else:
            self.device = "gpu"
        self.ctx = mx.gpu(0) if self.device == "gpu" else mx.cpu()
        self.note = (f"GPU {self.ctx}" if self.device == "gpu" else
                     "CPU" + (f" (no GPU: {self._why_no_gpu()})" if device == "auto" else ""))

    def _why_no_gpu(self) -> str:
        try:
            cuda = mx.runtime.Features().is_enabled("CUDA")
        except Exception:  # noqa: BLE001
            cuda = False
        if not cuda:
            return ("this MXNet build has no CUDA; MXNet's last GPU wheels (1.9.1) target CUDA 11, "
                    "older than this machine's CUDA stack")
        return "CUDA build, but no device found"

    def info(self) -> dict:
        return {"framework_version": mx.__version__,
                "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count(),
                "device": self.device, "device_note": self.note, "unavailable": self.unavailable}

    def amp_dtype(self) -> str | None:
        return None  # AMP is not used for MXNet in this harness

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        a = mx.nd.random.normal(shape=(n, n), ctx=self.ctx).astype(dtype)
        b = mx.nd.random.normal(shape=(n, n), ctx=self.ctx).astype(dtype)
        return 2 * n ** 3 / best_seconds(lambda: mx.nd.dot(a, b), mx.nd.waitall) / 1e9

    def memory_start(self) -> None:
        mx.nd.waitall()
        self.memory.start()

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "gpu":
            free, total = mx.context.gpu_memory_info(0)
            return ((total - free) / 2 ** 20,
                    "GPU memory in use at the end of the cell (mx.context.gpu_memory_info; MXNet keeps no peak)")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: BenchCell):
        if cell.implementation == "reference":
            from mxnet.gluon.model_zoo import vision

            model = vision.get_model(GLUON_MODEL_ZOO[cell.model], pretrained=False, classes=cell.num_classes)
            model.initialize(mx.init.Xavier(), ctx=self.ctx)
            return model
        model = zoo.create_model(cell.model, "mxnet", **dict(cell.overrides))
        model.collect_params().reset_ctx(self.ctx)
        return model

    def prepare(self, cell: BenchCell) -> Prepared:
        model = self.build(cell)
        model.hybridize(static_alloc=True, static_shape=True)
        spec = zoo.get_spec(cell.model)
        batch, size = cell.batch_size, cell.input_size
        images = mx.nd.random.normal(shape=(batch, spec.in_channels, size, size), ctx=self.ctx)
        labels = mx.nd.array(np.random.default_rng(0).integers(0, cell.num_classes, batch), ctx=self.ctx)
        train = cell.mode == "train"
        if not train:
            def step():
                return model(images)
        else:
            from .training import forward_backward

            trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})

            def step():
                loss = forward_backward(model, images, labels)  # the batch mean (and its gradients)
                trainer.step(1)
                return loss

        def sync(out):
            mx.nd.waitall()

        amp_asked = cell.amp in ("auto", "on") and self.device == "gpu"
        notes = ["AMP not used for MXNet in this harness (fp32)"] if amp_asked else []
        parts = ["hybridize(static_alloc=True, static_shape=True)",
                 "inference (autograd off)" if not train else "SGD(momentum 0.9) step, cross-entropy",
                 self.device]
        return Prepared(step, sync, "mxnet: " + ", ".join(parts), notes=notes, keep=[model, images, labels])

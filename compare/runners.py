"""How each framework is run for a benchmark, the way its own experts run it.

A runner lives in a worker process of its framework (see `worker.py`). It answers:
`probe()` (which device it will use, and why), `machine_peak()` (FLOP/s of a large float32 matrix
product on that device), `prepare(cell)` (build the model, put synthetic inputs on the device, compile
and warm up, returning a `Prepared` with a `step()` and a `sync()`), and memory measurement.

Timing rule everywhere: the clock is read only after the device has finished the work queued before
it (`torch.cuda.synchronize`, `mx.nd.waitall`, reading a TensorFlow result back to the host).
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import zoo

# Matrix size of the peak probe per device: about 17 GFLOP on CPU, 1.1 TFLOP on GPU, large enough
# that the product runs at the BLAS's full speed and small enough for a few seconds in all.
PEAK_N = {"cpu": 2048, "gpu": 8192}
PEAK_MIN_REPEAT, PEAK_MAX_REPEAT, PEAK_MIN_S = 5, 50, 1.0


@dataclass
class Prepared:
    step: Callable[[], Any]          # one iteration: inference forward pass, or a full SGD step
    sync: Callable[[Any], None]      # wait for the device; gets the last step's result
    method: str                      # how the framework was run, for the results
    precision: str = "fp32"
    notes: list[str] = field(default_factory=list)
    keep: list[Any] = field(default_factory=list)  # objects that must live as long as the cell


class Skip(Exception):
    """The cell cannot run here for a reason that is not a failure (e.g. a reference not installed)."""


# ---------------------------------------------------------------- host memory

def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _malloc_trim() -> None:
    # Hand freed heap pages back to the OS so that a cell's baseline RSS does not hide its own peak
    # behind memory the previous cell freed but glibc kept.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class HostMemory:
    """Peak resident memory of this process during a cell: VmHWM after a reset, minus VmRSS at the start."""

    def start(self) -> None:
        gc.collect()
        _malloc_trim()
        self.base = _status_kb("VmRSS")
        self.resettable = False
        try:  # writing 5 to clear_refs resets the high-water mark (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.resettable = True
        except OSError:
            pass
        self.hwm_at_start = _status_kb("VmHWM")

    def peak_mb(self) -> float | None:
        hwm = _status_kb("VmHWM")
        if hwm is None or self.base is None:
            return None
        return max(0, hwm - self.base) / 1024

    @property
    def method(self) -> str:
        if self.base is None:
            return "unavailable (no /proc/self/status)"
        if self.resettable:
            return "host RSS high-water mark (VmHWM, reset per cell via /proc/self/clear_refs) minus RSS at cell start"
        return ("host RSS high-water mark since the worker started (VmHWM; clear_refs not permitted) minus RSS at "
                "cell start: may include earlier cells of this worker")


def timed_rounds(prepared: Prepared, iterations: int) -> float:
    """Seconds for `iterations` steps, the device synchronised before the clock is read at both ends."""
    prepared.sync(None)
    start = time.perf_counter()
    out = None
    for _ in range(iterations):
        out = prepared.step()
    prepared.sync(out)
    return time.perf_counter() - start


def _best_seconds(run: Callable[[], None], sync: Callable[[], None]) -> float:
    """The fastest of repeated timed calls (at least PEAK_MIN_REPEAT and PEAK_MIN_S in all), after an
    untimed one. A peak is a best case: slower calls are the machine's noise, not its capability."""
    run()
    sync()
    times: list[float] = []
    while len(times) < PEAK_MAX_REPEAT and (len(times) < PEAK_MIN_REPEAT or sum(times) < PEAK_MIN_S):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------- references

# Each framework's own implementation of the same architecture, where it ships one.
TORCHVISION = {  # torchvision uses the zoo's names
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet161", "densenet169",
    "densenet201", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "efficientnet_b0", "efficientnet_b1",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
    "efficientnet_b7",
}
KERAS_APPLICATIONS = {
    "vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
    "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
    "mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNetV2", "mobilenet_v3_large": "MobileNetV3Large",
    "mobilenet_v3_small": "MobileNetV3Small",
    **{f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)},
}
GLUON_MODEL_ZOO = {
    "alexnet": "alexnet", **{f"vgg{d}": f"vgg{d}" for d in (11, 13, 16, 19)},
    **{f"vgg{d}_bn": f"vgg{d}_bn" for d in (11, 13, 16, 19)},
    **{f"resnet{d}": f"resnet{d}_v1" for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": f"densenet{d}" for d in (121, 161, 169, 201)},
    "mobilenet_v1": "mobilenet1.0", "mobilenet_v2": "mobilenetv2_1.0",
}


# References that build another variant of the architecture than the zoo's model, so that the two differ
# in work as well as in implementation. The zoo builds the reference's variant with the knobs named.
_RESNET_V1 = ("ResNet v1: the stride in each bottleneck's first 1x1 convolution (about 6% fewer multiply-adds "
              "than the zoo's v1.5){}; zoo.create_model(..., stride_in_1x1=True) builds it")
REFERENCE_VARIANTS = {
    **{("tf", f"resnet{d}"): _RESNET_V1.format(", and biased convolutions") for d in (50, 101, 152)},
    **{("mxnet", f"resnet{d}"): _RESNET_V1.format("") for d in (50, 101, 152)},
}


def reference_name(framework: str, model: str) -> str | None:
    """The dotted name of `framework`'s own implementation of `model`, or None where it has none."""
    if framework == "torch" and model in TORCHVISION:
        return f"torchvision.models.{model}"
    if framework == "tf" and model in KERAS_APPLICATIONS:
        return f"keras.applications.{KERAS_APPLICATIONS[model]}"
    if framework == "mxnet" and model in GLUON_MODEL_ZOO:
        return f"mxnet.gluon.model_zoo.vision.{GLUON_MODEL_ZOO[model]}"
    return None


# ---------------------------------------------------------------- PyTorch

class TorchRunner:
    framework = "torch"

    def __init__(self, device: str, options: dict) -> None:
        import torch

        self.torch = torch
        self.options = options
        if options.get("threads"):
            torch.set_num_threads(options["threads"])
        self.requested = device
        self.memory = HostMemory()
        cuda = torch.cuda.is_available()
        if device == "gpu" and not cuda:
            self.device, self.unavailable = "cpu", f"torch {torch.__version__} sees no CUDA GPU ({self._why_no_cuda()})"
        else:
            self.unavailable = None
            self.device = "cuda" if (cuda and device in ("gpu", "auto")) else "cpu"
        if self.device == "cuda":
            # Let cuDNN time its algorithms for each new input shape and keep the fastest. The autotuning
            # happens in a cell's first call, which the bench times apart from its rounds.
            torch.backends.cudnn.benchmark = True
        self.note = {
            "cpu": "CPU" + (f" (no CUDA GPU visible: {self._why_no_cuda()})" if device == "auto" else ""),
            "cuda": f"GPU {torch.cuda.get_device_name(0)}" if cuda else "",
        }[self.device]

    def _why_no_cuda(self) -> str:
        torch = self.torch
        if torch.version.cuda is None:
            return "this torch build has no CUDA"
        return f"CUDA {torch.version.cuda} build, but no device found"

    def info(self) -> dict:
        torch = self.torch
        return {"framework_version": torch.__version__, "threads": torch.get_num_threads(),
                "device": "gpu" if self.device == "cuda" else "cpu", "device_note": self.note,
                "unavailable": self.unavailable}

    def sync_device(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        torch = self.torch
        a = torch.randn(n, n, device=self.device, dtype=getattr(torch, dtype))
        b = torch.randn(n, n, device=self.device, dtype=getattr(torch, dtype))
        with torch.inference_mode():
            seconds = _best_seconds(lambda: torch.mm(a, b), self.sync_device)
        return 2 * n ** 3 / seconds / 1e9

    def amp_dtype(self) -> str | None:
        """The 16-bit type autocast uses on this device (None on CPU, where AMP is not used)."""
        if self.device != "cuda":
            return None
        return "bfloat16" if self.torch.cuda.is_bf16_supported() else "float16"

    def memory_start(self) -> None:
        self.memory.start()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "cuda":
            return (self.torch.cuda.max_memory_allocated() / 2 ** 20,
                    "torch.cuda.max_memory_allocated (tensors in the caching allocator) during the cell")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: dict):
        if cell["implementation"] == "reference":
            try:
                import torchvision
            except ImportError:
                raise Skip("torchvision is not installed") from None
            return getattr(torchvision.models, cell["model"])(weights=None, num_classes=cell["num_classes"])
        return zoo.create_model(cell["model"], "torch")

    def prepare(self, cell: dict) -> Prepared:
        torch = self.torch
        device = torch.device(self.device)
        model = self.build(cell).to(device)
        spec = zoo.get_spec(cell["model"])
        shape = (cell["batch_size"], spec.in_channels, cell["input_size"], cell["input_size"])
        images = torch.randn(shape, device=device)
        labels = torch.randint(0, cell["num_classes"], (cell["batch_size"],), device=device)
        amp = self.device == "cuda" and cell["amp"] in ("auto", "on")
        amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
        autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp else contextlib.nullcontext
        train = cell["mode"] == "train"
        model.train(train)
        if train:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)

        def make_step(net, x):
            if not train:
                def step():
                    with torch.inference_mode(), autocast():
                        return net(x)
                return step

            def step():
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    loss = torch.nn.functional.cross_entropy(net(x), labels)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                return loss
            return step

        sync = lambda out: self.sync_device()  # noqa: E731
        choice = cell.get("channels_last", "auto")
        notes = []
        if choice == "auto":
            if self.device == "cuda":
                channels_last = amp  # tensor cores want NHWC
            else:
                # "Where it helps": time both memory formats briefly and keep the faster.
                timings = {}
                for fmt in (torch.contiguous_format, torch.channels_last):
                    model = model.to(memory_format=fmt)
                    step = make_step(model, images.contiguous(memory_format=fmt))
                    timed_rounds(Prepared(step, sync, ""), 1)  # first call: allocations, oneDNN primitives
                    timings[fmt] = timed_rounds(Prepared(step, sync, ""), 1)
                channels_last = timings[torch.channels_last] < timings[torch.contiguous_format]
                ratio = timings[torch.contiguous_format] / timings[torch.channels_last]
                notes.append(f"channels_last chosen by trial: {ratio:.2f}x the contiguous speed")
        else:
            channels_last = choice == "on"
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        images = images.contiguous(memory_format=fmt)
        net = torch.compile(model) if cell["compile"] else model
        parts = ["inference_mode" if not train else "SGD(momentum 0.9) step, cross-entropy",
                 "channels_last" if channels_last else "contiguous (NCHW)",
                 "torch.compile" if cell["compile"] else "eager"]
        if amp:
            parts.append(f"autocast {str(amp_dtype).replace('torch.', '')}")
        if self.device == "cuda" and torch.backends.cudnn.benchmark:
            parts.append("cudnn.benchmark (autotuned in the untimed first call)")
        parts.append(f"{self.device}, {torch.get_num_threads()} threads" if self.device == "cpu" else self.device)
        return Prepared(make_step(net, images), sync, "torch: " + ", ".join(parts),
                        precision=f"amp {str(amp_dtype).replace('torch.', '')}" if amp else "fp32", notes=notes,
                        keep=[model, net, images])


# ---------------------------------------------------------------- TensorFlow / Keras

class TFRunner:
    framework = "tf"

    def __init__(self, device: str, options: dict) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self.tf = tf
        self.memory = HostMemory()
        if options.get("threads"):  # before TensorFlow's runtime starts, or it is too late
            tf.config.threading.set_intra_op_parallelism_threads(options["threads"])
        gpus = tf.config.list_physical_devices("GPU")
        self.unavailable = None
        if device == "cpu" or not gpus:
            if gpus:  # hide them, or TensorFlow places every op on the GPU anyway
                tf.config.set_visible_devices([], "GPU")
            self.device = "cpu"
            if device == "gpu":
                self.unavailable = f"tensorflow {tf.__version__} sees no GPU ({self._why_no_gpu()})"
        else:
            for gpu in gpus:  # allocate as needed, so that the memory peak means something
                tf.config.experimental.set_memory_growth(gpu, True)
            self.device = "gpu"
        self.note = "CPU" + (f" (no GPU visible: {self._why_no_gpu()})" if device == "auto" and self.device == "cpu"
                             else "") if self.device == "cpu" else f"GPU {gpus[0].name}"
        self.tf_device = "/GPU:0" if self.device == "gpu" else "/CPU:0"

    def _why_no_gpu(self) -> str:
        build = self.tf.sysconfig.get_build_info()
        if not build.get("is_cuda_build", False):
            return "this TensorFlow build has no CUDA (tensorflow-cpu)"
        return "CUDA build, but no device found"

    def info(self) -> dict:
        tf = self.tf
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        return {"framework_version": tf.__version__, "threads": threads, "device": self.device,
                "device_note": self.note, "unavailable": self.unavailable}

    def amp_dtype(self) -> str | None:
        return "float16" if self.device == "gpu" else None

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        tf = self.tf
        with tf.device(self.tf_device):
            a = tf.cast(tf.random.normal((n, n)), dtype)
            b = tf.cast(tf.random.normal((n, n)), dtype)
            result = {}

            def run():
                result["c"] = tf.linalg.matmul(a, b)

            def sync():
                result["c"][0, 0].numpy()  # reading back waits for the product

            return 2 * n ** 3 / _best_seconds(run, sync) / 1e9

    def memory_start(self) -> None:
        self.memory.start()
        if self.device == "gpu":
            self.tf.config.experimental.reset_memory_stats("GPU:0")

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "gpu":
            return (self.tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20,
                    "tf.config.experimental.get_memory_info('GPU:0')['peak'] during the cell")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: dict):
        if cell["implementation"] == "reference":
            import keras

            size, channels = cell["input_size"], zoo.get_spec(cell["model"]).in_channels
            constructor = getattr(keras.applications, KERAS_APPLICATIONS[cell["model"]])
            kwargs = {}
            if "MobileNetV3" in constructor.__name__:
                kwargs["include_preprocessing"] = False
            return constructor(weights=None, input_shape=(size, size, channels), classes=cell["num_classes"],
                               classifier_activation=None, **kwargs)
        return zoo.create_model(cell["model"], "tf")

    def prepare(self, cell: dict) -> Prepared:
        tf = self.tf
        import keras

        amp = self.device == "gpu" and cell["amp"] in ("auto", "on")
        policy = keras.mixed_precision.global_policy()
        if amp:
            keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            with tf.device(self.tf_device):
                model = self.build(cell)
        finally:
            keras.mixed_precision.set_global_policy(policy)
        spec = zoo.get_spec(cell["model"])
        batch, size = cell["batch_size"], cell["input_size"]
        with tf.device(self.tf_device):
            images = tf.random.normal((batch, size, size, spec.in_channels))
            labels = tf.random.uniform((batch,), 0, cell["num_classes"], dtype=tf.int32)
        jit = bool(cell["compile"])
        train = cell["mode"] == "train"
        if not train:
            forward = tf.function(lambda x: model(x, training=False), jit_compile=jit)

            def step():
                return forward(images)
        else:
            optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
            if amp:
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
            loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

            @tf.function(jit_compile=jit)
            def train_step(x, y):
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    loss = loss_fn(y, tf.cast(logits, tf.float32))
                    scaled = optimizer.scale_loss(loss) if amp else loss
                grads = tape.gradient(scaled, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss

            def step():
                return train_step(images, labels)

        def sync(out):
            if out is not None:
                np.asarray(out)  # reading the result back waits for the device

        parts = ["tf.function" + (" + XLA (jit_compile)" if jit else ""),
                 "model(x, training=False)" if not train else "SGD(momentum 0.9) step, cross-entropy",
                 "NHWC"]
        if amp:
            parts.append("mixed_float16")
        parts.append(self.device)
        return Prepared(step, sync, "tf: " + ", ".join(parts), precision="amp mixed_float16" if amp else "fp32",
                        keep=[model, images, labels])


# ---------------------------------------------------------------- MXNet Gluon

class MXNetRunner:
    framework = "mxnet"

    def __init__(self, device: str, options: dict) -> None:
        import zoo_mxnet  # noqa: F401  (restores numpy.bool before mxnet is imported)
        import mxnet as mx

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
            cuda = self.mx.runtime.Features().is_enabled("CUDA")
        except Exception:  # noqa: BLE001
            cuda = False
        if not cuda:
            return ("this MXNet build has no CUDA; MXNet's last GPU wheels (1.9.1) target CUDA 11, "
                    "older than this machine's CUDA stack")
        return "CUDA build, but no device found"

    def info(self) -> dict:
        return {"framework_version": self.mx.__version__,
                "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count(),
                "device": self.device, "device_note": self.note, "unavailable": self.unavailable}

    def amp_dtype(self) -> str | None:
        return None  # AMP is not used for MXNet in this harness

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        mx = self.mx
        a = mx.nd.random.normal(shape=(n, n), ctx=self.ctx).astype(dtype)
        b = mx.nd.random.normal(shape=(n, n), ctx=self.ctx).astype(dtype)
        return 2 * n ** 3 / _best_seconds(lambda: mx.nd.dot(a, b), mx.nd.waitall) / 1e9

    def memory_start(self) -> None:
        self.mx.nd.waitall()
        self.memory.start()

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "gpu":
            free, total = self.mx.context.gpu_memory_info(0)
            return ((total - free) / 2 ** 20,
                    "GPU memory in use at the end of the cell (mx.context.gpu_memory_info; MXNet keeps no peak)")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: dict):
        mx = self.mx
        if cell["implementation"] == "reference":
            from mxnet.gluon.model_zoo import vision

            model = vision.get_model(GLUON_MODEL_ZOO[cell["model"]], pretrained=False, classes=cell["num_classes"])
            model.initialize(mx.init.Xavier(), ctx=self.ctx)
            return model
        model = zoo.create_model(cell["model"], "mxnet")
        model.collect_params().reset_ctx(self.ctx)
        return model

    def prepare(self, cell: dict) -> Prepared:
        mx = self.mx
        from mxnet import autograd, gluon

        model = self.build(cell)
        model.hybridize(static_alloc=True, static_shape=True)
        spec = zoo.get_spec(cell["model"])
        batch, size = cell["batch_size"], cell["input_size"]
        images = mx.nd.random.normal(shape=(batch, spec.in_channels, size, size), ctx=self.ctx)
        labels = mx.nd.array(np.random.default_rng(0).integers(0, cell["num_classes"], batch), ctx=self.ctx)
        train = cell["mode"] == "train"
        if not train:
            def step():
                return model(images)
        else:
            trainer = gluon.Trainer(model.collect_params(), "sgd", {"learning_rate": 0.01, "momentum": 0.9})
            loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

            def step():
                with autograd.record():
                    loss = loss_fn(model(images), labels)
                loss.backward()
                trainer.step(batch)
                return loss

        def sync(out):
            mx.nd.waitall()

        notes = ["AMP not used for MXNet in this harness (fp32)"] if cell["amp"] in ("auto", "on") and self.device == "gpu" else []
        parts = ["hybridize(static_alloc=True, static_shape=True)",
                 "inference (autograd off)" if not train else "SGD(momentum 0.9) step, cross-entropy",
                 self.device]
        return Prepared(step, sync, "mxnet: " + ", ".join(parts), notes=notes, keep=[model, images, labels])


RUNNERS = {"torch": TorchRunner, "tf": TFRunner, "mxnet": MXNetRunner}

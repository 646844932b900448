"""TensorFlow benchmarked the way its experts run it: `tf.function`, XLA (`jit_compile`) optional,
mixed_float16 on GPU; a result read back to the host before every clock read (that waits for the
device)."""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

import zoo
from zoo.benchtools import RESNET_V1, HostMemory, ReferenceCatalogue, best_seconds
from zoo.contract import BenchCell, Prepared

# keras.applications' implementations of the zoo's models.
KERAS_APPLICATIONS = {
    "vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
    "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
    "mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNetV2", "mobilenet_v3_large": "MobileNetV3Large",
    "mobilenet_v3_small": "MobileNetV3Small",
    **{f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)},
}
# With the variants keras.applications builds where they differ from the zoo's model (in work as well as in
# implementation); the zoo builds them with the knobs named.
REFERENCES = ReferenceCatalogue("keras.applications", KERAS_APPLICATIONS, {
    f"resnet{d}": RESNET_V1.format(", and biased convolutions") for d in (50, 101, 152)})
reference_name, reference_variant = REFERENCES.name, REFERENCES.variant


def bare_loop(name: str, batch: int, threads: int | None):
    """run(n): n inference calls and one synchronisation, written out by hand (`compare.baseline`)."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    spec = zoo.get_spec(name)
    size = spec.input_size[1]
    model = zoo.create_model(name, "tf")
    x = tf.random.normal((batch, size, size, spec.in_channels))
    forward = tf.function(lambda t: model(t, training=False))

    def run(n):
        out = None
        for _ in range(n):
            out = forward(x)
        np.asarray(out)
    return run


class Runner:
    framework = "tf"

    def __init__(self, device: str, options: dict) -> None:
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
        build = tf.sysconfig.get_build_info()
        if not build.get("is_cuda_build", False):
            return "this TensorFlow build has no CUDA (tensorflow-cpu)"
        return "CUDA build, but no device found"

    def info(self) -> dict:
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        return {"framework_version": tf.__version__, "threads": threads, "device": self.device,
                "device_note": self.note, "unavailable": self.unavailable,
                "memory_peak_resets": self.device == "gpu"}  # reset_memory_stats in memory_start

    def amp_dtype(self) -> str | None:
        return "float16" if self.device == "gpu" else None

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        with tf.device(self.tf_device):
            a = tf.cast(tf.random.normal((n, n)), dtype)
            b = tf.cast(tf.random.normal((n, n)), dtype)
            result = {}

            def run():
                result["c"] = tf.linalg.matmul(a, b)

            def sync():
                result["c"][0, 0].numpy()  # reading back waits for the product

            return 2 * n ** 3 / best_seconds(run, sync) / 1e9

    def memory_start(self) -> None:
        self.memory.start()
        if self.device == "gpu":
            tf.config.experimental.reset_memory_stats("GPU:0")

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "gpu":
            return (tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20,
                    "tf.config.experimental.get_memory_info('GPU:0')['peak'] during the cell")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: BenchCell):
        if cell.implementation == "reference":
            size, channels = cell.input_size, zoo.get_spec(cell.model).in_channels
            constructor = getattr(keras.applications, KERAS_APPLICATIONS[cell.model])
            kwargs = {}
            if "MobileNetV3" in constructor.__name__:
                kwargs["include_preprocessing"] = False
            return constructor(weights=None, input_shape=(size, size, channels), classes=cell.num_classes,
                               classifier_activation=None, **kwargs)
        return zoo.create_model(cell.model, "tf", **dict(cell.overrides))

    def prepare(self, cell: BenchCell) -> Prepared:
        amp = self.device == "gpu" and cell.amp in ("auto", "on")
        policy = keras.mixed_precision.global_policy()
        if amp:
            keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            with tf.device(self.tf_device):
                model = self.build(cell)
        finally:
            keras.mixed_precision.set_global_policy(policy)
        spec = zoo.get_spec(cell.model)
        batch, size = cell.batch_size, cell.input_size
        with tf.device(self.tf_device):
            images = tf.random.normal((batch, size, size, spec.in_channels))
            labels = tf.random.uniform((batch,), 0, cell.num_classes, dtype=tf.int32)
        jit = bool(cell.compile)
        train = cell.mode == "train"
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

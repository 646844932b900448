"""PyTorch benchmarked the way its experts run it: `inference_mode`, channels_last where it helps,
`torch.compile` optional, autocast on GPU, cuDNN autotuning; `torch.cuda.synchronize` before every
clock read on GPU."""
from __future__ import annotations

import contextlib

import torch

import zoo
from zoo.benchtools import HostMemory, ReferenceCatalogue, best_seconds, timed_rounds
from zoo.contract import BenchCell, Prepared, Skip

# torchvision's implementations of the zoo's models: torchvision uses the zoo's names.
TORCHVISION = {
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet161", "densenet169",
    "densenet201", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "efficientnet_b0", "efficientnet_b1",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
    "efficientnet_b7",
}
# torchvision builds the zoo's variants (the zoo's names and weights are torchvision's).
REFERENCES = ReferenceCatalogue("torchvision.models", {name: name for name in TORCHVISION})
reference_name, reference_variant = REFERENCES.name, REFERENCES.variant


def bare_loop(name: str, batch: int, threads: int | None):
    """run(n): n inference calls and one synchronisation, written out by hand (`compare.baseline`)."""
    if threads:
        torch.set_num_threads(threads)
    spec = zoo.get_spec(name)
    size = spec.input_size[1]
    model = zoo.create_model(name, "torch").eval()
    x = torch.randn(batch, spec.in_channels, size, size)

    def run(n):
        with torch.inference_mode():
            for _ in range(n):
                model(x)
    return run


class Runner:
    framework = "torch"

    def __init__(self, device: str, options: dict) -> None:
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
        if torch.version.cuda is None:
            return "this torch build has no CUDA"
        return f"CUDA {torch.version.cuda} build, but no device found"

    def info(self) -> dict:
        return {"framework_version": torch.__version__, "threads": torch.get_num_threads(),
                "device": "gpu" if self.device == "cuda" else "cpu", "device_note": self.note,
                "unavailable": self.unavailable, "memory_peak_resets": self.device == "cuda"}

    def sync_device(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        a = torch.randn(n, n, device=self.device, dtype=getattr(torch, dtype))
        b = torch.randn(n, n, device=self.device, dtype=getattr(torch, dtype))
        with torch.inference_mode():
            seconds = best_seconds(lambda: torch.mm(a, b), self.sync_device)
        return 2 * n ** 3 / seconds / 1e9

    def amp_dtype(self) -> str | None:
        """The 16-bit type autocast uses on this device (None on CPU, where AMP is not used)."""
        if self.device != "cuda":
            return None
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"

    def memory_start(self) -> None:
        self.memory.start()
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def memory_peak(self) -> tuple[float | None, str]:
        if self.device == "cuda":
            return (torch.cuda.max_memory_allocated() / 2 ** 20,
                    "torch.cuda.max_memory_allocated (tensors in the caching allocator) during the cell")
        return self.memory.peak_mb(), self.memory.method

    def build(self, cell: BenchCell):
        if cell.implementation == "reference":
            try:
                import torchvision
            except ImportError:
                raise Skip("torchvision is not installed") from None
            return getattr(torchvision.models, cell.model)(weights=None, num_classes=cell.num_classes)
        return zoo.create_model(cell.model, "torch", **dict(cell.overrides))

    def prepare(self, cell: BenchCell) -> Prepared:
        device = torch.device(self.device)
        model = self.build(cell).to(device)
        spec = zoo.get_spec(cell.model)
        shape = (cell.batch_size, spec.in_channels, cell.input_size, cell.input_size)
        images = torch.randn(shape, device=device)
        labels = torch.randint(0, cell.num_classes, (cell.batch_size,), device=device)
        amp = self.device == "cuda" and cell.amp in ("auto", "on")
        amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
        autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp else contextlib.nullcontext
        train = cell.mode == "train"
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
        choice = cell.channels_last
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
        net = torch.compile(model) if cell.compile else model
        parts = ["inference_mode" if not train else "SGD(momentum 0.9) step, cross-entropy",
                 "channels_last" if channels_last else "contiguous (NCHW)",
                 "torch.compile" if cell.compile else "eager"]
        if amp:
            parts.append(f"autocast {str(amp_dtype).replace('torch.', '')}")
        if self.device == "cuda" and torch.backends.cudnn.benchmark:
            parts.append("cudnn.benchmark (autotuned in the untimed first call)")
        parts.append(f"{self.device}, {torch.get_num_threads()} threads" if self.device == "cpu" else self.device)
        return Prepared(make_step(net, images), sync, "torch: " + ", ".join(parts),
                        precision=f"amp {str(amp_dtype).replace('torch.', '')}" if amp else "fp32", notes=notes,
                        keep=[model, net, images])

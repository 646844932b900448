"""What a PyTorch model is made of: its layer table (`compare summary`) and its multiply-adds, the count
every framework's tables use (PyTorch is the reference framework)."""
from __future__ import annotations

import torch

import zoo
from zoo.contract import first_shape


def layer_shapes(model, input_shape: tuple[int, ...]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Output shape (without the batch) of every leaf module, by forward hooks on one zero batch."""
    shapes: dict[str, tuple] = {}
    kinds: dict[str, str] = {}
    handles = []

    def hook_for(name):
        def hook(module, args, output):
            shape = first_shape(output)
            if shape is not None:
                shapes[name] = tuple(shape[1:])
        return hook

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            kinds[name] = type(module).__name__
            handles.append(module.register_forward_hook(hook_for(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    shapes[""] = tuple(output.shape[1:])
    return shapes, kinds


def trainable_names(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def count_macs(name: str, input_size: int, num_classes: int | None = None, in_channels: int | None = None,
               overrides: dict | None = None) -> int:
    """Multiply-adds of convolutions and dense layers in one forward pass of one image, by shape propagation
    on meta tensors (`torch.utils.flop_counter.FlopCounterMode`: no weights are allocated and no arithmetic
    is done). FlopCounterMode counts a multiply-add as two FLOPs; this is FLOPs / 2, the papers' "FLOPs".
    Element-wise work (activations, BatchNorm, pooling, additions) is not counted, as in the papers."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = zoo.get_spec(name)
    channels = in_channels or spec.in_channels
    kwargs = {**(overrides or {}), "num_classes": num_classes, "in_channels": in_channels}
    try:
        # Built on the meta device: parameters have shapes but no storage, so VGG costs nothing.
        with torch.device("meta"):
            model = zoo.create_model(name, "torch", **kwargs)
        images = torch.empty(1, channels, input_size, input_size, device="meta")
        model.eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(images)
    except zoo.ZooError:
        raise
    except Exception as error:  # noqa: BLE001  (a builder that needs real tensors: fake ones instead)
        try:
            from torch._subclasses.fake_tensor import FakeTensorMode

            model = zoo.create_model(name, "torch", **kwargs).eval()
            with FakeTensorMode(allow_non_fake_inputs=True), FlopCounterMode(display=False) as counter, \
                    torch.no_grad():
                model(torch.empty(1, channels, input_size, input_size))
        except Exception as second:  # noqa: BLE001
            raise RuntimeError(f"could not trace {name}: {second} (meta tensors: {error})") from None
    return int(counter.get_total_flops()) // 2


def stage_profile(name: str, input_size: int, boundaries: list[str], num_classes: int | None = None,
                  in_channels: int | None = None, overrides: dict | None = None) -> dict:
    """Cost of each stage of one forward pass of one image, the stages ending at `boundaries`.

    `boundaries` are canonical module paths in execution order, "" the model's output: stage i is
    everything that runs after boundary i-1 finished up to the end of boundary i, so the stages
    partition the counter's total (`count_macs`) and the parameters that run. Traced on the meta
    device, as `count_macs`. For each stage: macs, trainable params, output shape (C, H, W) and the
    theoretical receptive field and pixel stride (jump) of its output. Also: macs and params totals,
    the trainable parameters of modules that did not run (e.g. training-only auxiliary heads) and
    depth, the longest input-to-output path counted in convolutions and dense layers.

    Receptive field and depth follow the main path: an input broadcast into a larger map (a
    squeeze-and-excitation gate, a bias) neither widens nor deepens it.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    spec = zoo.get_spec(name)
    channels = in_channels or spec.in_channels
    kwargs = {**(overrides or {}), "num_classes": num_classes, "in_channels": in_channels}
    with torch.device("meta"):
        model = zoo.create_model(name, "torch", **kwargs)
    model.eval()
    modules = dict(model.named_modules())
    missing = [b for b in boundaries if b and b not in modules]
    if missing:
        raise ValueError(f"{name} has no module {', '.join(map(repr, missing))} to end a stage at")
    if not boundaries or boundaries[-1] != "":
        boundaries = [*boundaries, ""]

    aten = torch.ops.aten
    weighted = {aten.convolution, aten._convolution, aten.addmm, aten.mm, aten.bmm}
    # id(tensor) -> (tensor, receptive field, jump, depth); the tensor is kept so its id is not reused.
    fields: dict[int, tuple] = {}

    def window(func, args, in_size):
        """(kernel, stride, dilation) of a windowed op on H, or None for ops without a window."""
        packet = func.overloadpacket
        if packet in (aten.convolution, aten._convolution):
            return args[1].shape[-1], args[3][-1], args[5][-1]
        if packet in (aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d):
            kernel = args[1][-1]
            stride = args[2][-1] if len(args) > 2 and args[2] else kernel
            dilation = args[4][-1] if packet is not aten.avg_pool2d and len(args) > 4 else 1
            return kernel, stride, dilation
        if packet in (aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d, aten.mean):
            out = args[1][-1] if packet is not aten.mean else 1
            if isinstance(out, int) and out < in_size:
                return -(-in_size // out), in_size // out, 1
        return None

    class ReceptiveFields(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
            outputs = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor)]
            tracked = [a for a in tensors if id(a) in fields]
            if not tracked or not outputs:
                return out
            if func.overloadpacket in (aten.addmm,):
                tracked = [a for a in tracked if a is args[1]] or tracked
            same = [a for a in tracked if a.shape == outputs[0].shape]
            if func.overloadpacket not in (aten.cat,) and same:
                tracked = same
            rf = max(fields[id(a)][1] for a in tracked)
            jump = max(fields[id(a)][2] for a in tracked)
            depth = max(fields[id(a)][3] for a in tracked)
            source = tracked[0]
            win = window(func, args, source.shape[-1]) if source.dim() == 4 else None
            if win is not None:
                kernel, stride, dilation = win
                rf += (kernel - 1) * dilation * jump
                jump *= stride
            if func.overloadpacket in weighted:
                depth += 1
            for o in outputs:
                fields[id(o)] = (o, rf, jump, depth)
            return out

    ends = {b: i for i, b in enumerate(boundaries) if b}
    stages = [{"macs": 0, "params": 0, "shape": None, "receptive_field": None, "jump": None}
              for _ in boundaries]
    current = [0]
    seen: set[str] = set()
    handles = []

    def pre_hook(path):
        def hook(module, args):
            if path not in seen:
                seen.add(path)
                stages[current[0]]["params"] += sum(p.numel() for p in module.parameters(recurse=False)
                                                    if p.requires_grad)
        return hook

    def end_hook(index):
        def hook(module, args, output):
            if index < current[0]:
                return  # a module that runs again later (none of the zoo's) closes its stage once
            stages[index]["macs"] = counter.get_total_flops() // 2 - sum(s["macs"] for s in stages[:index])
            first = output[0] if isinstance(output, (tuple, list)) else output
            stages[index]["shape"] = tuple(first.shape[1:])
            if id(first) in fields:
                stages[index]["receptive_field"], stages[index]["jump"] = fields[id(first)][1:3]
            current[0] = index + 1
        return hook

    for path, module in modules.items():
        handles.append(module.register_forward_pre_hook(pre_hook(path)))
    for path, index in ends.items():
        handles.append(modules[path].register_forward_hook(end_hook(index)))
    images = torch.empty(1, channels, input_size, input_size, device="meta")
    fields[id(images)] = (images, 1, 1, 0)
    try:
        with FlopCounterMode(display=False) as counter, ReceptiveFields(), torch.no_grad():
            output = model(images)
    finally:
        for handle in handles:
            handle.remove()
    output = output[0] if isinstance(output, (tuple, list)) else output
    total = counter.get_total_flops() // 2
    stages[-1]["macs"] = total - sum(s["macs"] for s in stages[:-1])
    stages[-1]["shape"] = tuple(output.shape[1:])
    if current[0] < len(boundaries) - 1:
        raise ValueError(f"{name}: stage boundary {boundaries[current[0]]!r} did not run")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "stages": stages, "macs": total, "params": trainable,
        "params_not_run": trainable - sum(s["params"] for s in stages),
        "depth": fields[id(output)][3] if id(output) in fields else None,
    }

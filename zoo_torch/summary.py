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

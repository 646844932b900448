"""torchvision's models: the zoo's PyTorch models are torchvision's module for module (same state_dict
keys and shapes), so a torchvision model converts to the registered model of the same family whose
state_dict has the same keys and shapes, with its weights as they are."""
from __future__ import annotations

from . import Conversion, ConversionError, converter
from .common import class_name, describe, first_bn_eps, is_instance_of, torch_state

# torchvision model class -> the zoo families that may hold it
FAMILIES = {
    "AlexNet": ("alexnet",), "VGG": ("vgg",), "GoogLeNet": ("googlenet",), "ResNet": ("resnet",),
    "DenseNet": ("densenet",), "MobileNetV2": ("mobilenet",), "MobileNetV3": ("mobilenet",),
    "ShuffleNetV2": ("shufflenet",), "EfficientNet": ("efficientnet",),
}


def shapes(state) -> dict[str, tuple[int, ...]]:
    return {name: tuple(array.shape) for name, array in state.items()}


# Module attributes that change what a layer computes without changing any tensor's shape.
HYPERPARAMETERS = ("stride", "padding", "dilation", "groups", "kernel_size", "ceil_mode", "eps", "output_size",
                   "count_include_pad", "p", "approximate", "inplace_not_compared")


PAIRS = ("stride", "padding", "dilation", "kernel_size", "output_size")


def computation(model) -> dict[str, tuple]:
    """For each submodule: its class and the hyperparameters it has (a dilated ResNet has a plain one's shapes)."""
    def value(module, attribute):
        item = getattr(module, attribute, None)
        if isinstance(item, int) and not isinstance(item, bool) and attribute in PAIRS:
            return (item, item)  # MaxPool2d(3) is MaxPool2d((3, 3))
        return tuple(item) if isinstance(item, list) else item

    return {name: (type(module).__name__,
                   tuple((attribute, value(module, attribute)) for attribute in HYPERPARAMETERS
                         if hasattr(module, attribute)))
            for name, module in model.named_modules() if not list(module.children())}


def zoo_torch_model(name: str, num_classes: int, in_channels: int, **knobs):
    """The zoo's PyTorch model, built on the meta device (no memory, no initialisation cost)."""
    import torch

    import zoo

    with torch.device("meta"):
        return zoo.create_model(name, "torch", num_classes=num_classes, in_channels=in_channels, **knobs)


def zoo_shapes(model) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()
            if not key.endswith("num_batches_tracked")}


def match_state(model, families, reference: str, knobs_for=lambda name: {}) -> Conversion:
    """The registered model of `families` whose PyTorch state_dict has `model`'s keys and shapes."""
    import zoo

    state = torch_state(model)
    theirs = shapes(state)
    weights = [key for key, shape in theirs.items() if len(shape) > 1]
    num_classes, in_channels = theirs[weights[-1]][0], theirs[weights[0]][1]
    closest = None
    for name in zoo.list_models():
        if zoo.get_spec(name).family not in families:
            continue
        knobs = dict(knobs_for(name))
        candidate = zoo_torch_model(name, num_classes, in_channels, **knobs)
        ours = zoo_shapes(candidate)
        if ours == theirs:
            expected, found = computation(candidate), computation(model)
            # Layers without tensors may be modules in one and functions in the other: the shared ones are compared.
            differing = [key for key in expected if key in found and expected[key] != found[key]]
            if differing:
                key = differing[0]
                raise ConversionError(
                    f"{reference} has {name}'s tensors but computes otherwise in {len(differing)} layer(s), "
                    f"first {key}: {dict(found.get(key, ('?', ()))[1])} where the zoo has {dict(expected[key][1])}")
            if num_classes != zoo.get_spec(name).num_classes:
                knobs["num_classes"] = num_classes
            if in_channels != zoo.get_spec(name).in_channels:
                knobs["in_channels"] = in_channels
            return Conversion(name, knobs, state, reference)
        differing = set(ours.items()) ^ set(theirs.items())
        if closest is None or len(differing) < closest[1]:
            closest = (name, len(differing), sorted({key for key, _ in differing}))
    if closest is None:
        raise ConversionError(f"{reference}: the zoo has no model of family {', '.join(families)}")
    name, _, keys = closest
    raise ConversionError(
        f"{reference} has no counterpart in the zoo: its state_dict differs from the closest, {name}, in "
        f"{len(keys)} tensor(s): {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}")


@converter("torchvision")
def from_torchvision_model(model):
    if not is_instance_of(model, "torchvision.models"):
        return None
    kind = class_name(model)
    if kind not in FAMILIES:
        raise ConversionError(f"{describe(model)}: the zoo has no torchvision {kind}; it converts "
                              f"{', '.join(sorted(FAMILIES))}")
    if kind == "GoogLeNet" and getattr(model, "aux_logits", False):
        raise ConversionError("torchvision's GoogLeNet with aux_logits=True: the zoo's GoogLeNet has no auxiliary "
                              "classifiers; build it with aux_logits=False (they serve training only)")
    import zoo

    eps = first_bn_eps(model) if any(type(m).__name__.startswith("BatchNorm") for m in model.modules()) else None

    def knobs_for(name):
        config = zoo.get_spec(name).config
        if eps is not None and hasattr(config, "bn_eps") and abs(config.bn_eps - eps) > 1e-12:
            return {"bn_eps": eps}
        return {}

    return match_state(model, FAMILIES[kind], f"torchvision.models.{kind}", knobs_for)

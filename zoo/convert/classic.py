"""AlexNet and VGG from keras.applications (VGG16, VGG19), Gluon's model zoo (alexnet, vgg11 .. vgg19_bn)
and timm (vgg11 .. vgg19_bn).

Each reader walks the reference's layers in order and writes the zoo's `VGGConfig` / `AlexNetConfig`
fields it finds (widths, BatchNorm and its epsilon and momentum, hidden widths, dropout, the map the
first dense layer reads) together with the canonical weights, so that a build of one's own (other
classes, another width) converts as it is or fails naming the layer that differs.

Where the reference is exact and where it is not:
- keras.applications' and Gluon's dense head reads a flattened map of the size fixed when the model was
  built (7x7 at 224x224 for VGG, 6x6 for AlexNet): the zoo's adaptive pool to that size is then the
  identity, and `pool_size` follows the map, so the two agree on every input the reference takes.
- timm's VGG computes fc1 and fc2 as 7x7 and 1x1 convolutions (`pre_logits`) and pools after them. On
  maps up to 7x7 (inputs up to 224x224) it first pools adaptively to 7x7 as the zoo does, and agrees
  with the zoo's Linear layers; on larger maps it slides fc1 over the map and the two differ.
- Gluon's AlexNet drops out after each hidden layer's ReLU, torchvision's (and the zoo's) before each
  hidden Linear: the same in inference, another order in training.
- keras.applications' VGG has no dropout: it converts with dropout=0.
"""
from __future__ import annotations

import math

import numpy as np

from . import Conversion, converter
from .common import (LayerReading, batch_norm, class_name, conv_from_hwio, dense_from_keras, is_instance_of,
                     registered_variant, torch_momentum)
from ..specs.vgg import M


class Reading(LayerReading):
    """What a walk over a reference AlexNet's or VGG's layers found."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.dropout: set[float] = set()


def _pool_size(reading: Reading, in_units: int, channels: int) -> int:
    """The side of the square map a reference's first dense layer reads (in_units = channels * side^2)."""
    side = math.isqrt(in_units // channels) if in_units % channels == 0 else 0
    if side < 1 or side * side * channels != in_units:
        raise reading.fail(f"its first dense layer takes {in_units} inputs, not a square map of its last "
                           f"convolution's {channels} channels")
    return side


def _conversion(reading: Reading, family: str, fields: dict, num_classes: int, in_channels: int) -> Conversion:
    name, knobs = registered_variant(family, fields, num_classes, in_channels)
    return Conversion(name, knobs, reading.weights, reading.reference)


# --- VGG ------------------------------------------------------------------------------------------

class VGGReading(Reading):
    """Builds the zoo's `features.N` / `classifier.N` names in the order the zoo_torch VGG has its modules."""

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.layers: list = []
        self.norms: list[bool] = []
        self.index = 0  # next `features` index
        self.hidden: list[int] = []
        self.channels: int | None = None
        self.in_channels: int | None = None
        self.pool_size: int | None = None
        self.last: str | None = None  # the kind of the last layer read, to check their order

    def follows(self, kind: str, allowed: tuple, what: str) -> None:
        if self.last not in allowed:
            raise self.fail(f"{what} ({kind}) follows {self.last or 'the input'}; VGG's layers are convolution, "
                            "[BatchNorm,] ReLU, and a max pool after a ReLU")
        self.last = kind

    def conv(self, weight: np.ndarray, bias: np.ndarray | None, kernel, stride, padding, what: str) -> None:
        if tuple(kernel) != (3, 3) or tuple(stride) != (1, 1) or tuple(padding) != (1, 1):
            raise self.fail(f"{what} is a {tuple(kernel)} convolution with stride {tuple(stride)} and padding "
                            f"{tuple(padding)}; VGG's are 3x3, stride 1, padding 1")
        if bias is None:
            raise self.fail(f"{what} has no bias; VGG's convolutions have one")
        self.follows("conv", (None, "relu", "pool"), what)
        if self.in_channels is None:
            self.in_channels = int(weight.shape[1])
        self.layers.append(int(weight.shape[0]))
        self.channels = int(weight.shape[0])
        self.weights[f"features.{self.index}.weight"] = weight
        self.weights[f"features.{self.index}.bias"] = bias
        self.index += 1
        self.norms.append(False)

    def norm(self, gamma, beta, mean, var, eps: float, momentum: float, what: str) -> None:
        self.follows("norm", ("conv",), what)
        self.weights.update(batch_norm(f"features.{self.index}", gamma, beta, mean, var))
        self.bn_eps.add(float(eps))
        self.bn_momentum.add(momentum)
        self.norms[-1] = True
        self.index += 1

    def relu(self, what: str = "a ReLU") -> None:
        self.follows("relu", ("conv", "norm"), what)
        self.index += 1

    def pool(self, kernel, stride, what: str) -> None:
        if tuple(kernel) != (2, 2) or tuple(stride) != (2, 2):
            raise self.fail(f"{what} pools {tuple(kernel)} with stride {tuple(stride)}; VGG's are 2x2, stride 2")
        self.follows("pool", ("relu",), what)
        self.layers.append(M)
        self.index += 1

    def dense(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weights[f"classifier.{3 * len(self.hidden)}.weight"] = weight
        self.weights[f"classifier.{3 * len(self.hidden)}.bias"] = bias
        self.hidden.append(int(weight.shape[0]))

    def conversion(self) -> Conversion:
        if not self.hidden or self.pool_size is None:
            raise self.fail("it has no classifier (include_top=False or num_classes=0); the zoo's VGG ends in one")
        convs = [value for value in self.layers if value != M]
        if not convs:
            raise self.fail("it has no convolution")
        if len(set(self.norms)) > 1:
            raise self.fail("BatchNorm follows some convolutions but not others; the zoo's VGG has it after "
                            "all or none")
        fields = dict(layers=tuple(self.layers), batch_norm=self.norms[0], hidden=tuple(self.hidden[:-1]),
                      dropout=self.one(self.dropout, "dropout rate", 0.0))
        if fields["batch_norm"]:
            fields["bn_eps"] = self.one(self.bn_eps, "BatchNorm epsilon", 1e-5)
            fields["bn_momentum"] = self.one(self.bn_momentum, "BatchNorm momentum", 0.1)
        fields["pool_size"] = self.pool_size
        return _conversion(self, "vgg", fields, self.hidden[-1], self.in_channels)


def _activation_name(activation) -> str:
    return getattr(activation, "__name__", type(activation).__name__).lower()


def _keras_relu(reading: Reading, layer) -> bool:
    """Whether a Keras layer is (or ends in) a ReLU; other activations fail."""
    kind = class_name(layer)
    if kind == "ReLU":
        if layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold):
            raise reading.fail(f"layer {layer.name!r} is a clipped or leaky ReLU; the zoo's is plain")
        return True
    name = _activation_name(layer.activation)
    if name == "relu":
        return True
    if name != "linear":
        raise reading.fail(f"layer {layer.name!r} uses {name}; the zoo's VGG uses ReLU")
    return False


KERAS_VGG_LAYERS = {"InputLayer", "Conv2D", "BatchNormalization", "Activation", "ReLU", "MaxPooling2D", "Flatten",
                    "Dense", "Dropout"}


@converter("keras")
def from_keras_vgg(model):
    layers = getattr(model, "layers", None)
    if not layers or not {class_name(layer) for layer in layers} <= KERAS_VGG_LAYERS:
        return None
    convs = [layer for layer in layers if class_name(layer) == "Conv2D"]
    if not convs or any(tuple(layer.kernel_size) != (3, 3) for layer in convs):
        return None  # not a plain stack of 3x3 convolutions
    reading = VGGReading(f"keras.applications VGG {model.name!r}")
    flattened = None
    softmax = False
    for layer in layers:
        kind = class_name(layer)
        if kind == "Conv2D":
            if layer.padding != "same" or tuple(layer.strides) != (1, 1) or tuple(layer.dilation_rate) != (1, 1):
                raise reading.fail(f"layer {layer.name!r} has padding {layer.padding!r}, strides "
                                   f"{tuple(layer.strides)}; VGG's keep the size (3x3 'same', stride 1)")
            kernel, *bias = layer.get_weights()
            reading.conv(conv_from_hwio(kernel), bias[0] if bias else None, (3, 3), (1, 1), (1, 1), repr(layer.name))
            if _keras_relu(reading, layer):
                reading.relu()
        elif kind == "BatchNormalization":
            if not (layer.center and layer.scale):
                raise reading.fail(f"layer {layer.name!r} lacks its offset or scale")
            reading.norm(*layer.get_weights(), layer.epsilon, torch_momentum(layer.momentum), repr(layer.name))
        elif kind in ("Activation", "ReLU"):
            if not _keras_relu(reading, layer):
                continue
            reading.relu()
        elif kind == "MaxPooling2D":
            if layer.padding != "valid":
                raise reading.fail(f"layer {layer.name!r} pools with padding {layer.padding!r}; VGG's are 'valid'")
            reading.pool(layer.pool_size, layer.strides, repr(layer.name))
        elif kind == "Flatten":
            flattened = tuple(int(v) for v in layer.input.shape[1:])
        elif kind == "Dropout":
            reading.dropout.add(float(layer.rate))
        elif kind == "Dense":
            if flattened is None:
                raise reading.fail(f"dense layer {layer.name!r} comes before the Flatten")
            kernel, bias = layer.get_weights()
            if not reading.hidden:
                height, width, channels = flattened
                if height != width:
                    raise reading.fail(f"its head flattens a {height}x{width} map; the zoo's pools to a square one")
                reading.pool_size = height
                kernel = dense_from_keras(kernel, flattened)
            else:
                kernel = dense_from_keras(kernel)
            reading.dense(kernel, bias)
            name = _activation_name(layer.activation)
            if layer is layers[-1]:
                softmax = name == "softmax"
                if name not in ("linear", "softmax"):
                    raise reading.fail(f"its last layer applies {name}; the zoo's models give logits")
            elif name != "relu":
                raise reading.fail(f"dense layer {layer.name!r} uses {name}; VGG's hidden layers use ReLU")
    if reading.channels is None or not reading.hidden:
        raise reading.fail("it has no classifier (include_top=False); the zoo's VGG ends in one")
    if softmax:
        # The zoo's models give logits; their softmax is the Keras model's output.
        reading.reference += " (its softmax left out: the zoo gives logits)"
    return reading.conversion()


def _gluon_children(block) -> list:
    return list(block._children.values())


def _gluon_kwargs(block) -> dict:
    return getattr(block, "_kwargs", {})


def _gluon_activation(reading: Reading, block) -> bool:
    """Whether a Gluon block is a ReLU activation (Activation('relu'), or a layer's own `act`)."""
    kind = getattr(block, "_act_type", None)
    if kind is None:
        return False
    if kind != "relu":
        raise reading.fail(f"{block.name} applies {kind}; the zoo's VGG and AlexNet use ReLU")
    return True


def _gluon_array(param) -> np.ndarray:
    return param.data().asnumpy()


def _gluon_bn(block) -> tuple[np.ndarray, ...]:
    gamma = _gluon_array(block.gamma)
    if _gluon_kwargs(block).get("fix_gamma"):
        gamma = np.ones_like(gamma)  # scale=False: Gluon ignores gamma
    return gamma, _gluon_array(block.beta), _gluon_array(block.running_mean), _gluon_array(block.running_var)


def _gluon_dense(reading: Reading, block, hidden: bool) -> tuple[np.ndarray, np.ndarray]:
    weight = _gluon_array(block.weight)
    bias = _gluon_array(block.bias) if block.bias is not None else np.zeros(weight.shape[0], weight.dtype)
    act = block.act
    if hidden and (act is None or not _gluon_activation(reading, act)):
        raise reading.fail(f"{block.name} has no ReLU; the zoo's hidden layers end in one")
    if not hidden and act is not None:
        raise reading.fail(f"its output layer {block.name} applies {act._act_type}; the zoo's gives logits")
    return weight, bias


def _gluon_model_zoo(net, kind: str) -> bool:
    return class_name(net) == kind and is_instance_of(net, "mxnet.gluon.model_zoo")


def _gluon_initialised(reading: Reading, net) -> None:
    if any(param._data is None for param in net.collect_params().values()):
        raise reading.fail("its parameters are not initialised yet (call net.initialize() and run it once on "
                           "an image of the size it takes)")


@converter("gluon")
def from_gluon_vgg(net):
    if not _gluon_model_zoo(net, "VGG"):
        return None
    reading = VGGReading(f"mxnet.gluon.model_zoo.vision.VGG {net.prefix!r}")
    _gluon_initialised(reading, net)
    blocks = _gluon_children(net.features) + [net.output]
    denses = [block for block in blocks if class_name(block) == "Dense"]
    for block in blocks:
        kind = class_name(block)
        options = _gluon_kwargs(block)
        if kind == "Conv2D":
            if options["dilate"] != (1, 1) or options["num_group"] != 1:
                raise reading.fail(f"{block.name} is dilated or grouped; VGG's convolutions are plain")
            bias = None if options["no_bias"] else _gluon_array(block.bias)
            reading.conv(_gluon_array(block.weight), bias, options["kernel"], options["stride"], options["pad"],
                         block.name)
            if block.act is not None and _gluon_activation(reading, block.act):
                reading.relu()
        elif kind == "BatchNorm":
            reading.norm(*_gluon_bn(block), options["eps"], torch_momentum(options["momentum"]), block.name)
        elif kind == "Activation":
            _gluon_activation(reading, block)
            reading.relu()
        elif kind == "MaxPool2D":
            if options["pad"] != (0, 0) or options["pooling_convention"] != "valid":
                raise reading.fail(f"{block.name} pads or rounds up; VGG's pools do not")
            reading.pool(options["kernel"], options["stride"], block.name)
        elif kind == "Dropout":
            reading.dropout.add(float(block._rate))
        elif kind == "Dense":
            if not reading.hidden:
                # Gluon's Dense flattens NCHW as torch.flatten does: the weights need no permutation.
                reading.pool_size = _pool_size(reading, block.weight.shape[1], reading.channels)
            reading.dense(*_gluon_dense(reading, block, block is not denses[-1]))
        elif kind != "Flatten":
            raise reading.fail(f"{block.name} is a {kind}, which the zoo's VGG does not have")
    return reading.conversion()


TIMM_VGG_FEATURES = ("Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d")


def _pair(value) -> tuple:
    """A torch size argument (3, or (3, 3)) as a pair."""
    return (value, value) if isinstance(value, int) else tuple(value)


@converter("timm")
def from_timm_vgg(model):
    if not (is_instance_of(model, "timm.models") and class_name(model) == "VGG"):
        return None
    reading = VGGReading(f"timm.models.vgg.VGG ({sum(1 for v in model.features if class_name(v) == 'Conv2d')} "
                         "convolutions)")
    # What no knob covers fails before any weight is read.
    kinds = {class_name(module) for module in model.features} - set(TIMM_VGG_FEATURES)
    if kinds:
        raise reading.fail(f"its features hold {', '.join(sorted(kinds))} (act_layer / norm_layer / conv_layer); "
                           "the zoo's VGG has Conv2d, BatchNorm2d, ReLU and MaxPool2d")
    mlp, head = model.pre_logits, model.head
    if class_name(mlp) != "ConvMlp" or class_name(head.fc) != "Linear":
        raise reading.fail("it has no classifier (num_classes=0 or a pruned head); the zoo's VGG ends in one")
    for act in (mlp.act1, mlp.act2):
        if class_name(act) != "ReLU":
            raise reading.fail(f"its pre_logits use {class_name(act)}; the zoo's VGG uses ReLU")
    if head.global_pool.pool_type != "avg":
        raise reading.fail(f"global_pool={head.global_pool.pool_type!r}; the zoo's VGG averages")

    def numpy(tensor):
        return tensor.detach().cpu().numpy()

    for module in model.features:
        kind = class_name(module)
        if kind == "Conv2d":
            if module.dilation != (1, 1) or module.groups != 1:
                raise reading.fail("a convolution is dilated or grouped; VGG's are plain")
            reading.conv(numpy(module.weight), None if module.bias is None else numpy(module.bias),
                         module.kernel_size, module.stride, module.padding, "a convolution")
        elif kind == "BatchNorm2d":
            reading.norm(*(numpy(t) for t in (module.weight, module.bias, module.running_mean, module.running_var)),
                         module.eps, module.momentum, "a BatchNorm")
        elif kind == "ReLU":
            reading.relu()
        else:
            if module.ceil_mode or _pair(module.padding) != (0, 0):
                raise reading.fail("a max pool pads or rounds up; VGG's do not")
            reading.pool(_pair(module.kernel_size), _pair(module.stride), "a max pool")
    reading.dropout.update({float(mlp.drop.p), float(head.drop.p)})
    # pre_logits.fc1 is a Linear over the pooled 7x7 map written as a 7x7 convolution, fc2 a 1x1 one.
    fc1, fc2 = numpy(mlp.fc1.weight), numpy(mlp.fc2.weight)
    reading.pool_size = int(mlp.input_kernel_size)
    reading.dense(fc1.reshape(fc1.shape[0], -1), numpy(mlp.fc1.bias))
    reading.dense(fc2.reshape(fc2.shape[0], -1), numpy(mlp.fc2.bias))
    reading.dense(numpy(head.fc.weight), numpy(head.fc.bias))
    reading.reference += f" (equal for maps up to {reading.pool_size}x{reading.pool_size}: inputs up to 224x224)"
    return reading.conversion()


# --- AlexNet --------------------------------------------------------------------------------------

@converter("gluon")
def from_gluon_alexnet(net):
    if not _gluon_model_zoo(net, "AlexNet"):
        return None
    reading = Reading(f"mxnet.gluon.model_zoo.vision.AlexNet {net.prefix!r}")
    _gluon_initialised(reading, net)
    fields: dict = {name: [] for name in ("channels", "kernel_sizes", "strides", "paddings", "groups",
                                          "pool_after")}
    pools: set[tuple] = set()
    in_channels = None
    hidden: list[int] = []
    blocks = _gluon_children(net.features) + [net.output]
    denses = [block for block in blocks if class_name(block) == "Dense"]
    index = 0  # next `features` index of the zoo's AlexNet (conv, relu, [pool])
    for block in blocks:
        kind = class_name(block)
        options = _gluon_kwargs(block)
        if kind == "Conv2D":
            kernel, stride, pad = options["kernel"], options["stride"], options["pad"]
            if len({*kernel}) > 1 or len({*stride}) > 1 or len({*pad}) > 1 or options["dilate"] != (1, 1):
                raise reading.fail(f"{block.name} is not square or is dilated; the zoo's AlexNet convolutions are")
            if options["no_bias"]:
                raise reading.fail(f"{block.name} has no bias; AlexNet's convolutions have one")
            if block.act is None or not _gluon_activation(reading, block.act):
                raise reading.fail(f"{block.name} has no ReLU; each AlexNet convolution has one")
            weight = _gluon_array(block.weight)
            in_channels = in_channels or int(weight.shape[1]) * options["num_group"]
            for name, value in zip(fields, (weight.shape[0], kernel[0], stride[0], pad[0], options["num_group"],
                                            False)):
                fields[name].append(int(value) if name != "pool_after" else value)
            reading.weights[f"features.{index}.weight"] = weight
            reading.weights[f"features.{index}.bias"] = _gluon_array(block.bias)
            index += 2
        elif kind == "MaxPool2D":
            if not fields["channels"] or fields["pool_after"][-1]:
                raise reading.fail(f"{block.name} does not follow a convolution")
            if options["pad"] != (0, 0) or options["pooling_convention"] != "valid":
                raise reading.fail(f"{block.name} pads or rounds up; AlexNet's pools do not")
            pools.add((options["kernel"], options["stride"]))
            fields["pool_after"][-1] = True
            index += 1
        elif kind == "Dropout":
            reading.dropout.add(float(block._rate))
        elif kind == "Dense":
            weight, bias = _gluon_dense(reading, block, block is not denses[-1])
            if not hidden:
                fields["pool_size"] = _pool_size(reading, block.weight.shape[1], fields["channels"][-1])
            # torchvision's classifier: Dropout, Linear, ReLU per hidden layer, then the last Linear.
            position = 3 * len(hidden) + (1 if block is not denses[-1] else 0)
            reading.weights[f"classifier.{position}.weight"] = weight
            reading.weights[f"classifier.{position}.bias"] = bias
            hidden.append(int(weight.shape[0]))
        elif kind != "Flatten":
            raise reading.fail(f"{block.name} is a {kind}, which the zoo's AlexNet does not have")
    if len(pools) != 1:
        raise reading.fail(f"its max pools differ ({sorted(pools)}); the zoo's AlexNet has one kind")
    (kernel, stride), = pools
    if len(set(kernel)) > 1 or len(set(stride)) > 1:
        raise reading.fail(f"its max pools are not square ({kernel}, stride {stride})")
    fields = {name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()}
    fields.update(pool_kernel=kernel[0], pool_stride=stride[0], hidden=tuple(hidden[:-1]),
                  dropout=reading.one(reading.dropout, "dropout rate", 0.0))
    # Dropout after each hidden ReLU rather than before each hidden Linear: the same in inference.
    reading.reference += " (dropout placed after the hidden ReLUs, torchvision's before the Linears: same in inference)"
    return _conversion(reading, "alexnet", fields, hidden[-1], in_channels)

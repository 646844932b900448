"""DenseNet from keras.applications (DenseNet121/169/201), Gluon's model zoo (densenet121/161/169/201) and
timm (densenet121/161/169/201, and its DenseNet class at other settings, such as the paper's DenseNet-264).

Each reader collects the zoo's `DenseNetConfig` fields from the reference's layers (growth rate from the
3x3 convolutions, bottleneck width, stem width, blocks, compression, BatchNorm epsilon and momentum,
dropout) and the canonical weights, torchvision's names. Where the reference differs:
- keras.applications uses BatchNorm epsilon 1.001e-5 and Keras' momentum 0.99 (PyTorch's 0.01): knobs
  bn_eps and bn_momentum. It pads zeros before its stem max pool where torchvision pads -inf: the same
  after the ReLU, whose outputs are never negative.
- Gluon's model zoo ends in AvgPool2D(7) rather than a global pool: the same where the last map is 7x7
  (224x224 inputs up to 255x255), which the size its Dense was initialised with tells.
- timm's `densenet264d` and `densenetblur121d` have a deep 3x3 stem (and blur pooling): no zoo DenseNet
  builds them, and they fail naming it. timm's DenseNet class with a plain stem converts at any growth
  rate and depth (the zoo's knobs).
"""
from __future__ import annotations

import math

import numpy as np

from . import Conversion, converter
from .common import (LayerReading, batch_norm, class_name, conv_from_hwio, dense_from_keras, is_instance_of,
                     registered_variant, torch_momentum, torch_state)

STEM_CONV = (7, 2, 3)  # kernel, stride, padding of the zoo's ImageNet stem convolution
STEM_POOL = (3, 2, 1)


class Reading(LayerReading):
    """Config fields and canonical weights found in a reference DenseNet."""

    kind = "DenseNet"

    def __init__(self, reference: str) -> None:
        super().__init__(reference)
        self.blocks: list[int] = []
        self.growth: set[int] = set()
        self.bottleneck: set[int] = set()
        self.compression: set[float] = set()
        self.drop_rate: set[float] = set()
        self.num_init_features: int | None = None
        self.in_channels: int | None = None
        self.num_classes: int | None = None

    def norm(self, name: str, arrays, eps: float, momentum: float) -> None:
        self.weights.update(batch_norm(name, *arrays))
        self.bn_eps.add(float(eps))
        self.bn_momentum.add(float(momentum))

    def stem(self, weight: np.ndarray, kernel: int, stride: int, padding: int) -> None:
        if (kernel, stride, padding) != STEM_CONV:
            raise self.fail(f"its stem convolution is {kernel}x{kernel}, stride {stride}, padding {padding}; "
                            "the zoo's ImageNet DenseNet stem is 7x7, stride 2, padding 3")
        self.weights["features.conv0.weight"] = weight
        self.num_init_features, self.in_channels = int(weight.shape[0]), int(weight.shape[1])

    def layer(self, name: str, conv1: np.ndarray, conv2: np.ndarray) -> None:
        """A dense layer's two convolutions (its BatchNorms go through `norm`)."""
        if conv1.shape[2:] != (1, 1) or conv2.shape[2:] != (3, 3):
            raise self.fail(f"{name} has {conv1.shape[2]}x{conv1.shape[3]} and {conv2.shape[2]}x{conv2.shape[3]} "
                            "convolutions; the zoo's bottleneck layer has 1x1 then 3x3")
        growth = int(conv2.shape[0])
        self.growth.add(growth)
        width = int(conv1.shape[0])
        if width % growth:
            raise self.fail(f"{name}'s bottleneck ({width} channels) is not a multiple of the growth rate {growth}")
        self.bottleneck.add(width // growth)
        self.weights[f"{name}.conv1.weight"] = conv1
        self.weights[f"{name}.conv2.weight"] = conv2

    def transition(self, name: str, conv: np.ndarray) -> None:
        out, channels = int(conv.shape[0]), int(conv.shape[1])
        self.compression.add(0.5 if out == channels // 2 else out / channels)
        self.weights[f"{name}.conv.weight"] = conv

    def classifier(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weights["classifier.weight"], self.weights["classifier.bias"] = weight, bias
        self.num_classes = int(weight.shape[0])

    def conversion(self) -> Conversion:
        if self.num_classes is None:
            raise self.fail("it has no classifier (include_top=False or num_classes=0); the zoo's DenseNet ends "
                            "in one")
        fields = dict(
            growth_rate=self.one(self.growth, "growth rate"), block_config=tuple(self.blocks),
            num_init_features=self.num_init_features, bn_size=self.one(self.bottleneck, "bottleneck width"),
            compression=self.one(self.compression, "compression", 0.5), stem="imagenet", conv_bias=False,
            bn_eps=self.one(self.bn_eps, "BatchNorm epsilon"), bn_momentum=self.one(self.bn_momentum,
                                                                                 "BatchNorm momentum"),
            drop_rate=self.one(self.drop_rate, "dropout rate", 0.0))
        for name, array in self.weights.items():
            if name.endswith(".conv.weight") and array.shape[0] != math.floor(array.shape[1] * fields["compression"]):
                raise self.fail(f"{name[:-7]} keeps {array.shape[0]} of {array.shape[1]} channels, not "
                                f"floor({fields['compression']} * {array.shape[1]}) as its other transitions")
        name, knobs = registered_variant("densenet", fields, self.num_classes, self.in_channels)
        return Conversion(name, knobs, self.weights, self.reference)


# --- keras.applications ---------------------------------------------------------------------------

@converter("keras")
def from_keras_densenet(model):
    layers = {layer.name: layer for layer in getattr(model, "layers", ())}
    # keras.applications.densenet names its layers conv1_conv, conv2_block1_0_bn, ..., pool2_conv, bn.
    # (Keras' ResNets share the conv1_conv / convN_blockM_ names, but add where DenseNet concatenates.)
    if "conv1_conv" not in layers or class_name(layers.get("conv2_block1_concat")) != "Concatenate":
        return None
    reading = Reading(f"keras.applications DenseNet {model.name!r}")

    def weights(name):
        if name not in layers:
            raise reading.fail(f"it lacks the layer {name!r} keras.applications' DenseNet has")
        return layers[name].get_weights()

    def norm(canonical, name):
        layer = layers.get(name)
        if layer is None or class_name(layer) != "BatchNormalization":
            raise reading.fail(f"it lacks the BatchNormalization {name!r} keras.applications' DenseNet has")
        reading.norm(canonical, layer.get_weights(), layer.epsilon, torch_momentum(layer.momentum))

    stem = layers["conv1_conv"]
    padding = [layer for layer in model.layers if class_name(layer) == "ZeroPadding2D"]
    if (stem.use_bias or stem.padding != "valid" or not padding
            or tuple(map(tuple, padding[0].padding)) != ((3, 3), (3, 3))):
        raise reading.fail("its stem is not keras.applications' (3-pixel zero padding, then a 7x7 convolution "
                           "without bias)")
    reading.stem(conv_from_hwio(stem.get_weights()[0]), stem.kernel_size[0], stem.strides[0], 3)
    norm("features.norm0", "conv1_bn")
    pool = layers.get("pool1")
    if (pool is None or tuple(pool.pool_size) != (3, 3) or tuple(pool.strides) != (2, 2) or len(padding) < 2
            or tuple(map(tuple, padding[1].padding)) != ((1, 1), (1, 1))):
        raise reading.fail("its stem max pool is not 3x3 with stride 2 after one pixel of padding")
    block = 1
    while f"conv{block + 1}_block1_0_bn" in layers:
        count = 0
        while f"conv{block + 1}_block{count + 1}_0_bn" in layers:
            count += 1
            prefix, name = f"conv{block + 1}_block{count}", f"features.denseblock{block}.denselayer{count}"
            norm(f"{name}.norm1", f"{prefix}_0_bn")
            norm(f"{name}.norm2", f"{prefix}_1_bn")
            for conv in ("1_conv", "2_conv"):
                if layers[f"{prefix}_{conv}"].use_bias:
                    raise reading.fail(f"{prefix}_{conv} has a bias; the zoo's DenseNet convolutions have none")
            reading.layer(name, conv_from_hwio(weights(f"{prefix}_1_conv")[0]),
                          conv_from_hwio(weights(f"{prefix}_2_conv")[0]))
        reading.blocks.append(count)
        if f"pool{block + 1}_bn" in layers:
            name = f"features.transition{block}"
            norm(f"{name}.norm", f"pool{block + 1}_bn")
            reading.transition(name, conv_from_hwio(weights(f"pool{block + 1}_conv")[0]))
        block += 1
    norm("features.norm5", "bn")
    top = layers.get("predictions")
    if top is not None:
        if class_name(layers.get("avg_pool")) != "GlobalAveragePooling2D":
            raise reading.fail("its head does not average the last map globally")
        activation = getattr(top.activation, "__name__", "linear")
        if activation not in ("linear", "softmax"):
            raise reading.fail(f"its last layer applies {activation}; the zoo's models give logits")
        if activation == "softmax":
            reading.reference += " (its softmax left out: the zoo gives logits)"
        reading.classifier(*(lambda kernel, bias: (dense_from_keras(kernel), bias))(*top.get_weights()))
    return reading.conversion()


# --- Gluon's model zoo ----------------------------------------------------------------------------

def _children(block) -> list:
    return list(block._children.values())


def _array(param) -> np.ndarray:
    return param.data().asnumpy()


def _gluon_norm(reading: Reading, name: str, block) -> None:
    if class_name(block) != "BatchNorm":
        raise reading.fail(f"{block.name} is a {class_name(block)} where the zoo's {name} is a BatchNorm")
    options = block._kwargs
    gamma = np.ones_like(_array(block.gamma)) if options.get("fix_gamma") else _array(block.gamma)
    reading.norm(name, (gamma, _array(block.beta), _array(block.running_mean), _array(block.running_var)),
                 options["eps"], torch_momentum(options["momentum"]))


def _gluon_relu(reading: Reading, block) -> None:
    if getattr(block, "_act_type", None) != "relu":
        raise reading.fail(f"{block.name} is not a ReLU where the zoo's DenseNet has one")


def _gluon_conv(reading: Reading, block) -> np.ndarray:
    options = block._kwargs
    if class_name(block) != "Conv2D" or not options["no_bias"] or options["num_group"] != 1 or block.act is not None:
        raise reading.fail(f"{block.name} is not a plain convolution without bias, as the zoo's DenseNet has")
    return _array(block.weight)


@converter("gluon")
def from_gluon_densenet(net):
    if not (class_name(net) == "DenseNet" and is_instance_of(net, "mxnet.gluon.model_zoo")):
        return None
    reading = Reading(f"mxnet.gluon.model_zoo.vision.DenseNet {net.prefix!r}")
    if any(param._data is None for param in net.collect_params().values()):
        raise reading.fail("its parameters are not initialised yet (call net.initialize() and run it once)")
    blocks = _children(net.features)
    conv0, norm0, relu0, pool0, *body = blocks
    options = conv0._kwargs
    reading.stem(_gluon_conv(reading, conv0), options["kernel"][0], options["stride"][0], options["pad"][0])
    _gluon_norm(reading, "features.norm0", norm0)
    _gluon_relu(reading, relu0)
    if (pool0._kwargs["kernel"], pool0._kwargs["stride"], pool0._kwargs["pad"]) != ((3, 3), (2, 2), (1, 1)):
        raise reading.fail(f"{pool0.name} is not the 3x3, stride 2, padding 1 max pool of the zoo's stem")
    *body, norm5, relu5, pool5, _flatten = body
    block = 0
    for stage in body:
        children = _children(stage)
        if children and class_name(children[0]) == "HybridConcurrent":
            block += 1
            reading.blocks.append(len(children))
            for index, concurrent in enumerate(children, start=1):
                name = f"features.denseblock{block}.denselayer{index}"
                identity, layer = _children(concurrent)
                norm1, relu1, conv1, norm2, relu2, conv2, *dropout = _children(layer)
                _gluon_norm(reading, f"{name}.norm1", norm1)
                _gluon_norm(reading, f"{name}.norm2", norm2)
                _gluon_relu(reading, relu1)
                _gluon_relu(reading, relu2)
                reading.layer(name, _gluon_conv(reading, conv1), _gluon_conv(reading, conv2))
                reading.drop_rate.add(float(dropout[0]._rate) if dropout else 0.0)
        else:
            norm, relu, conv, pool = children
            name = f"features.transition{block}"
            _gluon_norm(reading, f"{name}.norm", norm)
            _gluon_relu(reading, relu)
            if (pool._kwargs["pool_type"], pool._kwargs["kernel"], pool._kwargs["stride"]) != ("avg", (2, 2), (2, 2)):
                raise reading.fail(f"{pool.name} is not the 2x2, stride 2 average pool of the zoo's transitions")
            reading.transition(name, _gluon_conv(reading, conv))
    _gluon_norm(reading, "features.norm5", norm5)
    _gluon_relu(reading, relu5)
    channels = int(norm5.gamma.shape[0])
    if net.output.weight.shape[1] != channels:
        # AvgPool2D(7) left a map larger than 1x1 at the size the Dense was initialised with.
        raise reading.fail(f"its Dense reads {net.output.weight.shape[1]} inputs, a {pool5._kwargs['kernel']} average "
                           f"pool's map of {channels} channels larger than 1x1; the zoo pools globally, which "
                           "the reference equals only where its last map is 7x7 (224x224 inputs)")
    reading.classifier(_array(net.output.weight), _array(net.output.bias))
    reading.reference += " (equal where its last map is 7x7, 224x224 inputs, so that AvgPool2D(7) is global)"
    return reading.conversion()


# --- timm -----------------------------------------------------------------------------------------

def _timm_norm(reading: Reading, name: str, module) -> None:
    if (class_name(module) != "BatchNormAct2d" or class_name(module.act) != "ReLU"
            or class_name(module.drop) != "Identity"):
        raise reading.fail(f"{name} is a {class_name(module)} with {class_name(getattr(module, 'act', None))}; the "
                           "zoo's DenseNet has BatchNorm then ReLU (timm's norm_layer/act_layer defaults)")
    reading.norm(name, [_numpy(t) for t in (module.weight, module.bias, module.running_mean, module.running_var)],
                 module.eps, module.momentum)


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


@converter("timm")
def from_timm_densenet(model):
    if not (is_instance_of(model, "timm.models") and class_name(model) == "DenseNet"):
        return None
    growth = model.features.denseblock1.denselayer1.conv2.out_channels
    reading = Reading(f"timm.models.densenet.DenseNet (growth rate {growth})")
    features = dict(model.features.named_children())
    differences = []
    if "conv1" in features:
        differences.append("a deep stem of three 3x3 convolutions (stem_type='deep'), where the zoo's is one 7x7")
    if class_name(features.get("pool0")) != "MaxPool2d":
        differences.append("blur pooling in its stem (aa_layer), where the zoo max-pools")
    if any(class_name(getattr(module, "pool", None)) not in ("AvgPool2d", "NoneType")
           for name, module in features.items() if name.startswith("transition")):
        differences.append("blur pooling in its transitions (aa_layer), where the zoo average-pools")
    if differences:
        raise reading.fail("no zoo DenseNet builds it: it has " + "; ".join(differences))
    if class_name(model.classifier) != "Linear":
        raise reading.fail("it has no classifier (num_classes=0); the zoo's DenseNet ends in one")
    if model.global_pool.pool_type != "avg":
        raise reading.fail(f"global_pool={model.global_pool.pool_type!r}; the zoo's DenseNet averages")
    if model.head_drop.p:
        raise reading.fail(f"drop_rate={model.head_drop.p} drops out before the classifier, which the zoo's "
                           "DenseNet does not (its drop_rate is timm's proj_drop_rate); build it with drop_rate=0")
    conv0, pool0 = features["conv0"], features["pool0"]
    if conv0.bias is not None:
        raise reading.fail("its stem convolution has a bias; the zoo's DenseNet convolutions have none")
    reading.stem(_numpy(conv0.weight), conv0.kernel_size[0], conv0.stride[0], conv0.padding[0])
    if (pool0.kernel_size, pool0.stride, pool0.padding) != STEM_POOL or pool0.ceil_mode:
        raise reading.fail("its stem max pool is not 3x3, stride 2, padding 1")
    _timm_norm(reading, "features.norm0", features["norm0"])
    block = 0
    for name, module in features.items():
        if name.startswith("denseblock"):
            block += 1
            layers = list(module.values())
            reading.blocks.append(len(layers))
            for index, layer in enumerate(layers, start=1):
                prefix = f"features.{name}.denselayer{index}"
                _timm_norm(reading, f"{prefix}.norm1", layer.norm1)
                _timm_norm(reading, f"{prefix}.norm2", layer.norm2)
                if layer.conv1.bias is not None or layer.conv2.bias is not None or layer.conv2.padding != (1, 1):
                    raise reading.fail(f"{prefix} has convolution biases or unpadded 3x3 convolutions")
                reading.layer(prefix, _numpy(layer.conv1.weight), _numpy(layer.conv2.weight))
                reading.drop_rate.add(float(layer.drop_rate))
        elif name.startswith("transition"):
            _timm_norm(reading, f"features.{name}.norm", module.norm)
            reading.transition(f"features.{name}", _numpy(module.conv.weight))
    _timm_norm(reading, "features.norm5", features["norm5"])
    reading.classifier(_numpy(model.classifier.weight), _numpy(model.classifier.bias))
    # timm's module tree is torchvision's: its state_dict is the canonical mapping, checked against the walk.
    state = torch_state(model)
    if set(state) != set(reading.weights):
        extra = sorted(set(state) ^ set(reading.weights))
        raise reading.fail(f"its tensors differ from the zoo's DenseNet's in {', '.join(extra[:5])}")
    reading.weights = state
    conversion = reading.conversion()
    if any(getattr(layer, "grad_checkpointing", False) for layer in model.modules()):
        # timm's memory_efficient is torchvision's (and the zoo's) checkpointing of each layer's bottleneck.
        conversion = Conversion(conversion.name, {**conversion.knobs, "memory_efficient": True}, conversion.weights,
                                conversion.reference)
    return conversion

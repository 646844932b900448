"""d2l.ai's own networks against the zoo's `*_d2l` models.

The nets below are the PyTorch code of Dive into Deep Learning 1.0 (d2l-ai/d2l-en at 23d7a5ae, March 2024; the
PyTorch tab of chapter_convolutional-neural-networks/lenet.md and chapter_convolutional-modern/{alexnet,vgg,nin,
googlenet,resnet,densenet}.md), written out as the book writes them: Lazy modules, materialised by one forward pass at the
book's input size. Only the `d2l.Classifier` around each `self.net` is left out (it adds no parameters), and
`d2l.init_cnn`, an initialisation.

Each registered model must have d2l's parameter count (its spec's `params` and `params_total` are these
figures), and d2l's net, randomised (BatchNorm statistics included), must give the zoo's PyTorch model that
holds its weights the same logits: the same layers, in the same order, with the same shapes and wiring.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import zoo

pytestmark = pytest.mark.torch


# --- d2l's code (PyTorch tab) ------------------------------------------------------------------------

def lenet(num_classes=10):  # 7.6
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(num_classes))


def alexnet(num_classes=10):  # 8.1
    return nn.Sequential(
        nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
        nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.LazyLinear(num_classes))


def vgg_block(num_convs, out_channels):  # 8.2
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(arch=((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)), num_classes=10):  # the arch d2l trains
    conv_blks = []
    for (num_convs, out_channels) in arch:
        conv_blks.append(vgg_block(num_convs, out_channels))
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
        nn.LazyLinear(num_classes))


def nin_block(out_channels, kernel_size, strides, padding):  # 8.3
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())


def nin(num_classes=10):
    return nn.Sequential(
        nin_block(96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


class Inception(nn.Module):  # 8.4
    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super().__init__(**kwargs)
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def googlenet(num_classes=10):
    b1 = nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(
        nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b3 = nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                       Inception(128, (128, 192), (32, 96), 64),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b4 = nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                       Inception(160, (112, 224), (24, 64), 64),
                       Inception(128, (128, 256), (24, 64), 64),
                       Inception(112, (144, 288), (32, 64), 64),
                       Inception(256, (160, 320), (32, 128), 128),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b5 = nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                       Inception(384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, b4, b5, nn.LazyLinear(num_classes))


class Residual(nn.Module):  # 8.6
    """The Residual block of ResNet models."""
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(num_residuals, num_channels, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels))
    return nn.Sequential(*blk)


def resnet18(num_classes=10, arch=((2, 64), (2, 128), (2, 256), (2, 512))):  # ResNet18(ResNet)
    net = nn.Sequential(nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
    for i, b in enumerate(arch):
        net.add_module(f'b{i+2}', resnet_block(*b, first_block=(i == 0)))
    net.add_module('last', nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    return net


def conv_block(num_channels):  # 8.7
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super().__init__()
        layer = []
        for _ in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


def densenet(num_channels=64, growth_rate=32, arch=(4, 4, 4, 4), num_classes=10):
    net = nn.Sequential(nn.Sequential(
        nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
    for i, num_convs in enumerate(arch):
        net.add_module(f'dense_blk{i+1}', DenseBlock(num_convs, growth_rate))
        # The number of output channels in the previous dense block
        num_channels += num_convs * growth_rate
        # A transition layer that halves the number of channels is added
        # between the dense blocks
        if i != len(arch) - 1:
            num_channels //= 2
            net.add_module(f'tran_blk{i+1}', transition_block(num_channels))
    net.add_module('last', nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    return net


# --- the zoo's models against them --------------------------------------------------------------------

D2L_NETS = {
    "lenet_d2l": lenet,
    "alexnet_d2l": alexnet,
    "vgg11_d2l": vgg,
    "nin_d2l": nin,
    "googlenet_d2l": googlenet,
    "resnet18_d2l": resnet18,
    "densenet_d2l": densenet,
}


def test_every_d2l_variant_is_registered_and_checked_here():
    assert sorted(D2L_NETS) == sorted(zoo.list_models("*_d2l"))
    for name in D2L_NETS:
        spec = zoo.get_spec(name)
        assert (spec.in_channels, spec.num_classes) == (1, 10)  # d2l's Fashion-MNIST
        assert spec.input_size[1:] == {"lenet": (28, 28), "alexnet": (224, 224), "vgg": (224, 224),
                                       "nin": (224, 224)}.get(spec.family, (96, 96))
        assert "d2l.ai" in spec.source and "counted from d2l's PyTorch code" in spec.source
        assert f"{spec.params:,}" in spec.source


def d2l_net(name: str) -> nn.Module:
    """d2l's net for the zoo's model `name`, its Lazy modules materialised at the spec's input size."""
    torch.manual_seed(0)
    net = D2L_NETS[name]().eval()
    with torch.no_grad():
        net(torch.zeros(1, *zoo.get_spec(name).input_size))
    return net


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers, BatchNorm's batch counter left out (it is not a weight)."""
    return {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("name", sorted(D2L_NETS))
def test_parameter_counts_are_d2ls(name):
    net = d2l_net(name)
    trainable = sum(p.numel() for p in net.parameters())
    total = sum(v.numel() for v in state(net).values())
    spec = zoo.get_spec(name)
    assert (spec.params, spec.params_total) == (trainable, total)
    assert zoo.backend("torch").count_parameters(zoo.create_model(name, "torch")) == (trainable, total)


def zoo_key(name: str, key: str) -> str | None:
    """The zoo's name for d2l's tensor `key` where the two orders differ (ResNet: d2l's Residual registers
    conv1, conv2, conv3 (the 1x1 shortcut), bn1, bn2; torchvision's BasicBlock conv1, bn1, conv2, bn2,
    downsample); None where the order of the two state dicts pairs them."""
    if name != "resnet18_d2l":
        return None
    for pattern, replacement in ((r"^0\.0\.", "conv1."), (r"^0\.1\.", "bn1."), (r"^last\.2\.", "fc."),
                                 (r"^b(\d)\.(\d)\.conv3\.", "layer{stage}.{block}.downsample.0."),
                                 (r"^b(\d)\.(\d)\.", "layer{stage}.{block}.")):
        match = re.match(pattern, key)
        if match:
            stage, block = (int(match[1]) - 1, match[2]) if match.groups() else (None, None)
            return replacement.format(stage=stage, block=block) + key[match.end():]
    raise AssertionError(f"no zoo name for d2l's {key}")


def d2l_weights_in_zoo_names(name: str, d2l: dict, zoo_state: dict) -> dict:
    """d2l's tensors under the zoo's names: by name translation (ResNet) or by order, each with the shape of
    the zoo's tensor it goes to."""
    if name == "resnet18_d2l":
        mapped = {zoo_key(name, key): value for key, value in d2l.items()}
    else:
        assert len(d2l) == len(zoo_state), f"d2l has {len(d2l)} tensors, the zoo {len(zoo_state)}"
        mapped = dict(zip(zoo_state, d2l.values()))
    assert sorted(mapped) == sorted(zoo_state)
    for key, value in mapped.items():
        assert tuple(value.shape) == tuple(zoo_state[key].shape), key
    return mapped


@pytest.mark.parametrize("name", sorted(D2L_NETS))
def test_d2ls_weights_give_the_same_logits(name):
    torch_backend = zoo.backend("torch")
    net = torch_backend.randomize(d2l_net(name), seed=1)  # BatchNorm statistics and affine terms included
    model = zoo.create_model(name, "torch").eval()
    weights = d2l_weights_in_zoo_names(name, state(net), state(model))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and all(key.endswith("num_batches_tracked") for key in missing)
    images = np.random.default_rng(2).standard_normal((2, *zoo.get_spec(name).input_size)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    got = torch_backend.predict(model, images)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def layers(module: nn.Module) -> list[tuple]:
    """The layers of a net in module order, with what defines each: the activations, pools and dropouts
    that inference hides too (a dropout before or after its dense layer gives the same logits). Left out:
    ReLUs (d2l and the zoo call some as functions), flattens, identities, global and adaptive average pools
    (the zoo pools AlexNet's and VGG's last map to its own size, d2l flattens it), and dropouts of p=0."""
    found = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            found.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.bias is not None))
        elif isinstance(m, nn.Linear):
            found.append(("linear", m.in_features, m.out_features))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            found.append((type(m).__name__, m.kernel_size, m.stride, m.padding, m.ceil_mode))
        elif isinstance(m, nn.BatchNorm2d):
            found.append(("batchnorm", m.num_features, m.eps, m.momentum))
        elif isinstance(m, (nn.Sigmoid, nn.Tanh)):
            found.append((type(m).__name__,))
        elif isinstance(m, nn.Dropout) and m.p:
            found.append(("dropout", m.p))
    return found


# ResNet's layers run in another order than its modules are registered in d2l's Residual (conv3 before bn1).
@pytest.mark.parametrize("name", sorted(set(D2L_NETS) - {"resnet18_d2l"}))
def test_same_layers_in_the_same_order(name):
    assert layers(zoo.create_model(name, "torch")) == layers(d2l_net(name))

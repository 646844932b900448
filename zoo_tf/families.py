"""The families this backend builds, each by its builder (`zoo.contract.Builder`): the table
`build_model` reads, and a plugin adds to."""
from __future__ import annotations

from zoo.contract import Builder

from . import alexnet, densenet, efficientnet, googlenet, lenet, mobilenet, nin, resnet, senet, shufflenet, vgg

FAMILIES: dict[str, Builder] = {
    "lenet": lenet.build,
    "alexnet": alexnet.build,
    "vgg": vgg.build,
    "nin": nin.build,
    "googlenet": googlenet.build,
    "resnet": resnet.build,
    "senet": senet.build,
    "densenet": densenet.build,
    "mobilenet": mobilenet.build,
    "shufflenet": shufflenet.build,
    "efficientnet": efficientnet.build,
}

"""Training recipes for `compare train --recipe NAME`: a textbook's settings, per model, in one word.

`d2l` is Dive into Deep Learning 1.0's (d2l.ai, PyTorch edition), chapters 7.6 and 8.1-8.7: every net
trains on Fashion-MNIST for 10 epochs with batches of 128, plain minibatch SGD at a constant rate
(`d2l.Classifier.configure_optimizers`: `torch.optim.SGD(params, lr)`), Xavier-uniform convolution and
dense weights (`d2l.init_cnn`), images resized bilinearly and scaled to [0, 1] (`d2l.FashionMNIST(resize=...)`:
`transforms.Resize` then `ToTensor`, no normalisation). The input size and learning rate are each
chapter's own, from the line that trains the model (e.g. `model = AlexNet(lr=0.01)`,
`data = d2l.FashionMNIST(batch_size=128, resize=(224, 224))`).

Options given on the command line override a recipe's value; the results record the settings used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    settings: Mapping[str, Any]                    # train()'s keyword arguments shared by every model
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # model -> its own settings

    def for_model(self, model: str) -> dict[str, Any]:
        """The settings of `model` under this recipe; a model the recipe does not cover is an error."""
        if model not in self.models:
            raise KeyError(f"recipe {self.name!r} has no settings for {model!r}; it trains "
                           f"{', '.join(self.models)}")
        return {**self.settings, **self.models[model]}


D2L = Recipe(
    name="d2l",
    source="Dive into Deep Learning 1.0 (d2l.ai), PyTorch edition: sections 7.6 (LeNet), 8.1 (AlexNet), "
           "8.2 (VGG), 8.3 (NiN), 8.4 (GoogLeNet), 8.6 (ResNet), 8.7 (DenseNet)",
    settings={"epochs": 10, "batch_size": 128, "momentum": 0.0, "weight_decay": 0.0, "schedule": "constant",
              "init": "xavier", "normalize": "none"},
    models={
        "lenet_d2l": {"image_size": 28, "lr": 0.1},        # 7.6: LeNet(lr=0.1), FashionMNIST(batch_size=128)
        "alexnet_d2l": {"image_size": 224, "lr": 0.01},    # 8.1: AlexNet(lr=0.01), resize=(224, 224)
        "vgg11_d2l": {"image_size": 224, "lr": 0.01},      # 8.2: VGG(arch=((1, 16), ...), lr=0.01), 224
        "nin_d2l": {"image_size": 224, "lr": 0.05},        # 8.3: NiN(lr=0.05), 224
        "googlenet_d2l": {"image_size": 96, "lr": 0.01},   # 8.4: GoogleNet(lr=0.01), resize=(96, 96)
        "resnet18_d2l": {"image_size": 96, "lr": 0.01},    # 8.6: ResNet18(lr=0.01), 96
        "densenet_d2l": {"image_size": 96, "lr": 0.01},    # 8.7: DenseNet(lr=0.01), 96
    },
)

RECIPES = {recipe.name: recipe for recipe in (D2L,)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]

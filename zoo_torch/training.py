"""Training parity (`compare train`): PyTorch's Trainer, and the initial weights every framework starts from."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

import zoo
from zoo.inputs import check_images, check_labels, check_learning_rate, check_model, check_optimizer, model_classes


class Trainer:
    """`torch.optim.SGD` with momentum and weight decay computes the contract's rule exactly:
    g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.0, momentum=momentum, weight_decay=weight_decay)
        torch.manual_seed(seed)  # dropout masks

    def prepare(self, x: np.ndarray):
        x = check_images(x, getattr(self.model, "zoo_signature", None))
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def labels(self, y: np.ndarray):
        return torch.from_numpy(check_labels(y, None, model_classes(self.model)))

    def step(self, x, y, lr: float) -> float:
        lr = check_learning_rate(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def logits(self, x) -> np.ndarray:
        self.model.eval()
        with torch.inference_mode():
            return self.model(x).numpy()


def make_trainer(model, momentum: float, weight_decay: float, seed: int) -> Trainer:
    check_model(model, torch.nn.Module, "torch")
    check_optimizer(momentum, weight_decay, seed)
    return Trainer(model, momentum, weight_decay, seed)


def initial_weights(name: str, num_classes: int, seed: int, overrides: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """PyTorch's initialisation of `name` (torchvision's scheme where it has the model), as canonical weights."""
    from . import export_weights

    torch.manual_seed(seed)
    built = zoo.create_model(name, "torch", num_classes=num_classes, **overrides)
    return export_weights(built)

"""Training parity (`compare train`): PyTorch's Trainer, and the initial weights every framework starts from."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

import zoo
from zoo.inputs import (check_images, check_labels, check_learning_rate, check_model, check_optimizer, check_seed,
                        model_classes)
from zoo.weights import MOMENTUM, check_state


class Trainer:
    """`torch.optim.SGD` with momentum and weight decay computes the contract's rule exactly:
    g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf. Its state is SGD's
    `momentum_buffer` of every trainable parameter (under its `state_dict` name, the canonical one);
    dropout draws from PyTorch's global generators, which `reseed` seeds (`torch.manual_seed`)."""

    def __init__(self, model, momentum: float, weight_decay: float, seed: int) -> None:
        self.model = model
        self.named = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.SGD(list(self.named.values()), lr=0.0, momentum=momentum,
                                         weight_decay=weight_decay)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        # The CPU generator and every GPU's: dropout draws from the one of the model's device.
        torch.manual_seed(check_seed(seed))

    def state(self) -> dict[str, np.ndarray]:
        found = {}
        for name, param in self.named.items():
            buffer = self.optimizer.state.get(param, {}).get("momentum_buffer")
            # Before the first step SGD has no buffer: zeros, which its first step treats the same
            # (buf = momentum * 0 + g = g).
            found[MOMENTUM + name] = (np.zeros(tuple(param.shape), _numpy_dtype(param)) if buffer is None
                                      else buffer.detach().cpu().numpy().copy())
        return found

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        expected = {MOMENTUM + name: tuple(p.shape) for name, p in self.named.items()}
        arrays = check_state(expected, state, getattr(self.model, "zoo_name", "model"))
        # Every buffer is made before the first is set, so nothing is half-applied.
        buffers = {name: torch.tensor(arrays[MOMENTUM + name], dtype=p.dtype, device=p.device)
                   for name, p in self.named.items()}
        for name, param in self.named.items():
            self.optimizer.state[param]["momentum_buffer"] = buffers[name]

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


def _numpy_dtype(tensor: torch.Tensor) -> np.dtype:
    return torch.empty((), dtype=tensor.dtype).numpy().dtype


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

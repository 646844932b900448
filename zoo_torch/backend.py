"""The PyTorch backend: the contract's functions (`zoo.contract`). Inputs are NCHW."""
from __future__ import annotations

import gc
from typing import Mapping

import numpy as np
import torch
from torch import nn

from zoo.contract import family_builder
from zoo.inputs import InputSignature, check_images, check_input_shape, check_labels, check_model, model_classes
from zoo.registry import FamilyConfig, ModelSpec
from zoo.weights import check_mapping

from .families import FAMILIES

FRAMEWORK = "torch"
LAYOUT = "NCHW"


def version() -> str:
    return torch.__version__


def build_model(spec: ModelSpec, config: FamilyConfig, *, num_classes: int, in_channels: int,
                signature: InputSignature, dtype: str = "float32") -> nn.Module:
    build = family_builder(FAMILIES, FRAMEWORK, spec.family)
    model = build(config, num_classes=num_classes, in_channels=in_channels).to(getattr(torch, dtype))
    model.zoo_name = spec.name
    model.zoo_signature = signature
    # Checked by a hook, once at the edge, so that `forward` stays free of input asserts.
    model.register_forward_pre_hook(_check_input)
    return model


def _inputs(model: nn.Module, images: np.ndarray) -> torch.Tensor:
    """A numpy NCHW batch, checked whole at the edge (`zoo.inputs.check_images`), as a tensor of the
    model's floating dtype."""
    check_model(model, nn.Module, FRAMEWORK)
    images = check_images(images, getattr(model, "zoo_signature", None))
    dtype = next(model.parameters()).dtype
    return torch.from_numpy(np.ascontiguousarray(images)).to(dtype)


def _labels(model: nn.Module, labels: np.ndarray, batch: int) -> torch.Tensor:
    return torch.from_numpy(check_labels(labels, batch, model_classes(model)))


def _check_input(model: nn.Module, args: tuple) -> None:
    if args and isinstance(args[0], torch.Tensor):
        model.zoo_signature.check(tuple(args[0].shape), LAYOUT)


def _is_count_state(name: str, tensor: torch.Tensor) -> bool:
    # `num_batches_tracked` is a step counter, not model state that Keras or Gluon keep.
    return tensor.is_floating_point()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, all state: parameters plus floating buffers such as BatchNorm statistics)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    total += sum(b.numel() for name, b in model.named_buffers() if _is_count_state(name, b))
    return trainable, total


def export_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The canonical mapping: `state_dict` keys to numpy arrays (step counters left out)."""
    check_model(model, nn.Module, FRAMEWORK)
    return {
        name: tensor.detach().cpu().numpy().copy()
        for name, tensor in model.state_dict().items()
        if _is_count_state(name, tensor)
    }


def load_weights(model: nn.Module, mapping: Mapping[str, np.ndarray]) -> None:
    """Load a canonical mapping whole or not at all: one error names every missing, unexpected,
    mis-shaped and mis-typed tensor, and leaves the model as it was."""
    check_model(model, nn.Module, FRAMEWORK)
    state = {k: v for k, v in model.state_dict().items() if _is_count_state(k, v)}
    arrays = check_mapping({k: tuple(v.shape) for k, v in state.items()}, mapping, getattr(model, "zoo_name", "model"))
    # Every tensor is converted before the first one is written, so nothing can fail halfway.
    values = {name: torch.tensor(arrays[name], dtype=tensor.dtype) for name, tensor in state.items()}
    with torch.no_grad():
        for name, tensor in state.items():
            tensor.copy_(values[name])


def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Logits for an NCHW batch of finite real numbers, in inference mode."""
    x = _inputs(model, images)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return model(x).numpy()
    finally:
        model.train(was_training)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and buffer random values, BatchNorm statistics and affine terms included.

    Defaults of 0 and 1 would hide mapping errors in a cross-check. Weights are scaled by fan-in so
    that activations keep a sensible range through deep networks.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return torch.rand(shape, generator=generator) * (high - low) + low

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                if module.affine:
                    module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                    module.bias.copy_(uniform(module.bias.shape, -0.2, 0.2))
                if module.track_running_stats:
                    module.running_mean.copy_(uniform(module.running_mean.shape, -0.2, 0.2))
                    module.running_var.copy_(uniform(module.running_var.shape, 0.5, 1.5))
                continue
            for param in module.parameters(recurse=False):
                if param.dim() > 1:
                    fan_in = param[0].numel()
                    param.copy_(torch.randn(param.shape, generator=generator) * (1.0 / fan_in) ** 0.5)
                else:
                    param.copy_(uniform(param.shape, -0.1, 0.1))
    return model


def calibrate_batchnorm(model: nn.Module, batches) -> nn.Module:
    """Set every BatchNorm layer's running mean and variance to the statistics of its input over the
    NCHW numpy `batches` (their plain average, as training to convergence leaves them), the rest of the
    model untouched.

    Random statistics leave each layer's output off its intended scale, which shrinks or blows up the
    activations of deep networks; statistics taken from batches keep them where a trained network has
    them, and with them the rounding a user meets.
    """
    check_model(model, nn.Module, FRAMEWORK)
    batches = list(batches)
    if not batches:
        raise ValueError("calibrate_batchnorm needs at least one batch of images; got none")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    inputs = [_inputs(model, batch) for batch in batches]  # all checked before any statistic changes
    if not norms:
        return model
    momenta = [m.momentum for m in norms]
    was_training = model.training
    # Only BatchNorm in training mode: dropout, stochastic depth and auxiliary heads stay as in inference.
    model.eval()
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches
            norm.train()
        with torch.no_grad():
            for x in inputs:
                model(x)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return model



def infer_output_shape(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output shape for an NCHW input shape, found with fake tensors (no arithmetic is done)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    check_model(model, nn.Module, FRAMEWORK)
    input_shape = check_input_shape(input_shape, getattr(model, "zoo_signature", None))
    was_training = model.training
    model.eval()
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            return tuple(model(torch.empty(input_shape)).shape)
    finally:
        model.train(was_training)

def loss_gradients(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Cross-entropy of one training-mode forward pass and its gradient for every trainable canonical tensor."""
    x = _inputs(model, images)
    y = _labels(model, labels, len(x))
    model.train()
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {
        name: (None if p.grad is None else p.grad.detach().numpy().copy())
        for name, p in model.named_parameters() if p.requires_grad
    }
    model.zero_grad(set_to_none=True)
    return loss.item(), grads


def release_memory() -> None:
    gc.collect()


def bench_runner(device: str, options: dict):
    from .bench import Runner

    return Runner(device, options)

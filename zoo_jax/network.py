"""The zoo's Flax models: `Network`, the module every family's model is, and the walk that names its
modules and variables as PyTorch does (the canonical weight names)."""
from __future__ import annotations

from typing import Iterator

from flax import nnx

from zoo.inputs import InputSignature

from .layers import Layer

LAYOUT = "NHWC"


class Network(nnx.Module):
    """A zoo model: checks its input once, at the edge, then runs the family's `forward`."""

    zoo_name: str = "model"
    zoo_signature: InputSignature | None = None

    def __call__(self, x):
        if self.zoo_signature is not None:
            self.zoo_signature.check(tuple(x.shape), LAYOUT)
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError


def named_modules(module: nnx.Module, prefix: str = "", path: tuple = ()) -> Iterator[tuple[str, tuple, nnx.Module]]:
    """(PyTorch module path, Flax graph path, module) for `module` and every module below it, in the
    order they were defined (which is torch's). A `Sequential` (an `nnx.List`) numbers its children as
    torch does, and Flax's path to them is the index. Private attributes (`_dropout`) stand for what
    torch calls as a function, so they name no module."""
    yield prefix, path, module
    for attribute, value in vars(module).items():
        if attribute.startswith("_") or not isinstance(value, nnx.Module):
            continue
        key = int(attribute) if isinstance(module, nnx.List) else attribute
        yield from named_modules(value, _join(prefix, attribute), (*path, key))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def canonical_variables(model: nnx.Module) -> dict[str, tuple]:
    """canonical name -> (variable, Flax graph path of the variable, to_torch, from_torch)."""
    found = {}
    for name, path, module in named_modules(model):
        if isinstance(module, Layer):
            for local, (variable, to_torch, from_torch) in module.canonical().items():
                attribute = next(k for k, v in vars(module).items() if v is variable)
                found[_join(name, local)] = (variable, (*path, attribute), to_torch, from_torch)
    return found

"""What a Gluon model is made of: its layer table (`compare summary`) under canonical names, the blocks
mirroring the PyTorch module tree."""
from __future__ import annotations

from zoo.contract import first_shape

from . import _compat  # noqa: F401  (must run before mxnet is imported)

import mxnet as mx  # noqa: E402


def _children(block, prefix=""):
    for name, child in block._children.items():
        child = child() if callable(child) and not hasattr(child, "_children") else child  # weakref in MXNet 2
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        yield from _children(child, path)


def layer_shapes(model, input_shape: tuple[int, ...]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Output shape (without the batch) of every leaf block, by forward hooks on one zero batch."""
    shapes: dict[str, tuple] = {}
    kinds: dict[str, str] = {}
    handles = []

    def hook_for(name):
        def hook(block, inputs, output):
            shape = first_shape(output)
            if shape is not None:
                shapes[name] = tuple(shape[1:])
        return hook

    for name, block in _children(model):
        if not block._children:
            kinds[name] = type(block).__name__
            handles.append(block.register_forward_hook(hook_for(name)))
    try:
        # Imperative (not hybridized) so that every child block runs its hooks.
        output = model(mx.nd.zeros(input_shape))
    finally:
        for handle in handles:
            handle.detach()
    shapes[""] = tuple(output.shape[1:])
    return shapes, kinds


def trainable_names(model) -> set[str]:
    from . import canonical_parameters

    return {name for name, p in canonical_parameters(model).items() if p.grad_req != "null"}

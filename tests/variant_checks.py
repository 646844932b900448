"""Helpers for the family tests: build one configuration in every framework and compare with PyTorch."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import zoo
import conftest
from conftest import framework_params


def knobs(config) -> dict:
    """A config as `create_model` overrides, so a variant built from a config function is a call."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def counts(name: str, framework: str, **kwargs) -> tuple[int, int]:
    return zoo.backend(framework).count_parameters(zoo.create_model(name, framework, **kwargs))


def compare_with_torch(name: str, framework: str, *, size: int, batch: int = 2, seed: int = 0,
                       **kwargs) -> float:
    """Relative error of `framework`'s logits against PyTorch's on the same random weights and images;
    fails unless it is <= 1e-4 with the same top-1 and identical parameter counts."""
    torch_backend, backend = zoo.backend("torch"), zoo.backend(framework)
    reference = torch_backend.randomize(zoo.create_model(name, "torch", **kwargs), seed=seed)
    model = zoo.create_model(name, framework, **kwargs)
    assert backend.count_parameters(model) == torch_backend.count_parameters(reference)
    backend.load_weights(model, torch_backend.export_weights(reference))
    in_channels = kwargs.get("in_channels", zoo.get_spec(name).in_channels)
    images = np.random.default_rng(seed).standard_normal((batch, in_channels, size, size)).astype(np.float32)
    expected = torch_backend.predict(reference, images)
    got = backend.predict(model, images)
    assert got.shape == expected.shape
    error = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    assert error <= 1e-4, f"{framework} differs from torch by {error:.2e}"
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    return error


OTHER_FRAMEWORKS = framework_params(conftest.OTHER_FRAMEWORKS)
ALL_FRAMEWORKS = framework_params()
__all__ = ["ALL_FRAMEWORKS", "OTHER_FRAMEWORKS", "compare_with_torch", "counts", "knobs", "pytest"]

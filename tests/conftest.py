"""Shared fixtures: the suite is parametrised over (framework, model) from the registry.

Tests run model by model (see `pytest_collection_modifyitems`), so a small cache of built models
serves every test of one model and is dropped before the next one is built.
"""
from __future__ import annotations

import ctypes
import gc
import os
import tempfile

import numpy as np
import pytest

import zoo
from zoo.specs.densenet import CIFAR_DENSENET_BC

# The suite compiles each model's XLA graph (JAX, TensorFlow's jit_compile) once and runs it on a few
# small images: LLVM's optimisations there cost more compile time than they save (about 30% of the JAX
# tests). Results stay the same: XLA's CPU backend does not use fast-math either way.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
# Tests download nothing from the internet: a named dataset a test did not serve itself is asked of a closed
# loopback port (the discard port), and nothing lands in the user's own cache.
os.environ["ZOO_DATA_MIRROR"] = "http://127.0.0.1:9"
os.environ["ZOO_DATA_DIR"] = os.path.join(tempfile.mkdtemp(prefix="zoo-test-data-"), "datasets")

FRAMEWORKS = tuple(zoo.FRAMEWORKS)  # registry order
# The frameworks checked against the reference framework, whose models define the canonical weights.
OTHER_FRAMEWORKS = tuple(fw for fw in FRAMEWORKS if fw != zoo.REFERENCE_FRAMEWORK)
MODELS = zoo.list_models()
# Deeper and wider configurations registered from a paper's table, built from the same layers as a
# model the suite checks in full (densenet121; the CIFAR stem and bottlenecks in test_densenet.py, BC-100
# in every framework): test_models checks their parameter counts and output shapes in every framework,
# not every per-model check again (a minute each on two cores for 100 to 264 layers).
TABLE_CONFIGURATIONS = ("densenet264", *CIFAR_DENSENET_BC)
# d2l.ai's variants (`*_d2l`; test_d2l.py checks each against d2l's own PyTorch code). Those made only of knobs
# that other tests cross-check in every framework get the same two checks as the table configurations: VGG-11
# at a quarter of vgg11's widths, NiN and DenseNet on 1-channel images (test_classic.py, test_densenet.py), and
# AlexNet, whose one new knob (dropout after the ReLU) no inference check can see. The others are fully
# checked: LeNet's sigmoid, GoogLeNet without BatchNorm and ceil mode, ResNet's shortcut_norm are
# cross-checked nowhere else.
D2L_VARIANTS = tuple(zoo.list_models("*_d2l"))
D2L_COUNTED = ("alexnet_d2l", "vgg11_d2l", "nin_d2l", "densenet_d2l")
FULLY_CHECKED = [name for name in MODELS if name not in TABLE_CONFIGURATIONS + D2L_COUNTED]
# Height and width of the cheap forward/backward checks, where the architecture allows it.
SMALL_SIZE = 32
HEAVY_PARAMS = 100_000_000


def _family_representatives() -> set[str]:
    """The smallest model of each family: where checks that cost a compile per model (XLA, graph
    export) run, since every model of a family is built from the same layers. d2l's variants, smaller
    than most, leave BatchNorm (GoogLeNet) or the bottleneck (DenseNet) out: they stand for no family."""
    smallest: dict[str, str] = {}
    for name in FULLY_CHECKED:
        if name in D2L_VARIANTS:
            continue
        spec = zoo.get_spec(name)
        best = smallest.get(spec.family)
        if best is None or spec.params < zoo.get_spec(best).params:
            smallest[spec.family] = name
    return set(smallest.values())


REPRESENTATIVES = _family_representatives()
# Frameworks that compile a whole model for each new structure (XLA): a float64 backward pass costs
# minutes of compilation for some models on a CPU (test_gradcheck leaves those out).
WHOLE_MODEL_COMPILERS = ("jax",)


def framework_params(frameworks=FRAMEWORKS):
    return [pytest.param(fw, marks=getattr(pytest.mark, fw), id=fw) for fw in frameworks]


def small_size(name: str) -> int:
    signature = zoo.get_spec(name).signature()
    return signature.fixed_size or max(signature.min_size, SMALL_SIZE)


def random_images(name: str, batch: int = 2, seed: int = 0, size: int | None = None) -> np.ndarray:
    spec = zoo.get_spec(name)
    size = size or small_size(name)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, spec.in_channels, size, size)).astype(np.float32)


def _release_memory() -> None:
    gc.collect()
    try:  # hand freed model memory back to the system, so that two workers' peaks do not add up
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


class ModelCache:
    """Keeps the built models of the model and framework under test; moving on to another framework
    or model drops them (PyTorch references are rebuilt when needed). Also keeps one set of random
    canonical weights per model, made by PyTorch."""

    def __init__(self) -> None:
        self.owner: tuple[str, str] | None = None
        self.models: dict[tuple, object] = {}
        self.weights: dict[tuple, dict] = {}

    def _own(self, name: str, framework: str) -> None:
        if self.owner == (name, framework):
            return
        if self.owner is None or self.owner[0] != name:
            self.weights.clear()
        self.models.clear()
        if self.owner is not None:  # compiled functions and graph state kept for the models just dropped
            zoo.backend(self.owner[1]).release_memory()
        _release_memory()
        self.owner = (name, framework)

    def get(self, framework: str, name: str, variant: str = "canonical", **kwargs):
        key = (name, framework, variant, tuple(sorted(kwargs.items())))
        if key in self.models:
            return self.models[key]
        if framework == "torch" and self.owner is not None and self.owner[0] == name and self.owner[1] != "torch":
            # A PyTorch reference for another framework's test: built for the test, not kept.
            return zoo.create_model(name, framework, **kwargs)
        self._own(name, framework)
        self.models[key] = zoo.create_model(name, framework, **kwargs)
        return self.models[key]

    def random_weights(self, name: str, variant: str = "small", **kwargs) -> dict:
        """Canonical weights of the PyTorch build `variant`, every parameter and buffer randomised."""
        key = (name, variant, tuple(sorted(kwargs.items())))
        model = self.get("torch", name, variant, **kwargs)
        if key not in self.weights:
            torch_backend = zoo.backend("torch")
            self.weights[key] = torch_backend.export_weights(torch_backend.randomize(model, seed=len(self.weights) + 1))
        return self.weights[key]


@pytest.fixture(scope="session")
def model_cache() -> ModelCache:
    return ModelCache()


def pytest_collection_finish(session):
    """Import the backends the selected tests use, then freeze the heap (`gc.freeze`): the frameworks'
    own objects, some 800,000 with all four imported, then stay out of every garbage collection, which
    otherwise scans them all each time (0.4 s); a worker collects after every model it drops."""
    frameworks = {fw for item in session.items for fw in FRAMEWORKS if item.get_closest_marker(fw)}
    if any(not item.get_closest_marker("core") and not any(item.get_closest_marker(fw) for fw in FRAMEWORKS)
           for item in session.items):  # tests across frameworks use every installed one
        frameworks.update(zoo.available_frameworks())
    for framework in frameworks:
        try:
            zoo.backend(framework)
        except ImportError:
            pass  # its tests report why
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups marked here
def pytest_collection_modifyitems(config, items):
    # Model-major order keeps every built model in the cache for all of its tests.
    def key(item):
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec else {}
        return (params.get("name", params.get("any_name", "")), params.get("framework", ""))

    def heavy(model: str) -> bool:
        return model in MODELS and zoo.get_spec(model).params > HEAVY_PARAMS

    # The heavy group first: one worker takes it (minutes) while the other works through the rest, rather
    # than it starting last, alone.
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (not heavy(key(item)[0]), key(item), order[id(item)]))
    for item in items:
        # A test parametrised by a framework's name belongs to that framework's suite (`-m tf`).
        callspec = getattr(item, "callspec", None)
        for value in (callspec.params.values() if callspec else ()):
            if isinstance(value, str) and value in FRAMEWORKS:
                item.add_marker(getattr(pytest.mark, value))
    # Under pytest-xdist (--dist loadgroup) one worker takes all tests of a model, and one worker all
    # the 100M-parameter models (VGG): two of those side by side would need over 15 GB.
    for item in items:
        model = key(item)[0]
        if model:
            item.add_marker(pytest.mark.xdist_group("heavy" if heavy(model) else model))

"""The backend contract: every installed backend fulfils it, and `compare/` reads the frameworks only
through it (its source names no framework)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import zoo
from compare.common import framework_installed
from conftest import FRAMEWORKS, framework_params
from zoo.contract import BenchRunner, Trainer, check_backend

pytestmark = pytest.mark.core

COMPARE = Path(__file__).resolve().parent.parent / "compare"
INSTALLED = [fw for fw in FRAMEWORKS if framework_installed(fw)]
# What would tie compare/ to one framework: its name as a string, its import, its backend package, or
# one of its model zoos.
FRAMEWORK_NAMES = re.compile(
    r"\"(torch|tf|mxnet|jax)\"|'(torch|tf|mxnet|jax)'|import (torch|tensorflow|keras|mxnet|jax|flax)"
    r"|zoo_(torch|tf|mxnet|jax)|torchvision|keras|gluon")


@pytest.mark.parametrize("framework", framework_params(INSTALLED))
def test_backend_fulfils_the_contract(framework):
    backend = zoo.backend(framework)
    assert check_backend(backend, reference=framework == zoo.REFERENCE_FRAMEWORK) == []
    assert backend.FRAMEWORK == framework
    assert isinstance(backend.version(), str) and backend.version()


@pytest.mark.parametrize("framework", framework_params(INSTALLED))
def test_bench_runner_and_trainer_follow_their_protocols(framework):
    backend = zoo.backend(framework)
    runner = backend.bench_runner("cpu", {"threads": None})
    assert isinstance(runner, BenchRunner)
    assert runner.framework == framework and runner.info()["device"] == "cpu"
    trainer = backend.make_trainer(zoo.create_model("lenet5", framework, num_classes=10), 0.9, 5e-4, 0)
    assert isinstance(trainer, Trainer)


def test_check_backend_names_what_is_missing():
    import types

    empty = types.ModuleType("zoo_empty")
    empty.LAYOUT = "CHWN"
    problems = check_backend(empty, reference=True)
    assert "zoo_empty has no build_model" in problems and "zoo_empty has no randomize" in problems
    assert "zoo_empty.LAYOUT must be 'NCHW' or 'NHWC'" in problems


def test_compare_names_no_framework():
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(COMPARE.glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if FRAMEWORK_NAMES.search(line)]
    assert not found, "compare/ names a framework:\n" + "\n".join(found)


def test_registry_is_complete():
    assert zoo.REFERENCE_FRAMEWORK in zoo.FRAMEWORKS
    for name, info in zoo.FRAMEWORKS.items():
        assert info.name == name and info.package and info.needs and info.install and info.title
        assert re.fullmatch(r"#[0-9a-f]{6}", info.colour)

"""The backend contract: every installed backend fulfils it, and `compare/` reads the frameworks only
through it (its source names no framework)."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from compare.frameworks import framework_installed
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


@pytest.mark.parametrize("framework", framework_params(INSTALLED))
def test_backend_builds_every_registered_family_through_its_table(framework):
    # The table is the backend's whole list: what a backend builds is read there, never probed on disk.
    families = {zoo.get_spec(name).family for name in zoo.list_models()}
    assert set(zoo.backend(framework).FAMILIES) == families == set(zoo.specs.FAMILIES)


def test_builders_outside_the_signature_are_named():
    import types

    def good(config, *, num_classes, in_channels):
        pass

    def positional(inputs, config, num_classes):
        pass

    def extra(config, *, num_classes, in_channels, rngs):
        pass

    backend = types.ModuleType("zoo_odd")
    backend.FAMILIES = {"good": good, "positional": positional, "extra": extra}
    problems = [p for p in check_backend(backend) if "FAMILIES" in p]
    assert problems == [
        "zoo_odd.FAMILIES['positional']: takes 3 positional arguments (inputs, config, num_classes), not one (config)",
        "zoo_odd.FAMILIES['positional']: takes the keywords (), not (num_classes, in_channels) alone",
        "zoo_odd.FAMILIES['extra']: takes the keywords (in_channels, num_classes, rngs), not (num_classes, in_channels) alone",
    ]


def test_a_family_a_backend_does_not_build_is_named_with_those_it_builds():
    from zoo.contract import family_builder

    with pytest.raises(zoo.UnknownModelError, match=r"framework 'torch' builds no 'capsnet' family; it builds lenet, resnet"):
        family_builder({"resnet": None, "lenet": None}, "torch", "capsnet")


def test_importing_the_backends_changes_nothing_global():
    # JAX's 64-bit mode is process-wide: the zoo turns it on when a float64 model is asked for, never at import.
    code = textwrap.dedent("""
        import jax, zoo
        zoo.backend("jax")
        before = jax.config.jax_enable_x64
        zoo.create_model("lenet5", "jax", dtype="float64")
        print(before, jax.config.jax_enable_x64)
    """)
    if "jax" not in INSTALLED:
        pytest.skip("jax is not installed here")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=COMPARE.parent)
    assert result.stdout.split() == ["False", "True"], result.stderr[-2000:]


def test_check_backend_names_what_is_missing():
    import types

    empty = types.ModuleType("zoo_empty")
    empty.LAYOUT = "CHWN"
    problems = check_backend(empty, reference=True)
    assert "zoo_empty has no build_model" in problems and "zoo_empty has no randomize" in problems
    assert "zoo_empty.LAYOUT must be 'NCHW' or 'NHWC'" in problems


def test_compare_names_no_framework():
    found = [f"{path.name}:{number}: {line.strip()}"
             for path in sorted(COMPARE.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if FRAMEWORK_NAMES.search(line)]
    assert not found, "compare/ names a framework:\n" + "\n".join(found)


def test_registry_is_complete():
    assert zoo.REFERENCE_FRAMEWORK in zoo.FRAMEWORKS
    for name, info in zoo.FRAMEWORKS.items():
        assert info.name == name and info.package and info.needs and info.install and info.title
        assert re.fullmatch(r"#[0-9a-f]{6}", info.colour)

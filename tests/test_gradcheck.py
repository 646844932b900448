"""`compare gradcheck`: one training step's gradients agree across frameworks, and a mismatch is caught."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import zoo
from compare import cli, gradcheck
from conftest import WHOLE_MODEL_COMPILERS, framework_params

# Small models of several kinds, where registered: plain; BatchNorm and residual blocks; depthwise, SE and
# hardswish; SiLU and MBConv. A whole-model compiler spends most of a minute per float64 backward pass on a
# CPU (minutes for EfficientNet): there MobileNet V3's BatchNorm, inverted residuals, depthwise, SE and
# activations stand for ResNet-18's and EfficientNet's.
CANDIDATES = ("lenet5", "resnet18", "mobilenet_v3_small", "efficientnet_b0")
COMPILED_CANDIDATES = ("lenet5", "mobilenet_v3_small")
OTHERS = [fw for fw in zoo.available_frameworks() if fw != zoo.REFERENCE_FRAMEWORK]
CASES = [pytest.param(name, fw, marks=getattr(pytest.mark, fw), id=f"{name}-{fw}")
         for name in CANDIDATES if name in zoo.list_models() for fw in OTHERS
         if fw not in WHOLE_MODEL_COMPILERS or name in COMPILED_CANDIDATES]


@pytest.mark.parametrize("name, framework", CASES)
def test_gradients_agree_across_frameworks(name, framework):
    result = gradcheck.gradcheck_model(name, [framework])
    assert result.reference == zoo.REFERENCE_FRAMEWORK
    assert [check.framework for check in result.checks] == [framework]
    for check in result.checks:
        assert not check.problems
        assert check.tensors
    assert result.ok, gradcheck.report(result)


@pytest.mark.parametrize("framework", framework_params(OTHERS))
def test_a_planted_mismatch_fails_and_is_named(framework):
    def tamper(receiver, weights):
        if receiver == framework:  # the reference keeps the true weights
            weights["features.3.weight"] = weights["features.3.weight"] * 1.05
        return weights

    result = gradcheck.gradcheck_model("lenet5", [framework], tamper=tamper)
    assert not result.ok
    assert result.checks[0].max_error > 1e-2
    assert "FAIL lenet5" in gradcheck.report(result)


@pytest.mark.parametrize("framework", framework_params(OTHERS))
def test_command_line_exits_non_zero_and_names_the_worst_tensor(monkeypatch, capsys, framework):
    backend = zoo.backend(framework)
    honest = backend.loss_gradients

    def planted(model, images, labels):
        loss, grads = honest(model, images, labels)
        grads["features.3.weight"] = grads["features.3.weight"] * 1.01
        return loss, grads

    monkeypatch.setattr(backend, "loss_gradients", planted)
    assert cli.main(["gradcheck", "lenet5", "--frameworks", framework]) == 1
    out = capsys.readouterr().out
    assert "FAIL lenet5" in out and "worst features.3.weight: " in out


@pytest.mark.parametrize("framework", framework_params(OTHERS))
def test_command_line_passes_and_rejects_unknown_models(capsys, framework):
    assert cli.main(["gradcheck", "lenet*", "--frameworks", framework]) == 0
    assert "ok   lenet5" in capsys.readouterr().out
    assert cli.main(["gradcheck", "lenet_5"]) == 2
    assert "unknown model 'lenet_5'" in capsys.readouterr().err
    assert cli.main(["gradcheck"]) == 2


def test_zero_gradients_are_judged_against_their_layers_gradient():
    # A conv bias right before a BatchNorm has a true gradient of 0: rounding noise must not fail it.
    reference = {"conv.weight": np.ones((10, 10)), "conv.bias": np.zeros(10),
                 "fc.weight": np.full((5, 5), 0.1), "fc.bias": np.full(5, 1e-3)}
    grads = {"conv.weight": np.ones((10, 10)), "conv.bias": np.full(10, 1e-7),
             "fc.weight": np.full((5, 5), 0.101), "fc.bias": np.full(5, 1.1e-3)}
    errors, problems = gradcheck.compare_gradients(reference, grads)
    by_name = {e.name: e for e in errors}
    assert not problems
    assert by_name["conv.bias"].error < 1e-6 and by_name["conv.bias"].absolute == pytest.approx(np.sqrt(10) * 1e-7)
    assert errors[0].name == "fc.weight" and errors[0].error == pytest.approx(0.01, rel=1e-4)
    assert by_name["fc.bias"].error == pytest.approx(np.sqrt(5) * 1e-4 / np.sqrt(0.25 + 5e-6))
    strict = {e.name: e for e in gradcheck.compare_gradients(reference, grads, layer_floor=0.0)[0]}
    assert strict["fc.bias"].error == pytest.approx(0.1)


def test_missing_and_absent_gradients_are_problems():
    reference = {"a.weight": np.ones(3), "a.bias": np.ones(3), "b.weight": np.ones(3)}
    _, problems = gradcheck.compare_gradients(reference, {"a.weight": None, "b.weight": np.ones(3), "c.weight": np.ones(3)})
    assert problems == ["a.bias: missing", "c.weight: not in the reference", "a.weight: no gradient"]


def test_random_knobs_are_turned_off():
    @dataclass(frozen=True)
    class Config(zoo.FamilyConfig):
        dropout: float = 0.2
        stochastic_depth_prob: float = 0.1
        drop_rate: int = 1
        width_mult: float = 1.0
        dropout_enabled: bool = True

    assert gradcheck.random_knobs(Config()) == {"dropout": 0.0, "stochastic_depth_prob": 0.0, "drop_rate": 0}

"""`compare gradcheck`: one training step's gradients agree across frameworks, and a mismatch is caught."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import zoo
from compare import cli, gradcheck

# Small models from several families, where registered: plain, BatchNorm, depthwise, shuffles, stochastic depth.
CANDIDATES = ("lenet5", "resnet18", "mobilenet_v2", "shufflenet_v2_x0_5", "efficientnet_b0")
MODELS = [name for name in CANDIDATES if name in zoo.list_models()]
OTHERS = [fw for fw in zoo.available_frameworks() if fw != "torch"]


@pytest.mark.parametrize("name", MODELS)
def test_gradients_agree_across_frameworks(name):
    result = gradcheck.gradcheck_model(name, batch=2)
    assert [check.framework for check in result.checks] == OTHERS
    for check in result.checks:
        assert not check.problems
        assert check.tensors
    assert result.ok, gradcheck.report(result)


def test_a_planted_mismatch_fails_and_is_named():
    def tamper(framework, weights):
        if framework == "mxnet":
            weights["features.3.weight"] = weights["features.3.weight"] * 1.05
        return weights

    result = gradcheck.gradcheck_model("lenet5", ["tf", "mxnet"], tamper=tamper)
    checks = {check.framework: check for check in result.checks}
    assert not result.ok
    assert checks["tf"].max_error < 1e-5
    assert checks["mxnet"].max_error > 1e-2
    assert "FAIL lenet5" in gradcheck.report(result)


def test_command_line_exits_non_zero_and_names_the_worst_tensor(monkeypatch, capsys):
    backend = zoo.backend("tf")
    honest = backend.loss_gradients

    def planted(model, images, labels):
        loss, grads = honest(model, images, labels)
        grads["features.3.weight"] = grads["features.3.weight"] * 1.01
        return loss, grads

    monkeypatch.setattr(backend, "loss_gradients", planted)
    assert cli.main(["gradcheck", "lenet5", "--frameworks", "tf"]) == 1
    out = capsys.readouterr().out
    assert "FAIL lenet5" in out and "worst features.3.weight: 1.00e-02" in out


def test_command_line_passes_and_rejects_unknown_models(capsys):
    assert cli.main(["gradcheck", "lenet*"]) == 0
    assert "ok   lenet5" in capsys.readouterr().out
    assert cli.main(["gradcheck", "lenet_5"]) == 2
    assert "unknown model 'lenet_5'" in capsys.readouterr().err
    assert cli.main(["gradcheck"]) == 2


def test_zero_gradients_are_judged_against_the_whole_gradient():
    reference = {"w": np.ones((10, 10)), "bias_before_bn": np.zeros(10), "b": np.full(10, 1e-3)}
    grads = {"w": np.ones((10, 10)), "bias_before_bn": np.full(10, 1e-9), "b": np.full(10, 1.1e-3)}
    errors, problems = gradcheck.compare_gradients(reference, grads)
    by_name = {e.name: e for e in errors}
    assert not problems
    assert by_name["bias_before_bn"].error < 1e-3 and by_name["bias_before_bn"].absolute > 0
    assert errors[0].name == "b" and by_name["b"].error == pytest.approx(0.1)
    _, problems = gradcheck.compare_gradients(reference, {"w": None, "b": grads["b"], "extra": grads["b"]})
    assert problems == ["bias_before_bn: missing", "extra: not in the reference", "w: no gradient"]


def test_random_knobs_are_turned_off():
    @dataclass(frozen=True)
    class Config(zoo.FamilyConfig):
        dropout: float = 0.2
        stochastic_depth_prob: float = 0.1
        drop_rate: int = 1
        width_mult: float = 1.0
        dropout_enabled: bool = True

    assert gradcheck.random_knobs(Config()) == {"dropout": 0.0, "stochastic_depth_prob": 0.0, "drop_rate": 0}

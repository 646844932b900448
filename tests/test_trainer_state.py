"""A Trainer's checkpoint (`state`, `load_state`) and dropout seed (`reseed`): training resumed from the
model's weights and the optimiser's state takes exactly the steps of training never interrupted."""
from __future__ import annotations

import re

import numpy as np
import pytest

import zoo
from conftest import framework_params
from zoo.weights import MOMENTUM

FRAMEWORKS = zoo.available_frameworks()
MOMENTUM_, WEIGHT_DECAY = 0.9, 5e-4
# Dropout in both; the DenseNet (a CIFAR stem, two one-layer dense blocks) has BatchNorm too, so that
# its running statistics travel in the weights; LeNet's dense head has Keras' flatten permutation.
MODELS = {
    "lenet5": ("lenet5", {"dropout": 0.5}),
    "densenet": ("densenet121", {"growth_rate": 4, "block_config": (1, 1), "num_init_features": 8, "bn_size": 2,
                                 "stem": "cifar", "drop_rate": 0.5}),
}
BATCH, CLASSES = 4, 10
RATES = (0.1, 0.05, 0.02, 0.01)  # a changing rate: MXNet's momentum carries it (mom = -lr * buf)


def _build(model: str, framework: str, weights=None):
    name, knobs = MODELS[model]
    built = zoo.create_model(name, framework, num_classes=CLASSES, **knobs)
    if weights is not None:
        zoo.backend(framework).load_weights(built, weights)
    return built


def _trainer(built, framework: str, seed: int = 0):
    return zoo.backend(framework).make_trainer(built, MOMENTUM_, WEIGHT_DECAY, seed)


def _batches(model: str, count: int = len(RATES)):
    name, _ = MODELS[model]
    rng = np.random.default_rng(1)
    shape = (BATCH, zoo.get_spec(name).in_channels, 32, 32)
    return [(rng.standard_normal(shape).astype(np.float32), rng.integers(0, CLASSES, BATCH)) for _ in range(count)]


def _steps(trainer, batches, rates) -> list[float]:
    return [trainer.step(trainer.prepare(x), trainer.labels(y), lr) for (x, y), lr in zip(batches, rates)]


def _assert_same(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_a_resumed_run_takes_the_steps_of_the_uninterrupted_one(framework, model, tmp_path):
    backend, batches = zoo.backend(framework), _batches(model)
    start = backend.export_weights(_build(model, framework))

    # A: four steps, reseeded as an epoch would be before the first and the third.
    a = _trainer(_build(model, framework, start), framework)
    a.reseed(11)
    losses = _steps(a, batches[:2], RATES[:2])
    a.reseed(12)
    losses += _steps(a, batches[2:], RATES[2:])

    # B: the first two steps, then a checkpoint, written to files and read back.
    b = _trainer(_build(model, framework, start), framework)
    b.reseed(11)
    assert _steps(b, batches[:2], RATES[:2]) == losses[:2]
    zoo.weights.save(tmp_path / "weights.safetensors", backend.export_weights(b.model))
    zoo.weights.save(tmp_path / "state.safetensors", b.state())
    weights, state = zoo.weights.load(tmp_path / "weights.safetensors"), zoo.weights.load(tmp_path / "state.safetensors")
    _assert_same(state, b.state())
    assert set(state) - {"last_lr"} == {MOMENTUM + name for name in backend.trainable_names(b.model)}
    for name in backend.trainable_names(b.model):  # the canonical layout, and the buffers are in use
        assert state[MOMENTUM + name].shape == weights[name].shape
    assert any(np.any(array) for array in state.values())

    # C: a new model and Trainer from the checkpoint, reseeded as A was, the last two steps.
    c = _trainer(_build(model, framework, weights), framework, seed=999)
    c.load_state(state)
    _assert_same(c.state(), state)
    c.reseed(12)
    assert _steps(c, batches[2:], RATES[2:]) == losses[2:]
    _assert_same(backend.export_weights(c.model), backend.export_weights(a.model))
    _assert_same(c.state(), a.state())


@pytest.mark.parametrize("model", ["lenet5"])  # every dropout layer of a framework draws from the same mechanism
@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_reseed_fixes_the_dropout_masks(framework, model):
    backend, batches = zoo.backend(framework), _batches(model, 2)
    start = backend.export_weights(_build(model, framework))

    def losses(made_with, reseeded=None):
        trainer = _trainer(_build(model, framework, start), framework, seed=made_with)
        if reseeded is not None:
            trainer.reseed(reseeded)
        return _steps(trainer, batches, RATES[:2])

    first = losses(6, reseeded=5)
    assert losses(5) == first  # the constructor's seed is a reseed
    assert losses(5, reseeded=6)[0] != first[0]  # the first loss: same weights, other masks


@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_a_state_that_does_not_fit_is_refused_whole(framework):
    trainer = _trainer(_build("densenet", framework), framework)
    trainer.reseed(0)
    _steps(trainer, _batches("densenet", 1), RATES[:1])
    state = trainer.state()
    name = sorted(key for key in state if key.startswith(MOMENTUM))[0]
    wrong = np.zeros((*state[name].shape, 2), np.float32)

    bad = [
        ({key: value for key, value in state.items() if key != name}, rf"1 missing.*\n  missing: {re.escape(name)} "),
        ({**state, "momentum.nope": np.zeros(3, np.float32)}, r"1 unexpected.*\n  unexpected: momentum\.nope"),
        ({**state, name: wrong}, rf"1 mis-shaped.*\n  mis-shaped: {re.escape(name)}: expected"),
        ({**state, name: state[name].astype(np.int32)}, rf"1 wrong type.*\n  wrong type: {re.escape(name)}: dtype"),
        # Everything else is right: nothing of it may be applied either.
        ({**{key: value + 1 for key, value in state.items()}, name: wrong}, re.escape(name)),
    ]
    for mapping, message in bad:
        with pytest.raises(zoo.WeightMismatchError, match=f"optimizer state tensors do not fit (?s:.*){message}"):
            trainer.load_state(mapping)
        _assert_same(trainer.state(), state)
    if "last_lr" in state:  # MXNet: the rate its momentum holds the buffers at
        for rate, message in ((-0.1, "must be a finite rate >= 0"), (0.0, "needs the last_lr they were made at")):
            with pytest.raises(zoo.WeightMismatchError, match=message):
                trainer.load_state({**state, "last_lr": np.array([rate])})
            _assert_same(trainer.state(), state)
    with pytest.raises(TypeError, match="optimizer state tensors must be a mapping"):
        trainer.load_state(list(state.items()))
    for seed, error in ((-1, ValueError), (2 ** 32, ValueError), (1.0, TypeError)):
        with pytest.raises(error, match="seed must be an integer"):
            trainer.reseed(seed)

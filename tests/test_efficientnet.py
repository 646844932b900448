"""EfficientNet B0-B7: the compound-scaling table, torchvision key names, BatchNorm per variant,
stochastic depth (training only, in every framework), training-mode gradients across frameworks,
a custom scaled variant, and invalid knobs."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from conftest import FRAMEWORKS, OTHER_FRAMEWORKS, framework_params
from zoo.arith import round_filters, round_repeats

# name: (width, depth, dropout, paper resolution); torchvision's builders and Table 2 of the paper.
TABLE = {
    "efficientnet_b0": (1.0, 1.0, 0.2, 224),
    "efficientnet_b1": (1.0, 1.1, 0.2, 240),
    "efficientnet_b2": (1.1, 1.2, 0.3, 260),
    "efficientnet_b3": (1.2, 1.4, 0.3, 300),
    "efficientnet_b4": (1.4, 1.8, 0.4, 380),
    "efficientnet_b5": (1.6, 2.2, 0.4, 456),
    "efficientnet_b6": (1.8, 2.6, 0.5, 528),
    "efficientnet_b7": (2.0, 3.1, 0.5, 600),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_variant_table(name):
    spec = zoo.get_spec(name)
    width, depth, dropout, size = TABLE[name]
    config = spec.config
    assert (config.width_mult, config.depth_mult, config.dropout, spec.input_size) == (width, depth, dropout, (3, size, size))
    # torchvision gives B5-B7 (weights ported from TensorFlow) TensorFlow's BatchNorm settings.
    tf_norm = name in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7")
    assert (config.bn_eps, config.bn_momentum) == ((1e-3, 0.01) if tf_norm else (1e-5, 0.1))
    assert config.stochastic_depth_prob == 0.2


def test_registered_names():
    assert zoo.list_models("efficientnet*") == [f"efficientnet_b{i}" for i in range(8)]


# Keys and shapes of torchvision's efficientnet_b0 / b7 checkpoints.
KNOWN_KEYS = {
    "efficientnet_b0": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.1.0.block.0.0.weight": (32, 1, 3, 3),
        "features.1.0.block.1.fc1.weight": (8, 32, 1, 1),
        "features.1.0.block.2.0.weight": (16, 32, 1, 1),
        "features.2.0.block.0.0.weight": (96, 16, 1, 1),
        "features.2.0.block.2.fc1.weight": (4, 96, 1, 1),  # SE squeezes the input width: 16 // 4
        "features.2.1.block.2.fc2.bias": (144,),
        "features.6.3.block.1.0.weight": (1152, 1, 5, 5),
        "features.7.0.block.3.0.weight": (320, 1152, 1, 1),
        "features.8.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    },
    "efficientnet_b7": {
        "features.0.0.weight": (64, 3, 3, 3),
        "features.1.3.block.2.0.weight": (32, 32, 1, 1),  # ceil(1 * 3.1) = 4 blocks in stage 1
        "features.6.12.block.3.1.running_var": (384,),  # ceil(4 * 3.1) = 13 blocks in stage 6
        "features.8.0.weight": (2560, 640, 1, 1),
        "classifier.1.weight": (1000, 2560),
    },
}


@pytest.mark.parametrize("name", sorted(KNOWN_KEYS))
def test_torchvision_keys(name):
    state = zoo.create_model(name, "torch").state_dict()
    for key, shape in KNOWN_KEYS[name].items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key
    # No 9th stage, no extra head: features.0 stem, 1-7 stages, 8 head conv.
    assert not any(key.startswith("features.9.") for key in state)


def test_stochastic_depth_grows_linearly_with_depth():
    stages = zoo.get_spec("efficientnet_b0").config.plan()
    probs = [block.stochastic_depth for stage in stages for block in stage]
    assert len(probs) == 16
    np.testing.assert_allclose(probs, [0.2 * i / 16 for i in range(16)])


@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_stochastic_depth_acts_in_training_only(framework):
    # A large drop probability and no dropout: training passes differ, inference passes do not.
    knobs = dict(width_mult=0.25, depth_mult=0.34, stochastic_depth_prob=0.9, dropout=0.0)
    model = zoo.create_model("efficientnet_b0", framework, num_classes=4, **knobs)
    images = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    backend = zoo.backend(framework)
    inference = [backend.predict(model, images) for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    training = [_training_forward(framework, model, images) for _ in range(3)]
    assert not (np.allclose(training[0], training[1]) and np.allclose(training[0], training[2]))


def _training_forward(framework, model, images):
    if framework == "torch":
        import torch

        model.train()
        with torch.no_grad():
            out = model(torch.from_numpy(images)).numpy()
        model.eval()
        return out
    if framework == "tf":
        return np.asarray(model(np.transpose(images, (0, 2, 3, 1)), training=True))
    if framework == "jax":
        model.train()
        out = np.asarray(model(np.transpose(images, (0, 2, 3, 1))))
        model.eval()
        return out
    import mxnet as mx

    with mx.autograd.train_mode():
        return model(mx.nd.array(images)).asnumpy()


@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_training_mode_loss_and_gradients_match_pytorch(framework):
    # Without the random parts (dropout, stochastic depth), a training step is deterministic: batch
    # statistics, SiLU, SE and the shortcut must give PyTorch's loss and gradients.
    knobs = dict(width_mult=0.5, depth_mult=0.5, stochastic_depth_prob=0.0, dropout=0.0)
    torch_backend = zoo.backend("torch")
    reference = torch_backend.randomize(zoo.create_model("efficientnet_b0", "torch", num_classes=5, **knobs), seed=1)
    weights = torch_backend.export_weights(reference)
    # 64x64 leaves 2x2 maps at the end: BatchNorm over 4 x 1 x 1 values would be ill-conditioned.
    images = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    labels = np.array([0, 1, 2, 3])
    loss, grads = torch_backend.loss_gradients(reference, images, labels)
    expected = np.concatenate([grads[k].ravel() for k in sorted(grads)])
    backend = zoo.backend(framework)
    model = zoo.create_model("efficientnet_b0", framework, num_classes=5, **knobs)
    backend.load_weights(model, weights)
    got_loss, got_grads = backend.loss_gradients(model, images, labels)
    assert sorted(got_grads) == sorted(grads)
    assert abs(got_loss - loss) <= 1e-5 * abs(loss)
    # One relative error over all gradients: some BatchNorm biases feed another BatchNorm and
    # have a gradient of exactly zero in theory, rounding noise in practice.
    got = np.concatenate([got_grads[k].ravel() for k in sorted(grads)])
    error = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert error <= 1e-4, f"{framework}: gradient relative error {error:.2e}"


@pytest.mark.parametrize("framework", framework_params(OTHER_FRAMEWORKS))
def test_custom_scaled_variant_agrees_everywhere(framework):
    # A network the paper does not list, made by the same compound-scaling rule.
    knobs = dict(width_mult=0.75, depth_mult=0.6, dropout=0.1)
    torch_backend = zoo.backend("torch")
    reference = torch_backend.randomize(zoo.create_model("efficientnet_b0", "torch", num_classes=6, **knobs), seed=2)
    weights = torch_backend.export_weights(reference)
    images = np.random.default_rng(3).standard_normal((3, 3, 48, 48)).astype(np.float32)
    expected = torch_backend.predict(reference, images)
    counts = torch_backend.count_parameters(reference)
    backend = zoo.backend(framework)
    model = zoo.create_model("efficientnet_b0", framework, num_classes=6, **knobs)
    assert backend.count_parameters(model) == counts
    backend.load_weights(model, weights)
    got = backend.predict(model, images)
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-4
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("framework", framework_params(FRAMEWORKS))
def test_builders_take_batchnorm_settings_from_the_config(framework):
    model = zoo.create_model("efficientnet_b0", framework, num_classes=3, width_mult=0.25, depth_mult=0.25,
                             bn_eps=1e-3, bn_momentum=0.01)
    if framework == "torch":
        import torch

        found = {(m.eps, m.momentum) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    elif framework == "tf":
        import keras

        found = {(layer.epsilon, round(1 - layer.momentum, 6)) for layer in model.layers
                 if isinstance(layer, keras.layers.BatchNormalization)}
    elif framework == "jax":
        from zoo_jax.layers import BatchNorm2d

        found = {(m.epsilon, round(1 - m.momentum, 6)) for _, m in model.iter_modules() if isinstance(m, BatchNorm2d)}
    else:
        def blocks(block):
            yield block
            for child in block._children.values():
                yield from blocks(child)
        found = {(b._kwargs["eps"], round(1 - b._kwargs["momentum"], 6)) for b in blocks(model)
                 if type(b).__name__ == "BatchNorm"}
    assert found == {(1e-3, 0.01)}


@pytest.mark.parametrize("channels,width,expected", [(32, 1.0, 32), (32, 1.1, 32), (16, 1.2, 24), (320, 1.4, 448),
                                                     (32, 2.0, 64), (1280 // 4, 1.8, 576), (24, 1.6, 40)])
def test_round_filters(channels, width, expected):
    assert round_filters(channels, width) == expected


@pytest.mark.parametrize("repeats,depth,expected", [(1, 1.0, 1), (2, 1.1, 3), (3, 1.8, 6), (4, 3.1, 13), (1, 3.1, 4)])
def test_round_repeats(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


@pytest.mark.parametrize("knobs,match", [
    ({"width_mult": 0}, "width_mult"),
    ({"width_mult": -1.0}, "width_mult"),
    ({"depth_mult": 0.0}, "depth_mult"),
    ({"stochastic_depth_prob": 1.0}, "stochastic_depth_prob"),
    ({"dropout": -0.1}, "dropout"),
    ({"stages": ()}, "stages"),
    ({"stages": ((6, 4, 1, 32, 16, 1),)}, "odd"),
    ({"stages": ((6, 3, 1, 32, 16),)}, "stage row"),
    ({"bn_momentum": 1.5}, "bn_momentum"),
])
def test_invalid_knobs_raise_value_error(knobs, match):
    with pytest.raises(ValueError, match=match):
        zoo.create_model("efficientnet_b0", "torch", **knobs)

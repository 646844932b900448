"""DenseNet family: d2l's small DenseNet and the CIFAR DenseNet-BC as calls in every framework,
torchvision key names, memory_efficient, and knob validation."""
from __future__ import annotations

import numpy as np
import pytest

import zoo
from zoo.specs.densenet import CIFAR_DENSENET_BC, DenseNetConfig, bn_state, d2l_densenet, densenet_bc_cifar
from variant_checks import ALL_FRAMEWORKS, OTHER_FRAMEWORKS, compare_with_torch, counts, knobs

# d2l.ai 8.7 on Fashion-MNIST: 1 input channel, 10 classes. d2l prints no count; this is computed
# (stem 3,200 + 128; blocks and transitions; norm5 496; classifier 2,490).
D2L = dict(in_channels=1, num_classes=10, **knobs(d2l_densenet()))
D2L_PARAMS = 758_226
# Huang et al. Table 2: DenseNet-BC (L=100, k=12) has "0.8M" parameters on CIFAR-10; exactly 769,162
# here (torchvision's bias-free convolutions), the figure PyTorch re-implementations report.
BC100 = dict(num_classes=10, **knobs(densenet_bc_cifar(100, 12)))
BC100_PARAMS = 769_162
SMALL = dict(num_classes=5, growth_rate=4, block_config=(2, 3), num_init_features=8, stem="cifar")
# MXNet recomputes only where every channel offset is a whole 16-channel oneDNN block.
ALIGNED = dict(num_classes=5, growth_rate=16, block_config=(2, 3), num_init_features=32, bn_size=1, stem="cifar")


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_d2l_densenet_counts(framework):
    assert counts("densenet121", framework, **D2L) == (D2L_PARAMS, D2L_PARAMS + bn_state(d2l_densenet()))


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_d2l_densenet_matches_torch(framework):
    compare_with_torch("densenet121", framework, size=32, **D2L)


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_cifar_densenet_bc_counts(framework):
    trainable, total = counts("densenet121", framework, **BC100)
    assert (trainable, total) == (BC100_PARAMS, BC100_PARAMS + bn_state(densenet_bc_cifar()))
    assert round(trainable / 1e6, 1) == 0.8  # the paper's figure


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_cifar_densenet_bc_matches_torch(framework):
    compare_with_torch("densenet121", framework, size=32, **BC100)


def test_variant_structure():
    d2l = zoo.create_model("densenet121", "torch", **D2L).state_dict()
    assert tuple(d2l["features.conv0.weight"].shape) == (64, 1, 7, 7)
    assert tuple(d2l["features.denseblock1.denselayer1.conv1.weight"].shape) == (32, 64, 3, 3)
    assert "features.denseblock1.denselayer1.conv2.weight" not in d2l  # no bottleneck
    assert "features.conv0.bias" in d2l and "features.transition3.conv.bias" in d2l
    assert tuple(d2l["classifier.weight"].shape) == (10, 248)
    bc = zoo.create_model("densenet121", "torch", **BC100).state_dict()
    assert tuple(bc["features.conv0.weight"].shape) == (24, 3, 3, 3)
    assert "features.norm0.weight" not in bc and "features.transition3.conv.weight" not in bc
    assert tuple(bc["features.denseblock3.denselayer16.conv2.weight"].shape) == (12, 48, 3, 3)
    assert tuple(bc["features.transition1.conv.weight"].shape) == (108, 216, 1, 1)
    assert tuple(bc["classifier.weight"].shape) == (10, 342)


def test_torchvision_key_names_and_shapes():
    state = zoo.create_model("densenet121", "torch").state_dict()
    expected = {
        "features.conv0.weight": (64, 3, 7, 7),
        "features.norm0.running_mean": (64,),
        "features.denseblock1.denselayer1.norm1.weight": (64,),
        "features.denseblock1.denselayer1.conv1.weight": (128, 64, 1, 1),
        "features.denseblock1.denselayer1.norm2.bias": (128,),
        "features.denseblock1.denselayer1.conv2.weight": (32, 128, 3, 3),
        "features.denseblock1.denselayer6.norm1.weight": (224,),
        "features.transition1.norm.weight": (256,),
        "features.transition1.conv.weight": (128, 256, 1, 1),
        "features.denseblock4.denselayer16.conv2.weight": (32, 128, 3, 3),
        "features.norm5.running_var": (1024,),
        "classifier.weight": (1000, 1024),
        "classifier.bias": (1000,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(key.endswith(".bias") and ".conv" in key for key in state)  # bias-free convs
    assert tuple(zoo.create_model("densenet161", "torch").state_dict()["classifier.weight"].shape) == (1000, 2208)


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_weight_names_equal_torch(framework):
    names = set(zoo.backend(framework).export_weights(zoo.create_model("densenet121", framework, **SMALL)))
    assert names == set(zoo.backend("torch").export_weights(zoo.create_model("densenet121", "torch", **SMALL)))


def test_torchvision_initialisation():
    model = zoo.create_model("densenet121", "torch", **SMALL).requires_grad_(False)
    assert float(model.classifier.bias.abs().max()) == 0.0
    norm = model.features.denseblock1.denselayer1.norm1
    assert float(norm.weight.min()) == 1.0 and float(norm.bias.abs().max()) == 0.0


def _gradients(framework, memory_efficient, knobs_=SMALL):
    backend = zoo.backend(framework)
    reference = zoo.backend("torch").randomize(zoo.create_model("densenet121", "torch", **knobs_), seed=2)
    model = zoo.create_model("densenet121", framework, memory_efficient=memory_efficient, **knobs_)
    backend.load_weights(model, zoo.backend("torch").export_weights(reference))
    images = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    logits = backend.predict(model, images)
    loss, grads = backend.loss_gradients(model, images, np.array([1, 4]))
    return logits, loss, grads


@pytest.mark.parametrize("framework", ALL_FRAMEWORKS)
def test_memory_efficient_gives_the_same_outputs_and_gradients(framework):
    _check_the_same_outputs_and_gradients(framework, SMALL)


def test_mxnet_recomputing_gives_the_same_outputs_and_gradients():
    _check_the_same_outputs_and_gradients("mxnet", ALIGNED)


def _check_the_same_outputs_and_gradients(framework, knobs_):
    logits, loss, grads = _gradients(framework, False, knobs_)
    logits_me, loss_me, grads_me = _gradients(framework, True, knobs_)
    np.testing.assert_allclose(logits_me, logits, rtol=1e-6, atol=1e-6)
    assert loss_me == pytest.approx(loss, rel=1e-6)
    assert grads_me.keys() == grads.keys()
    for key in grads:
        np.testing.assert_allclose(grads_me[key], grads[key], rtol=1e-5, atol=1e-6, err_msg=key)


# (6, 2) with k=12: the first block ends at 96 channels, whole 16-channel blocks, reached in steps of 12.
@pytest.mark.parametrize("growth_rate, block_config", [(12, (2, 3)), (16, (2, 3)), (12, (6, 2))])
def test_float32_training_gradients_match_torch_for_any_growth_rate(growth_rate, block_config):
    """MXNet runs growth rates in whole 16-channel blocks through oneDNN and the rest through its plain
    ReLU and, at a block's end on whole blocks, its own concatenation, because its oneDNN concat backward
    breaks on the others: all must train like PyTorch."""
    knobs_ = dict(SMALL, growth_rate=growth_rate, num_init_features=2 * growth_rate, block_config=block_config)
    reference = zoo.backend("torch").randomize(zoo.create_model("densenet121", "torch", **knobs_), seed=5)
    images = np.random.default_rng(6).standard_normal((2, 3, 8, 8)).astype(np.float32)
    labels = np.array([0, 3])
    loss_torch, grads_torch = zoo.backend("torch").loss_gradients(reference, images, labels)
    model = zoo.create_model("densenet121", "mxnet", **knobs_)
    zoo.backend("mxnet").load_weights(model, zoo.backend("torch").export_weights(reference))
    model.hybridize(static_alloc=True)  # as the trainer and the bench run it: oneDNN's layouts are the graph's
    loss, grads = zoo.backend("mxnet").loss_gradients(model, images, labels)
    assert loss == pytest.approx(loss_torch, rel=1e-5)
    for key, grad in grads_torch.items():
        np.testing.assert_allclose(grads[key], grad, rtol=1e-3, atol=1e-5, err_msg=key)


def test_memory_efficient_really_recomputes():
    import torch

    torch_model = zoo.create_model("densenet121", "torch", memory_efficient=True, **SMALL)
    # A pre-hook: non-reentrant checkpointing stops recomputing as soon as it has what backward needs.
    conv = torch_model.features.denseblock1.denselayer2.conv1
    calls = []
    conv.register_forward_pre_hook(lambda *args: calls.append(1))
    torch_model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert len(calls) == 2  # once forward, once again in the backward pass

    tf_model = zoo.create_model("densenet121", "tf", memory_efficient=True, **SMALL)
    recomputed = [layer for layer in tf_model.layers if layer.name.endswith(".recomputed")]
    assert len(recomputed) == sum(SMALL["block_config"])
    block = recomputed[1].block
    original, tf_calls = block.call, []

    def counting(*args, **kwargs):
        tf_calls.append(1)
        return original(*args, **kwargs)

    block.call = counting
    zoo.backend("tf").loss_gradients(tf_model, np.ones((2, 3, 8, 8), np.float32), np.array([0, 1]))
    assert len(tf_calls) == 2


def test_mxnet_memory_efficient_training_recomputes_in_a_bound_executor():
    zoo.backend("mxnet")  # before mxnet itself: the backend restores NumPy's alias it needs
    import mxnet as mx

    model = zoo.create_model("densenet121", "mxnet", memory_efficient=True, **ALIGNED)
    images, labels = np.ones((2, 3, 8, 8), np.float32), np.array([0, 1])
    trainer = zoo.backend("mxnet").make_trainer(model, 0.9, 0.0, 0)
    for _ in range(2):  # a Trainer's in-place updates between passes reach the bound executor
        trainer.step(images, labels, 0.1)
    (executor,) = model._executors.values()
    graph = executor.executor.debug_str()
    # Each dense layer's norm1 runs again in the backward pass, a node of its own ("..._mirror").
    norm1 = [p.name[:-len("_gamma")] for name, p in zoo.backend("mxnet").canonical_parameters(model).items()
             if name.endswith("norm1.weight")]
    assert len(norm1) == sum(ALIGNED["block_config"])
    assert all(f"{prefix}_fwd_mirror" in graph for prefix in norm1)
    plain = zoo.create_model("densenet121", "mxnet", **ALIGNED)
    assert plain.mirrored_loss(mx.nd.array(images), mx.nd.array(labels)) is None  # the knob off: autograd
    # Unaligned 4-channel maps: oneDNN cannot differentiate their concatenation, so no recomputation.
    unaligned = zoo.create_model("densenet121", "mxnet", memory_efficient=True, **SMALL)
    assert unaligned.mirrored_loss(mx.nd.array(images), mx.nd.array(labels)) is None


def test_jax_training_step_keeps_the_recomputation_on_the_cpu():
    """XLA:CPU would merge jax.checkpoint's recomputation back into the forward pass; the trainer's
    compiler options keep it, and with it the smaller temporary memory."""
    jnp = pytest.importorskip("jax.numpy")
    compiled = {}
    for memory_efficient in (False, True):
        model = zoo.create_model("densenet121", "jax", memory_efficient=memory_efficient, **SMALL)
        trainer = zoo.backend("jax").make_trainer(model, 0.9, 0.0, 0)
        x = trainer.prepare(np.ones((2, 3, 8, 8), np.float32))
        compiled[memory_efficient] = trainer.step_fn.lower(
            trainer.params, trainer.rest, trainer.buffers, x, trainer.labels(np.array([0, 1])),
            jnp.asarray(0.1, jnp.float32)).compile()
    assert "opt-barrier" in compiled[True].as_text() and "opt-barrier" not in compiled[False].as_text()
    temp = {me: c.memory_analysis().temp_size_in_bytes for me, c in compiled.items()}
    assert temp[True] < temp[False]


@pytest.mark.parametrize("name", sorted(CIFAR_DENSENET_BC))
def test_cifar_densenet_bc_registrations_round_to_the_paper(name):
    (depth, growth), paper_figure, params = CIFAR_DENSENET_BC[name]
    spec = zoo.get_spec(name)
    assert spec.config == densenet_bc_cifar(depth, growth) and spec.input_size == (3, 32, 32)
    assert spec.num_classes == 10 and f"{round(params / 1e6, 1)}M" == paper_figure


def test_densenet264_is_the_papers_imagenet_configuration():
    config = zoo.get_spec("densenet264").config
    assert (config.growth_rate, config.block_config, config.num_init_features) == (32, (6, 12, 64, 48), 64)


@pytest.mark.parametrize("framework", OTHER_FRAMEWORKS)
def test_dropout_and_compression_knobs_match_torch(framework):
    # Dropout is inactive in inference; compression 0.75 and bn_size 2 change the widths.
    compare_with_torch("densenet121", framework, size=16, drop_rate=0.2, compression=0.75, bn_size=2,
                       bn_eps=1e-3, bn_momentum=0.05, **SMALL)


def test_dropout_is_active_in_training():
    import torch

    model = zoo.create_model("densenet121", "torch", drop_rate=0.5, **SMALL)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_min_input_size():
    assert DenseNetConfig().min_input_size() == 29
    assert densenet_bc_cifar().min_input_size() == 4
    assert zoo.get_spec("densenet121").signature().min_size == 29
    model = zoo.create_model("densenet121", "torch", **SMALL)
    with pytest.raises(zoo.InputShapeError, match="minimum of 2"):
        zoo.backend("torch").predict(model, np.zeros((1, 3, 1, 1), np.float32))
    assert zoo.backend("torch").predict(model, np.zeros((1, 3, 2, 2), np.float32)).shape == (1, 5)


@pytest.mark.parametrize("overrides, message", [
    (dict(growth_rate=0), "growth_rate"),
    (dict(block_config=()), "block_config"),
    (dict(block_config=(6, 0)), "block_config"),
    (dict(bn_size=-1), "bn_size"),
    (dict(compression=0.0), "compression"),
    (dict(compression=1.5), "compression"),
    (dict(drop_rate=1.0), "drop_rate"),
    (dict(stem="d2l"), "stem must be one of"),
    (dict(num_init_features=0), "num_init_features"),
    (dict(growth_rate=1, block_config=(1, 1), num_init_features=1, compression=0.4), "no channels"),
])
def test_invalid_knobs_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        DenseNetConfig(**overrides)
    with pytest.raises(ValueError, match=message):
        zoo.create_model("densenet121", "torch", **overrides)


def test_invalid_densenet_bc_depth():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        densenet_bc_cifar(depth=101)

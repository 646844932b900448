"""AlexNet, VGG, NiN and GoogLeNet beyond the shared suite: variants from papers and textbooks, torchvision
key names, the pooling and normalisation layers each framework needs to match PyTorch, invalid knobs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from conftest import OTHER_FRAMEWORKS, framework_params
from zoo.specs.alexnet import AlexNetConfig
from zoo.specs.googlenet import GoogLeNetConfig
from zoo.specs.nin import NiNConfig
from zoo.specs.vgg import CONFIGS, VGGConfig

OTHERS = framework_params(OTHER_FRAMEWORKS)


def images(size: int, channels: int = 3, batch: int = 2, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((batch, channels, size, size))).astype(np.float32)


def torch_reference(name: str, **kwargs):
    return zoo.backend("torch").randomize(zoo.create_model(name, "torch", **kwargs), seed=11)


def assert_matches_torch(framework: str, name: str, sizes, *, in_channels: int = 3, scale: float = 1.0, **kwargs):
    """Same counts as PyTorch, and the same logits on PyTorch's random weights at every size in `sizes`."""
    torch_backend, backend = zoo.backend("torch"), zoo.backend(framework)
    reference = torch_reference(name, in_channels=in_channels, **kwargs)
    model = zoo.create_model(name, framework, in_channels=in_channels, **kwargs)
    assert backend.count_parameters(model) == torch_backend.count_parameters(reference)
    backend.load_weights(model, torch_backend.export_weights(reference))
    for size in sizes:
        x = images(size, in_channels, batch=3, seed=size, scale=scale)
        expected, got = torch_backend.predict(reference, x), backend.predict(model, x)
        assert got.shape == expected.shape
        assert np.linalg.norm(got - expected) / np.linalg.norm(expected) <= 1e-4, f"size {size}"
        np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def meta_state_shapes(family: str, config, num_classes: int = 1000, in_channels: int = 3) -> dict:
    """state_dict shapes of a zoo_torch model built on the meta device (no memory, no initialisation)."""
    module = __import__(f"zoo_torch.{family}", fromlist=["build"])
    with torch.device("meta"):
        model = module.build(config, num_classes=num_classes, in_channels=in_channels)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def torch_count(family: str, config, num_classes: int = 1000, in_channels: int = 3) -> int:
    module = __import__(f"zoo_torch.{family}", fromlist=["build"])
    with torch.device("meta"):
        model = module.build(config, num_classes=num_classes, in_channels=in_channels)
    return sum(p.numel() for p in model.parameters())


# --- Layers ---------------------------------------------------------------------------------------

ADAPTIVE_CASES = [((13, 13), 6), ((5, 7), 6), ((2, 3), 7), ((1, 1), 4), ((11, 9), (4, 3)), ((30, 31), 7)]


@pytest.mark.tf
def test_tf_adaptive_avg_pool_equals_pytorch_on_unknown_sizes_and_under_xla():
    import keras
    import tensorflow as tf

    from zoo_tf.layers import AdaptiveAvgPool2D

    for output_size in (6, (4, 3)):
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, AdaptiveAvgPool2D(output_size)(inputs))
        oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
        assert tuple(model.output.shape) == (None, oh, ow, 3)
        xla = tf.function(model, jit_compile=True)
        for index, ((h, w), _) in enumerate(ADAPTIVE_CASES):  # smaller, equal, larger, non-divisible sizes
            x = np.random.default_rng(h * w).standard_normal((2, 3, h, w)).astype(np.float32)
            expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), output_size).numpy()
            nhwc = tf.constant(x.transpose(0, 2, 3, 1))
            # XLA compiles once per shape: two shapes are enough there.
            for got in (model(nhwc), xla(nhwc)) if index in (1, 2) else (model(nhwc),):
                np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.mxnet
def test_mxnet_adaptive_avg_pool_equals_pytorch():
    import zoo_mxnet.layers as mx_layers
    import mxnet as mx

    for (h, w), output_size in ADAPTIVE_CASES:
        x = np.random.default_rng(h * w).standard_normal((2, 3, h, w)).astype(np.float32)
        expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), output_size).numpy()
        got = mx_layers.AdaptiveAvgPool2D(output_size)(mx.nd.array(x)).asnumpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _torch_ceil_pool(x, kernel, stride, padding=0):
    try:
        return torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride, padding, ceil_mode=True).numpy()
    except RuntimeError:  # PyTorch refuses: no window at all
        return None


@pytest.mark.tf
def test_tf_ceil_mode_max_pool_equals_pytorch_on_unknown_sizes_and_under_xla():
    import keras
    import tensorflow as tf

    from zoo_tf.layers import max_pool_ceil

    # (3, 2, 1) and (2, 3, 0) exercise PyTorch's rule that drops a last window starting in the padding.
    for kernel, stride, padding in ((3, 2, 0), (2, 2, 0), (3, 2, 1), (2, 3, 0)):
        inputs = keras.Input((None, None, 2))
        model = keras.Model(inputs, max_pool_ceil(inputs, kernel, stride=stride, padding=padding, name="pool"))
        xla = tf.function(model, jit_compile=True)
        checked = 0
        for h in range(1, 14):
            x = np.random.default_rng(h).standard_normal((1, 2, h, h + 1)).astype(np.float32)
            expected = _torch_ceil_pool(x, kernel, stride, padding)
            if expected is None:
                continue
            nhwc = tf.constant(x.transpose(0, 2, 3, 1))
            for got in (model(nhwc), xla(nhwc)) if h in (4, 7) else (model(nhwc),):
                np.testing.assert_array_equal(np.asarray(got).transpose(0, 3, 1, 2), expected)
            checked += 1
        assert checked >= 10


@pytest.mark.mxnet
def test_mxnet_ceil_mode_max_pool_equals_pytorch_also_below_the_kernel_size():
    import zoo_mxnet.layers as mx_layers
    import mxnet as mx

    for kernel, stride in ((3, 2), (2, 2), (3, 1)):
        pool = mx_layers.CeilMaxPool2D(kernel, stride)
        pool.hybridize()
        for h in range(kernel - stride + 1, 14):  # every size with at least one window
            x = np.random.default_rng(h).standard_normal((1, 2, h, h + 1)).astype(np.float32)
            np.testing.assert_array_equal(pool(mx.nd.array(x)).asnumpy(), _torch_ceil_pool(x, kernel, stride))
    with pytest.raises(ValueError, match="kernel >= stride"):
        mx_layers.CeilMaxPool2D(2, 3)


def _lrn_by_the_paper(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Krizhevsky et al. 2012, Sec. 3.3: b = a / (k + alpha * sum of a^2 over `size` neighbouring channels)^beta."""
    squares = np.pad(x ** 2, ((0, 0), (size // 2, size // 2), (0, 0), (0, 0)))
    window = sum(squares[:, i:i + x.shape[1]] for i in range(size))
    return x / (k + alpha * window) ** beta


@pytest.mark.parametrize("framework", framework_params())
def test_local_response_norm_uses_the_papers_alpha(framework):
    config = AlexNetConfig(lrn=True)
    # Large activations, so that the alpha term is not swamped by k = 2 (a wrong alpha scaling shows).
    x = images(6, channels=16, scale=40.0)
    expected = _lrn_by_the_paper(x.astype(np.float64), config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k)
    assert np.abs(expected / x - 2 ** -0.75).max() > 0.05  # the window term matters
    args = (config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k)
    if framework == "torch":
        from zoo_torch.alexnet import make_features

        lrn = make_features(config, 3)[2]
        assert isinstance(lrn, torch.nn.LocalResponseNorm)
        got = lrn(torch.from_numpy(x)).numpy()
    elif framework == "tf":
        from zoo_tf.layers import LocalResponseNorm

        got = np.asarray(LocalResponseNorm(*args)(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    else:
        import zoo_mxnet.layers as mx_layers
        import mxnet as mx

        got = mx_layers.LocalResponseNorm(*args)(mx.nd.array(x)).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# --- AlexNet --------------------------------------------------------------------------------------

def test_alexnet_torchvision_keys_and_shapes():
    shapes = meta_state_shapes("alexnet", zoo.get_spec("alexnet").config)
    assert shapes == {
        "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
        "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
        "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
        "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
        "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
        "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
        "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
        "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
    }


def test_alexnet_sizes():
    assert zoo.get_spec("alexnet").config.min_input_size() == 63
    assert zoo.get_spec("alexnet").config.feature_size(224) == 6
    original = zoo.get_spec("alexnet_original").config
    # The paper's 227x227 gives 55x55 after conv1 and 6x6 before the dense head.
    assert original.feature_size(227) == 6
    model = zoo.create_model("alexnet_original", "torch")
    assert model.features[0](torch.zeros(1, 3, 227, 227)).shape[-1] == 55
    assert [type(m).__name__ for m in model.features[:4]] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]


def test_alexnet_original_counts():
    original = zoo.get_spec("alexnet_original").config
    assert torch_count("alexnet", original) == 60_965_224
    # Without the two-GPU grouping: the 62,378,344 usually computed for the paper's layer table.
    assert torch_count("alexnet", AlexNetConfig(**{**vars(original), "groups": (1,) * 5})) == 62_378_344


@pytest.mark.parametrize("framework", OTHERS)
def test_alexnet_original_small_head_matches_pytorch(framework):
    # LRN, grouped convolutions and a narrow head at 67 (the minimum) and 100: a 4x4 map pooled to 6x6.
    assert_matches_torch(framework, "alexnet_original", (67, 100), num_classes=10, hidden=(64, 32), scale=20.0)


@pytest.mark.parametrize("framework", OTHERS)
def test_alexnet_without_hidden_layers_matches_pytorch(framework):
    assert_matches_torch(framework, "alexnet", (63, 70), num_classes=5, hidden=(), pool_size=2,
                         channels=(16, 32, 32, 32, 16))


@pytest.mark.parametrize("overrides, message", [
    ({"kernel_sizes": (11, 5, 3, 3)}, "one entry per convolution"),
    ({"groups": (1, 3, 1, 1, 1)}, "divisible by 3"),
    ({"lrn": True, "lrn_size": 4}, "odd"),
    ({"dropout": 1.0}, "dropout"),
    ({"paddings": (2, -1, 1, 1, 1)}, "paddings"),
    ({"hidden": (4096, 0)}, "positive"),
])
def test_alexnet_invalid_knobs(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("alexnet", "torch", **overrides)


# --- VGG ------------------------------------------------------------------------------------------

def test_vgg_torchvision_keys_and_shapes():
    shapes = meta_state_shapes("vgg", zoo.get_spec("vgg16_bn").config)
    assert len(shapes) == 13 * 2 + 13 * 5 + 3 * 2  # conv w/b, bn w/b/mean/var/count, dense w/b
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.1.running_var"] == (64,)
    assert shapes["features.40.weight"] == (512, 512, 3, 3)
    assert shapes["features.41.num_batches_tracked"] == ()
    assert shapes["classifier.0.weight"] == (4096, 25088)
    assert shapes["classifier.6.weight"] == (1000, 4096)
    plain = meta_state_shapes("vgg", zoo.get_spec("vgg19").config)
    assert plain["features.34.weight"] == (512, 512, 3, 3) and "features.36.weight" not in plain
    assert zoo.get_spec("vgg19").config.min_input_size() == 32


def test_vgg_counts_follow_the_table():
    # 2 trainable and 2 running numbers per BatchNorm channel on top of the plain network.
    for depth, config in ((11, "A"), (13, "B"), (16, "D"), (19, "E")):
        plain, bn = zoo.get_spec(f"vgg{depth}"), zoo.get_spec(f"vgg{depth}_bn")
        channels = sum(v for v in CONFIGS[config] if v != "M")
        assert bn.params == plain.params + 2 * channels
        assert bn.params_total == plain.params + 4 * channels
        assert torch_count("vgg", bn.config) == bn.params


@pytest.mark.parametrize("framework", OTHERS)
def test_cifar_vgg16_bn_matches_pytorch(framework):
    # VGG16 with BatchNorm for 32x32 images: pool to 1x1 and a single 512 -> 10 classifier, as the
    # pytorch-cifar VGG('VGG16'), 14,728,266 parameters.
    overrides = dict(layers=CONFIGS["D"], batch_norm=True, pool_size=1, hidden=())
    assert torch_count("vgg", VGGConfig(**overrides), num_classes=10) == 14_728_266
    assert_matches_torch(framework, "vgg16_bn", (32,), num_classes=10, **overrides)


@pytest.mark.parametrize("framework", OTHERS)
def test_small_vgg_with_head_matches_pytorch(framework):
    assert_matches_torch(framework, "vgg11_bn", (32, 45), num_classes=10,
                         layers=(8, "M", 16, "M", 16, 16, "M", 32, "M", 32, "M"), pool_size=3, hidden=(24, 24))


@pytest.mark.parametrize("overrides, message", [
    ({"layers": ("M", "M")}, "at least one convolution"),
    ({"layers": (64, "X")}, "positive integer"),
    ({"pool_size": 0}, "pool_size"),
    ({"bn_momentum": 1.5}, "bn_momentum"),
])
def test_vgg_invalid_knobs(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("vgg11", "torch", **overrides)


# --- NiN ------------------------------------------------------------------------------------------

def test_nin_structure_and_sizes():
    config = zoo.get_spec("nin").config
    shapes = meta_state_shapes("nin", config)
    assert shapes["features.0.0.weight"] == (96, 3, 11, 11)
    assert shapes["features.2.0.weight"] == (256, 96, 5, 5)
    assert shapes["features.4.4.weight"] == (384, 384, 1, 1)
    assert shapes["classifier.0.0.weight"] == (1000, 384, 3, 3)
    assert shapes["classifier.0.4.weight"] == (1000, 1000, 1, 1)
    assert len(shapes) == 4 * 3 * 2  # no dense layer
    # d2l: 224 -> 54 -> 26 -> 12 -> 5x5 maps of class scores, averaged.
    assert config.feature_size(224) == 5
    assert config.min_input_size() == 67 and config.feature_size(66) == 0


@pytest.mark.parametrize("framework", OTHERS)
def test_nin_d2l_fashion_mnist_matches_pytorch(framework):
    # d2l trains NiN on 224x224 Fashion-MNIST: 1 channel, 10 classes; checked here at the minimum size.
    assert torch_count("nin", NiNConfig(), num_classes=10, in_channels=1) == 1_992_166
    assert_matches_torch(framework, "nin", (67, 80), num_classes=10, in_channels=1)


@pytest.mark.parametrize("overrides, message", [
    ({"blocks": ()}, "at least one"),
    ({"blocks": ((96, 11, 4),)}, "channels, kernel, stride, padding"),
    ({"mlp_layers": -1}, "mlp_layers"),
    ({"dropout": -0.1}, "dropout"),
])
def test_nin_invalid_knobs(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("nin", "torch", **overrides)


# --- GoogLeNet ------------------------------------------------------------------------------------

def test_googlenet_torchvision_keys_and_shapes():
    shapes = meta_state_shapes("googlenet", GoogLeNetConfig(aux_logits=True))
    # torchvision's googlenet(aux_logits=True) state_dict: 364 entries.
    assert len(shapes) == 364
    assert shapes["conv1.conv.weight"] == (64, 3, 7, 7)
    assert "conv1.conv.bias" not in shapes
    assert shapes["conv3.bn.running_var"] == (192,)
    # torchvision's 3x3 "5x5" branch.
    assert shapes["inception3a.branch3.1.conv.weight"] == (32, 16, 3, 3)
    assert shapes["inception4e.branch4.1.conv.weight"] == (128, 528, 1, 1)
    assert shapes["inception5b.branch2.1.bn.weight"] == (384,)
    assert shapes["aux1.conv.conv.weight"] == (128, 512, 1, 1)
    assert shapes["aux2.conv.conv.weight"] == (128, 528, 1, 1)
    assert shapes["aux1.fc1.weight"] == (1024, 2048)
    assert shapes["aux2.fc2.weight"] == (1000, 1024)
    assert shapes["fc.weight"] == (1000, 1024)
    without = meta_state_shapes("googlenet", GoogLeNetConfig())
    assert set(without) == {k for k in shapes if not k.startswith("aux")}


def test_googlenet_sizes():
    # torchvision's docs: "The required minimum input size of the model is 15x15".
    assert zoo.get_spec("googlenet").config.min_input_size() == 15
    assert GoogLeNetConfig(stem="cifar").feature_size(32) == 8


@pytest.mark.parametrize("framework", framework_params())
def test_googlenet_aux_logits_count(framework):
    model = zoo.create_model("googlenet", framework, aux_logits=True)
    assert zoo.backend(framework).count_parameters(model)[0] == 13_004_888


def test_googlenet_torch_outputs_like_torchvision():
    model = zoo.create_model("googlenet", "torch", num_classes=5, aux_logits=True)
    x = torch.from_numpy(images(40))
    model.train()
    out = model(x)
    assert type(out).__name__ == "GoogLeNetOutputs" and out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(t.shape == (2, 5) for t in out)
    model.eval()
    assert model(x).shape == (2, 5)


@pytest.mark.parametrize("framework", OTHERS)
def test_googlenet_aux_heads_match_pytorch(framework):
    torch_backend, backend = zoo.backend("torch"), zoo.backend(framework)
    # No dropout, so that a Flax model can run its auxiliary heads (training mode only, as in PyTorch)
    # with BatchNorm on the running statistics and still be compared.
    knobs = dict(num_classes=6, aux_logits=True, dropout=0.0, dropout_aux=0.0)
    reference = torch_reference("googlenet", **knobs).eval()
    model = zoo.create_model("googlenet", framework, **knobs)
    backend.load_weights(model, torch_backend.export_weights(reference))
    x = images(40, batch=3)
    seen = {}
    hooks = [getattr(reference, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
             for name in ("inception4a", "inception4d")]
    with torch.no_grad():
        logits = reference(torch.from_numpy(x))
        expected = [logits, reference.aux2(seen["inception4d"]), reference.aux1(seen["inception4a"])]
    for hook in hooks:
        hook.remove()
    if framework == "tf":
        got = model(x.transpose(0, 2, 3, 1), training=False)
    elif framework == "jax":
        model.set_attributes(deterministic=False, use_running_average=True)
        got = model(x.transpose(0, 2, 3, 1))
    else:
        import mxnet as mx

        got = model(mx.nd.array(x))
    assert len(got) == 3
    for g, e in zip(got, expected):
        g, e = np.asarray(g.asnumpy() if hasattr(g, "asnumpy") else g), e.numpy()
        assert np.linalg.norm(g - e) / np.linalg.norm(e) <= 1e-4


@pytest.mark.parametrize("framework", OTHERS)
def test_googlenet_ceil_mode_sizes_match_pytorch(framework):
    # 15: maxpool3 sees a 2x2 map, smaller than its window; 33 and 41: odd sizes through every pool.
    assert_matches_torch(framework, "googlenet", (15, 33, 41), num_classes=4)


@pytest.mark.parametrize("framework", OTHERS)
def test_cifar_googlenet_matches_pytorch(framework):
    assert_matches_torch(framework, "googlenet", (32,), num_classes=10, stem="cifar", transform_input=True)


@pytest.mark.parametrize("framework", framework_params())
@pytest.mark.parametrize("overrides, message", [
    ({"stem": "tiny"}, "stem"),
    ({"inception": ((( 64, 96, 128, 16, 32),),) * 3}, "pool proj"),
    ({"stage_pools": ((3, 2), (1, 2))}, "kernels must be >= their strides"),
    ({"aux_logits": True, "inception": (((8,) * 6,),) * 3}, "aux2 follows inception4d"),
    ({"transform_input": True, "in_channels": 1}, "in_channels=3"),
    ({"pool_padding": 1}, "needs ceil_mode=False"),
    ({"ceil_mode": False, "pool_padding": 2}, "at most half of every pool's kernel"),
    ({"branch3_kernel": 4}, "branch3_kernel must be odd"),
])
def test_googlenet_invalid_knobs(framework, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("googlenet", framework, **overrides)

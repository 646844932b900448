"""The model registry: every model is one `ModelSpec`, built by any framework from the same data."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import importlib
import types
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FrameworkUnavailableError, UnknownModelError
from .inputs import InputSignature, is_integer, is_real


def check_positive(name: str, value: float, *, integer: bool = False) -> None:
    kind = "a positive integer" if integer else "a positive number"
    if not (is_integer(value) if integer else is_real(value)) or not value > 0:
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    # A list or an array would compare element by element.
    if isinstance(value, (list, tuple, dict, set, np.ndarray)) or not any(value == choice for choice in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_probability(name: str, value: float) -> None:
    if not is_real(value) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


_NOUNS = {int: "integer", float: "finite real number", bool: "bool", str: "string"}


def _noun(hint: Any, plural: bool = False) -> str:
    """'integer', 'tuple of integers', '(integer, integer) tuple' for a knob's annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _noun(a, plural) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        noun = f"tuple of {_noun(args[0], plural=True)}"
        return noun.replace("tuple", "tuples", 1) if plural else noun
    if origin is tuple and args and len(set(args)) == 1:
        noun = f"tuple of {len(args)} {_noun(args[0], plural=True)}"
        return noun.replace("tuple", "tuples", 1) if plural else noun
    if origin is tuple and args:
        noun = f"({', '.join(_noun(a) for a in args)}) tuple"
    else:
        noun = _NOUNS.get(hint, "tuple" if hint is tuple else getattr(hint, "__name__", str(hint)))
    return noun + "s" if plural else noun


def _describe(hint: Any) -> str:
    """'an integer', 'True or False', 'a tuple of integers', 'an integer or None'."""
    if hint is bool:
        return "True or False"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    noun = _noun(hint)
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


class _Mismatch(Exception):
    """The part of a knob's value at `where` (a suffix such as '[1]') is not of type `hint`."""

    def __init__(self, where: str, value: Any, hint: Any) -> None:
        super().__init__(where, value, hint)
        self.where, self.value, self.hint = where, value, hint


def _plain(value: Any) -> Any:
    """Numpy scalars as Python numbers, lists and arrays as tuples (configs are frozen and hashable)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def conform_knob(value: Any, hint: Any, where: str = "", *, lengths: bool = True) -> Any:
    """`value` in plain Python types if it is of type `hint` (a knob's annotation), else _Mismatch.

    With `lengths=False` a fixed-length tuple of another length passes unchecked, for the family's
    `validate` to explain in its own words (what each entry of a row means).
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return conform_knob(value, option, where, lengths=lengths)
            except _Mismatch:
                pass
        raise _Mismatch(where, value, hint)
    if hint is tuple or origin is tuple:
        if not isinstance(value, (tuple, list)) and not (isinstance(value, np.ndarray) and value.ndim >= 1):
            raise _Mismatch(where, value, hint)
        value = _plain(value)
        if not args:
            return value
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(conform_knob(v, args[0], f"{where}[{i}]", lengths=lengths) for i, v in enumerate(value))
        if len(value) != len(args):
            if lengths:
                raise _Mismatch(where, value, hint)
            return value
        return tuple(conform_knob(v, a, f"{where}[{i}]", lengths=lengths) for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
    elif hint is int:
        if is_integer(value):
            return int(value)
    elif hint is float:
        if is_real(value):
            return _plain(value)
    elif hint is str:
        if isinstance(value, str):
            return str(value)
    elif hint is Any or not isinstance(hint, type) or isinstance(value, hint):
        return value
    raise _Mismatch(where, value, hint)


# The widest layer of a classic network is VGG's and AlexNet's 4,096-unit dense layer, the most repeats
# DenseNet-264's 64 layers and the widest multiplier EfficientNet-L2's 4.3.
MAX_KNOB_INTEGER = 16_384
MAX_MULTIPLIER = 8.0


def _integers(value: Any, where: str = ""):
    """(index path, integer) for every integer in a knob's value, nested tuples included."""
    if is_integer(value):
        yield where, int(value)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _integers(item, f"{where}[{i}]")


@functools.cache
def _knob_types(cls: type) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # annotations naming what their module cannot resolve: left unchecked
        return {}
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name in hints}


@dataclass(frozen=True)
class FamilyConfig:
    """Base of every family's configuration: plain data, validated when it is made.

    Families override `validate`, and `min_input_size` / `fixed_input_size` where their
    architecture bounds the input.
    """

    def __post_init__(self) -> None:
        # Every knob is checked against its annotation (bools are bools, widths integers, tuples hold
        # what they say) before `validate` checks ranges, so that the framework that builds the model
        # never sees a value of the wrong type. Numpy scalars become Python numbers, lists tuples.
        self._conform(lengths=False)
        self._check_sizes()
        self.validate()
        self._conform(lengths=True)  # rows of a wrong length that `validate` did not explain

    def _conform(self, *, lengths: bool) -> None:
        for name, hint in _knob_types(type(self)).items():
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, conform_knob(value, hint, lengths=lengths))
            except _Mismatch as mismatch:
                part = ""
                if mismatch.where:
                    part = f": {name}{mismatch.where} is {mismatch.value!r}, not {_describe(mismatch.hint)}"
                raise ValueError(f"{name} must be {_describe(hint)}, got {value!r}{part}") from None

    def _check_sizes(self) -> None:
        # Generous bounds that no classic network comes near, so that a typo (width_mult=1000, a growth
        # rate of 10**6) fails here, by name, rather than in an allocation of terabytes.
        for name in self.knobs():
            value = getattr(self, name)
            if name.endswith("_mult") and is_real(value) and value > MAX_MULTIPLIER:
                raise ValueError(f"{name} must be at most {MAX_MULTIPLIER} (zoo.registry.MAX_MULTIPLIER), got {value!r}")
            for where, number in _integers(value):
                if number > MAX_KNOB_INTEGER:
                    what = f"hold integers of at most {MAX_KNOB_INTEGER:,}" if where else f"be at most {MAX_KNOB_INTEGER:,}"
                    got = f"{name}{where} = {number:,}" if where else f"{number:,}"
                    raise ValueError(f"{name} must {what} (zoo.registry.MAX_KNOB_INTEGER), got {got}")

    def validate(self) -> None:
        pass

    def min_input_size(self) -> int:
        return 1

    def fixed_input_size(self) -> int | None:
        return None

    def knobs(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def outline(self) -> tuple[Stage, ...]:
        """The network's stages in order, from the stem to the head (what `zoo-compare arch` tables)."""
        raise NotImplementedError(f"{type(self).__name__} declares no stage outline")


@dataclass(frozen=True)
class Stage:
    """One stage of a network's outline: everything that runs after the previous stage, up to and
    including the module `end` (a canonical module path, the prefix of its weight names; "" is the
    model's output, so the last stage, the head, takes the rest).

    `blocks` repeats of `block` make it up; `stride` is how much it shrinks the map (for input sizes
    that the network divides evenly).
    """

    name: str
    end: str
    blocks: int = 1
    block: str = ""
    stride: int = 1

    @property
    def label(self) -> str:
        """'layer1 (3 x Bottleneck)', 'stem (7x7 conv, max pool)', 'head'."""
        if not self.block:
            return self.name
        return f"{self.name} ({self.blocks} x {self.block})" if self.blocks > 1 else f"{self.name} ({self.block})"


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: its family's configuration and the reference figures it must meet.

    `params` counts trainable parameters, `params_total` all state including BatchNorm running
    statistics, both for the canonical configuration (`num_classes` classes, `input_size` input).
    """

    name: str
    family: str
    config: FamilyConfig
    input_size: tuple[int, int, int]
    params: int
    params_total: int
    source: str
    paper: str
    num_classes: int = 1000
    notes: str = ""
    # Published accuracy of the canonical configuration, in percent: the reference weights' or the paper's
    # top-1 (and top-5 where given) on `accuracy_dataset`, with where the figure comes from and the
    # training recipe behind it. Where no figure exists, top1 is None and `accuracy_source` says why.
    top1: float | None = None
    top5: float | None = None
    accuracy_source: str = ""
    accuracy_recipe: str = ""
    accuracy_dataset: str = "ImageNet-1k val"

    @property
    def in_channels(self) -> int:
        return self.input_size[0]

    def configure(self, **overrides: Any) -> FamilyConfig:
        """The spec's configuration with `overrides` applied and validated."""
        unknown = sorted(set(overrides) - set(self.config.knobs()))
        if unknown:
            raise TypeError(
                f"{self.name} has no option {', '.join(map(repr, unknown))}; "
                f"its {self.family} options are: {', '.join(self.config.knobs())}"
            )
        return dataclasses.replace(self.config, **overrides) if overrides else self.config

    def signature(self, config: FamilyConfig | None = None, in_channels: int | None = None,
                  num_classes: int | None = None) -> InputSignature:
        config = self.config if config is None else config
        return InputSignature(
            in_channels=self.in_channels if in_channels is None else in_channels,
            min_size=config.min_input_size(),
            fixed_size=config.fixed_input_size(),
            num_classes=self.num_classes if num_classes is None else num_classes,
        )


TORCHVISION_RECIPES = "https://github.com/pytorch/vision/tree/main/references/classification"


def published(top1: float | None, top5: float | None = None, *, source: str, recipe: str = "",
              dataset: str = "ImageNet-1k val") -> dict[str, Any]:
    """The accuracy fields of a `ModelSpec`: `register(ModelSpec(..., **published(...)))`."""
    return {"top1": top1, "top5": top5, "accuracy_source": source, "accuracy_recipe": recipe,
            "accuracy_dataset": dataset}


def torchvision_weights(weights: str, top1: float, top5: float, recipe: str) -> dict[str, Any]:
    """The accuracy of torchvision's weights `weights` ('ResNet50_Weights.IMAGENET1K_V1'), as its metadata
    gives it (acc@1, acc@5 on ImageNet-1k val, single 224 crop unless the weights say otherwise)."""
    return published(top1, top5, recipe=recipe,
                     source=f"torchvision {weights} meta: acc@1 {top1:.3f}, acc@5 {top5:.3f}")


D2L = "d2l.ai (Dive into Deep Learning 1.0, PyTorch edition)"


def d2l_figures(section: str, params: int) -> dict[str, Any]:
    """The `source` and accuracy fields of a `ModelSpec` of d2l.ai's variant of a network, as section `section`
    ('8.1 (AlexNet)') of the book builds it in PyTorch: `params` is counted from that code (tests/test_d2l.py
    writes it out and counts it). d2l trains each net on Fashion-MNIST and plots curves, with no figure."""
    return {"source": f"{D2L}, section {section}: {params:,} trainable parameters, counted from d2l's PyTorch code",
            **published(None, dataset="Fashion-MNIST test",
                        source=f"{D2L} trains it for 10 epochs on Fashion-MNIST and shows loss and accuracy "
                               "curves only, no accuracy figure")}


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_specs_loaded() -> None:
    from . import specs  # noqa: F401  (registers every family on import)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style `pattern`, in registration order."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as 'resnet*', got {pattern!r}")
    _ensure_specs_loaded()
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


_PATTERN_CHARACTERS = frozenset("*?[")


def get_spec(name: str) -> ModelSpec:
    """The spec of registered model `name`: one name, not a pattern (`list_models` expands those)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be one model name (a string such as 'resnet50'), got {name!r}")
    _ensure_specs_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if _PATTERN_CHARACTERS & set(name):
        matches = list_models(name)
        shown = ", ".join(matches[:8]) + (", ..." if len(matches) > 8 else "")
        found = f"matches {len(matches)} models ({shown})" if matches else "matches no model"
        raise UnknownModelError(
            f"name must be one model name, got the pattern {name!r}, which {found}; "
            f"zoo.list_models({name!r}) expands it"
        )
    close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (zoo.list_models() lists all {len(_REGISTRY)})")


@dataclass(frozen=True)
class Framework:
    """One entry of the backend registry: a framework and the package that implements the backend
    contract (`zoo.backend_contract`) for it."""

    name: str             # the registry name, as in create_model(..., framework=name)
    package: str          # the backend package
    needs: tuple[str, ...]  # top-level modules the framework itself needs (first: the one that says it is here)
    install: str          # how to install it
    title: str            # the framework's own name, for tables and plots
    colour: str           # its colour in plots


# The one registry of backends: adding a framework is a package and one line here.
FRAMEWORKS: dict[str, Framework] = {fw.name: fw for fw in (
    Framework("torch", "zoo_torch", ("torch",), "pip install 'classic-cnn-zoo[torch]'  (torch 2.13 or 2.14)",
              "PyTorch", "#ee4c2c"),
    Framework("tf", "zoo_tf", ("tensorflow", "keras"),
              "pip install 'classic-cnn-zoo[tf]'  (tensorflow-cpu==2.21.0, or tensorflow on GPU)",
              "TensorFlow", "#ff8f00"),
    Framework("mxnet", "zoo_mxnet", ("mxnet",), "pip install 'classic-cnn-zoo[mxnet]' && pip install --no-deps mxnet==1.9.1",
              "MXNet", "#2f7ed8"),
    Framework("jax", "zoo_jax", ("jax", "flax", "jaxlib"),
              "pip install 'classic-cnn-zoo[jax]'  (jax>=0.7.1, flax>=0.12)", "JAX", "#5e35b1"),
)}
# The framework whose models define the canonical weights (PyTorch state_dict names and layouts): it
# randomises the weights of a cross-check, and its operation counter counts multiply-adds.
REFERENCE_FRAMEWORK = "torch"


def framework_info(framework: str) -> Framework:
    if not isinstance(framework, str):
        raise TypeError(f"framework must be a framework name (one of {', '.join(FRAMEWORKS)}), got {framework!r}")
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    return FRAMEWORKS[framework]


def backend(framework: str):
    """The backend package of `framework` (`zoo_torch`, `zoo_tf`, ...), imported."""
    info = framework_info(framework)
    try:
        return importlib.import_module(info.package)
    except ImportError as error:
        missing = getattr(error, "name", None)
        if missing and missing.split(".")[0] in info.needs:
            raise FrameworkUnavailableError(
                f"framework {framework!r} needs {info.needs[0]}, which is not installed here; "
                f"install it with: {info.install}"
            ) from error
        raise


def available_frameworks() -> list[str]:
    """Frameworks whose backend imports here."""
    found = []
    for framework in FRAMEWORKS:
        try:
            backend(framework)
        except FrameworkUnavailableError:
            continue
        found.append(framework)
    return found


DTYPES = ("float32", "float64")
# Bounds on the sizes create_model takes, so that a typo fails at once with a message rather than in an
# allocation of gigabytes. 100,000 classes is more than four times ImageNet-21k's 21,841 (VGG-16's last
# layer alone then holds 410M parameters); 1,024 input channels covers hyperspectral images (AVIRIS: 224
# bands).
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 1_024


def _check_size(name: str, value: Any, limit: int, limit_name: str) -> int:
    check_positive(name, value, integer=True)
    if value > limit:
        raise ValueError(f"{name} must be a positive integer at most {limit:,} (zoo.registry.{limit_name}), got {value:,}")
    return int(value)


def _check_dtype(dtype: Any) -> str:
    """'float32' or 'float64', also given as a numpy dtype or scalar type (np.float64)."""
    if not isinstance(dtype, str):
        try:
            dtype = np.dtype(dtype).name if isinstance(dtype, (np.dtype, type)) else dtype
        except TypeError:
            pass
    check_choice("dtype", dtype, DTYPES)
    return dtype


def create_model(name: str, framework: str = "torch", *, num_classes: int | None = None,
                 in_channels: int | None = None, dtype: str = "float32", **overrides: Any):
    """Build registered model `name` in `framework` (a name of `zoo.FRAMEWORKS`: "torch", "tf", ...).

    `overrides` are the family's knobs (see `get_spec(name).config`), e.g. `width_mult=0.5`.
    `num_classes` is at most MAX_CLASSES and `in_channels` at most MAX_IN_CHANNELS; numpy integers
    are integers, bools and floats are not.
    `dtype="float64"` builds the model in double precision, where the frameworks agree to ~1e-13
    (useful to tell a real difference from float32 rounding). The model comes back ready to call:
    inputs in the backend's `LAYOUT`: NCHW for torch and mxnet, NHWC for tf and jax.
    """
    # Every argument is checked before the framework is imported or anything is allocated.
    spec = get_spec(name)
    framework_info(framework)
    num_classes = _check_size("num_classes", spec.num_classes if num_classes is None else num_classes,
                              MAX_CLASSES, "MAX_CLASSES")
    in_channels = _check_size("in_channels", spec.in_channels if in_channels is None else in_channels,
                              MAX_IN_CHANNELS, "MAX_IN_CHANNELS")
    dtype = _check_dtype(dtype)
    config = spec.configure(**overrides)
    return backend(framework).build_model(
        spec, config, num_classes=num_classes, in_channels=in_channels,
        signature=spec.signature(config, in_channels, num_classes), dtype=dtype,
    )

"""The model registry: every model is one `ModelSpec`, built by any framework from the same data."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from typing import Any

from .errors import FrameworkUnavailableError, UnknownModelError
from .inputs import InputSignature


def check_positive(name: str, value: float, *, integer: bool = False) -> None:
    kind = "a positive integer" if integer else "a positive number"
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")


@dataclass(frozen=True)
class FamilyConfig:
    """Base of every family's configuration: plain data, validated when it is made.

    Families override `validate`, and `min_input_size` / `fixed_input_size` where their
    architecture bounds the input.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        pass

    def min_input_size(self) -> int:
        return 1

    def fixed_input_size(self) -> int | None:
        return None

    def knobs(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def outline(self) -> tuple["Stage", ...]:
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

    def signature(self, config: FamilyConfig | None = None, in_channels: int | None = None) -> InputSignature:
        config = self.config if config is None else config
        return InputSignature(
            in_channels=self.in_channels if in_channels is None else in_channels,
            min_size=config.min_input_size(),
            fixed_size=config.fixed_input_size(),
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
    _ensure_specs_loaded()
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


def get_spec(name: str) -> ModelSpec:
    _ensure_specs_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (zoo.list_models() lists all {len(_REGISTRY)})"
        ) from None


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
    Framework("torch", "zoo_torch", ("torch",), "pip install 'classic-cnn-zoo[torch]'  (torch==2.13.0)",
              "PyTorch", "#ee4c2c"),
    Framework("tf", "zoo_tf", ("tensorflow", "keras"),
              "pip install 'classic-cnn-zoo[tf]'  (tensorflow-cpu==2.21.0, or tensorflow on GPU)",
              "TensorFlow", "#ff8f00"),
    Framework("mxnet", "zoo_mxnet", ("mxnet",), "pip install 'classic-cnn-zoo[mxnet]'  (mxnet==1.9.1)",
              "MXNet", "#2f7ed8"),
    Framework("jax", "zoo_jax", ("jax", "flax", "jaxlib"),
              "pip install 'classic-cnn-zoo[jax]'  (jax==0.6.2, flax==0.10.7)", "JAX", "#5e35b1"),
)}
# The framework whose models define the canonical weights (PyTorch state_dict names and layouts): it
# randomises the weights of a cross-check, and its operation counter counts multiply-adds.
REFERENCE_FRAMEWORK = "torch"


def framework_info(framework: str) -> Framework:
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


def create_model(name: str, framework: str = "torch", *, num_classes: int | None = None,
                 in_channels: int | None = None, dtype: str = "float32", **overrides: Any):
    """Build registered model `name` in `framework` (a name of `zoo.FRAMEWORKS`: "torch", "tf", ...).

    `overrides` are the family's knobs (see `get_spec(name).config`), e.g. `width_mult=0.5`.
    `dtype="float64"` builds the model in double precision, where the frameworks agree to ~1e-13
    (useful to tell a real difference from float32 rounding). The model comes back ready to call:
    inputs in the backend's `LAYOUT`: NCHW for torch and mxnet, NHWC for tf and jax.
    """
    spec = get_spec(name)
    framework_backend = backend(framework)
    num_classes = spec.num_classes if num_classes is None else num_classes
    in_channels = spec.in_channels if in_channels is None else in_channels
    check_positive("num_classes", num_classes, integer=True)
    check_positive("in_channels", in_channels, integer=True)
    check_choice("dtype", dtype, DTYPES)
    config = spec.configure(**overrides)
    return framework_backend.build_model(
        spec, config, num_classes=num_classes, in_channels=in_channels,
        signature=spec.signature(config, in_channels), dtype=dtype,
    )

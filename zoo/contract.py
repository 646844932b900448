"""The backend contract: what every framework package (`zoo_torch`, `zoo_tf`, `zoo_mxnet`, `zoo_jax`)
offers, written down once. `compare/` reads the frameworks only through it, and the registry
(`zoo.FRAMEWORKS`) maps a framework's name to its package, so a new framework is a new package and
one registry line.

A backend is a module (its package's `__init__`) with the names of `Backend` below; `check_backend`
tells what one lacks, and the test suite runs it on every installed backend. Images cross the
contract as numpy NCHW batches whatever the framework's own layout (`LAYOUT`); weights cross it as
canonical mappings (PyTorch `state_dict` names and layouts, see `zoo.weights`).
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

from .errors import UnknownModelError
from .inputs import InputSignature


# ---------------------------------------------------------------- benchmark cells

@dataclass(frozen=True, kw_only=True, eq=False)
class BenchCell:
    """One benchmark cell: a model, built one way, timed in one framework at one batch size and mode.

    `to_json` is the cell as the bench sends it to its worker, `from_json` reads that back and reads a
    record of results.json as well (its `knobs`, and the defaults of the fields that older files lack).
    Two cells are one when their `key`s are: a resumed run recognises the cells a results file already holds.
    """

    model: str
    family: str | None = None
    framework: str
    implementation: str = "zoo"           # "zoo", or "reference": the framework's own implementation
    reference_name: str | None = None     # that implementation's dotted name
    reference_variant: str | None = None  # where it builds another variant of the architecture: what differs
    # The family's knobs as (name, value) pairs, for `zoo.create_model(..., **dict(overrides))`.
    overrides: tuple[tuple[str, Any], ...] = ()
    mode: str                             # "infer" or "train"
    batch_size: int
    input_size: int
    num_classes: int | None = None        # None only where read back from a results record, which omits it
    device_requested: str = "auto"        # "auto", "cpu" or "gpu"
    compile: bool = False                 # the framework's optional compiler, where it has one
    amp: str = "auto"                     # mixed precision on GPU: "auto" (on for GPU), "on", "off"
    channels_last: str = "auto"           # memory format, read by the frameworks that have the choice
    min_round_s: float = 0.5              # least duration of one timed round
    warmup_s: float = 0.2                 # untimed warm-up (on GPU, at least until timings settle)
    threads_requested: int | None = None  # intra-op threads; None: the framework's own choice

    @property
    def key(self) -> tuple:
        """What the cell measures; not how long its rounds last or which reference it names. The knobs as
        JSON, not repr: a knob's tuple comes back from results.json as a list, and must be the same cell."""
        return (self.model, self.framework, self.implementation, self.mode, int(self.batch_size),
                int(self.input_size), self.device_requested, bool(self.compile), self.amp, self.threads_requested,
                json.dumps(dict(self.overrides), sort_keys=True))

    def __eq__(self, other: object) -> bool:
        return self.key == other.key if isinstance(other, BenchCell) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.key)

    def to_json(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data["overrides"] = dict(self.overrides)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BenchCell:
        names = {item.name for item in fields(cls)} - {"overrides"}
        knobs = data.get("knobs", data.get("overrides")) or {}
        return cls(**{name: value for name, value in data.items() if name in names},
                   overrides=tuple((name, _knob_value(value)) for name, value in knobs.items()))


def _knob_value(value: Any) -> Any:
    """JSON turned the knobs' tuples (depth tables, channel lists) into lists; the family configs want tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_knob_value(item) for item in value)
    return value


@dataclass
class Prepared:
    """A benchmark cell ready to time: built, inputs on the device, compiled and warmed up."""

    step: Callable[[], Any]          # one iteration: inference forward pass, or a full SGD step
    sync: Callable[[Any], None]      # wait for the device; gets the last step's result
    method: str                      # how the framework was run, for the results
    precision: str = "fp32"
    notes: list[str] = field(default_factory=list)
    keep: list[Any] = field(default_factory=list)  # objects that must live as long as the cell
    compile_s: float | None = None   # seconds spent compiling in prepare, where the framework compiles apart


class Skip(Exception):
    """The cell cannot run here for a reason that is not a failure (e.g. a reference not installed)."""


@runtime_checkable
class BenchRunner(Protocol):
    """Runs benchmark cells of one framework in a worker process of its own (`compare.worker`).

    Made by the backend's `bench_runner(device, options)`, with device "cpu", "gpu" or "auto" and options
    {"threads": N|None}; the shared measuring tools (host memory, timed rounds, the peak probe's timing)
    are in `zoo.benchtools`.
    A cell is a `BenchCell`; a runner reads its model, implementation ("zoo" or "reference"), mode ("infer"
    or "train"), batch_size, input_size, num_classes, amp ("auto", "on", "off"), compile (bool), channels_last
    ("auto", "on", "off", read by the frameworks that have the choice), and overrides (the family's knobs,
    passed to `zoo.create_model(..., **dict(overrides))` for the zoo's models; `bench --set` sweeps them).
    Timing rule: the clock is read only after the device finished the work queued before it.
    """

    framework: str

    def info(self) -> dict:
        """framework_version, threads, device ("cpu"/"gpu"), device_note, unavailable (why not the GPU asked for),
        and optionally memory_peak_resets: True where `memory_peak` counts the cell alone however many cells
        the process ran before (a device allocator whose peak statistics `memory_start` resets). Absent or
        False (the host's RSS high-water mark, a peak kept for the whole process), the bench runs each
        training cell in a fresh worker process so that its peak is its own."""

    def machine_peak(self, n: int, dtype: str = "float32") -> float:
        """GFLOP/s of the fastest n x n matrix product of `dtype` on this runner's device."""

    def amp_dtype(self) -> str | None:
        """The 16-bit type of mixed precision on this device, None where it is not used."""

    def memory_start(self) -> None:
        """Start measuring the cell's peak memory."""

    def memory_peak(self) -> tuple[float | None, str]:
        """(peak MiB since memory_start, how it was measured)."""

    def prepare(self, cell: BenchCell) -> Prepared:
        """Build, put synthetic inputs on the device, compile; raise Skip where the cell cannot run here."""


@runtime_checkable
class Trainer(Protocol):
    """SGD with momentum and PyTorch-style (coupled) weight decay on every trainable tensor:
    g = grad + wd * w; buf = momentum * buf + g; w = w - lr * buf. Mean cross-entropy.
    Checkpointable (`state`, `load_state`) and reseedable (`reseed`): training resumed from a checkpoint
    takes the same steps as training that was never interrupted."""

    def prepare(self, images: np.ndarray) -> Any:
        """An NCHW float32 batch in the framework's own form (layout, device)."""

    def labels(self, labels: np.ndarray) -> Any:
        """Integer labels in the framework's own form."""

    def step(self, images: Any, labels: Any, lr: float) -> float:
        """One training step at learning rate `lr`; the batch's mean loss before the update."""

    def logits(self, images: Any) -> np.ndarray:
        """Inference-mode logits of a prepared batch."""

    def state(self) -> dict[str, np.ndarray]:
        """Everything the optimiser carries from one step to the next, as numpy copies keyed by stable
        names: `momentum.<canonical name>` for the momentum buffer of every trainable tensor, in the
        canonical (PyTorch) layout, zeros before the first step, and whatever else the framework's
        update needs (MXNet: `last_lr`). With the model's `export_weights` it is a checkpoint, read back
        by the same framework: the model of the checkpoint's weights (`load_weights`), a Trainer made
        for it, then `load_state`. The dropout stream is not part of it: see `reseed`."""

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what `state()` returned, into a Trainer of the same architecture, whole or not at all:
        one WeightMismatchError names every missing, unexpected, mis-shaped and mis-typed entry, and
        leaves the Trainer as it was."""

    def reseed(self, seed: int) -> None:
        """Draw the dropout masks of the following steps from `seed` (an integer in [0, 2**32)): two
        Trainers of the same weights and state, reseeded with the same seed, take the same steps.
        `make_trainer` reseeds with its `seed`; a run that resumes from a checkpoint reseeds where the
        run it continues did (e.g. at every epoch), since the stream's position is not checkpointed."""


# ---------------------------------------------------------------- the module interface

class Builder(Protocol):
    """A family's builder, the same in every backend: the model of `config` (the family's configuration,
    validated by its spec), ready to call, with `num_classes` outputs and `in_channels` input channels."""

    def __call__(self, config, *, num_classes: int, in_channels: int) -> Any:
        ...


def family_builder(families: Mapping[str, Builder], framework: str, family: str) -> Builder:
    """`families[family]`, or an error naming the families the backend `framework` builds."""
    if family not in families:
        raise UnknownModelError(f"framework {framework!r} builds no {family!r} family; it builds "
                                f"{', '.join(sorted(families))} (a plugin adds one to zoo_<framework>.FAMILIES)")
    return families[family]


class Backend(Protocol):
    """The names a backend package defines (documentation and `check_backend`'s list)."""

    FRAMEWORK: str   # its registry name
    LAYOUT: str      # "NCHW" or "NHWC": what its models take
    FAMILIES: Mapping[str, Builder]  # family name (`ModelSpec.family`) -> its builder

    def version(self) -> str:
        """The framework's version."""

    def build_model(self, spec, config, *, num_classes: int, in_channels: int, signature: InputSignature,
                    dtype: str = "float32") -> Any:
        """Called by `zoo.create_model`: the model, ready to call, checking its input at the edge."""

    def count_parameters(self, model) -> tuple[int, int]:
        """(trainable parameters, all state including BatchNorm running statistics)."""

    def export_weights(self, model) -> dict[str, np.ndarray]:
        """The canonical mapping."""

    def load_weights(self, model, mapping: Mapping[str, np.ndarray]) -> None:
        """Load a canonical mapping; one WeightMismatchError names every bad tensor."""

    def trainable_names(self, model) -> set[str]:
        """Canonical names of the trainable tensors."""

    def predict(self, model, images: np.ndarray) -> np.ndarray:
        """Logits of an NCHW numpy batch, in inference mode."""

    def infer_output_shape(self, model, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for an NCHW input shape, without computing."""

    def loss_gradients(self, model, images: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of one training-mode pass and the gradient of every trainable canonical tensor."""

    def layer_shapes(self, model, input_shape: tuple[int, ...]) -> tuple[dict[str, tuple], dict[str, str]]:
        """({canonical layer name: output shape without the batch, (C, H, W) for maps; "": the model's
        output}, {layer name: the framework's class name}) for an NCHW input shape."""

    def release_memory(self) -> None:
        """Drop what the framework keeps between models (graphs, caches)."""

    def make_trainer(self, model, momentum: float, weight_decay: float, seed: int) -> Trainer:
        """A Trainer for `model` (see `Trainer`)."""

    def bench_runner(self, device: str, options: dict) -> BenchRunner:
        """A BenchRunner on `device`, made in the worker process."""

    def bare_loop(self, name: str, batch: int, threads: int | None) -> Callable[[int], None]:
        """run(n): n inference calls of the zoo model and one synchronisation, written out by hand
        (the yardstick of the bench harness's overhead, `compare.baseline`). `threads`: the framework's
        own thread setting, where it has one; the caller has set OMP_NUM_THREADS before the import."""

    def reference_name(self, model: str) -> str | None:
        """The dotted name of the framework's own implementation of registered `model`, None where it has none."""

    def reference_variant(self, model: str) -> str | None:
        """Where that reference builds another variant of the architecture: what differs, and the knobs
        that make the zoo build it. None where they are the same architecture."""


def first_shape(output) -> tuple[int, ...] | None:
    """The shape of a layer's output, or of its first array where it returns several (GoogLeNet's
    auxiliary heads): what `layer_shapes` reports for it."""
    if hasattr(output, "shape"):
        return tuple(output.shape)
    if isinstance(output, (list, tuple)):
        for item in output:
            shape = first_shape(item)
            if shape is not None:
                return shape
    return None


# Only the reference framework (`zoo.REFERENCE_FRAMEWORK`) needs these: it randomises the weights
# every cross-check starts from (their BatchNorm statistics taken from batches), counts the multiply-adds,
# and initialises the weights every framework trains from:
#   randomize(model, seed=0) -> model: every parameter and buffer random, BatchNorm statistics included
#   calibrate_batchnorm(model, batches) -> model: BatchNorm running statistics set to those of each layer's
#       input over the NCHW numpy `batches`, every other layer in inference mode (as a trained network has them)
#   count_macs(name, input_size, num_classes=None, in_channels=None, overrides=None) -> int: multiply-adds
#       of convolutions and dense layers for one image (built with the family's knobs `overrides`),
#       without computing
#   initial_weights(name, num_classes, seed, overrides) -> dict: the framework's own initialisation of
#       registered model `name` (with the family's knobs `overrides`), as canonical weights
#   stage_profile(name, input_size, boundaries, num_classes=None, in_channels=None, overrides=None) -> dict:
#       the same count split into the stages that end at canonical module paths `boundaries` (the spec's
#       `config.outline()`), with each stage's parameters, output shape and receptive field
REFERENCE_ONLY = ("randomize", "calibrate_batchnorm", "count_macs", "initial_weights", "stage_profile")

REQUIRED = tuple(name for name in Backend.__dict__ if not name.startswith("_")) + ("FRAMEWORK", "LAYOUT", "FAMILIES")


def check_backend(module, *, reference: bool = False) -> list[str]:
    """What `module` lacks of the contract (an empty list when it fulfils it)."""
    problems = []
    names = REQUIRED + (REFERENCE_ONLY if reference else ())
    for name in dict.fromkeys(names):
        if not hasattr(module, name):
            problems.append(f"{module.__name__} has no {name}")
            continue
        declared = getattr(Backend, name, None)
        if callable(declared):
            value = getattr(module, name)
            if not callable(value):
                problems.append(f"{module.__name__}.{name} is not callable")
                continue
            want = [p for p in inspect.signature(declared).parameters if p != "self"]
            try:
                have = list(inspect.signature(value).parameters)
            except (TypeError, ValueError):
                continue
            if have[:len(want)] != want and not any(
                    p.kind == p.VAR_POSITIONAL for p in inspect.signature(value).parameters.values()):
                problems.append(f"{module.__name__}.{name}{inspect.signature(value)} does not take ({', '.join(want)})")
    if getattr(module, "LAYOUT", None) not in ("NCHW", "NHWC"):
        problems.append(f"{module.__name__}.LAYOUT must be 'NCHW' or 'NHWC'")
    for family, build in getattr(module, "FAMILIES", {}).items():
        problems += [f"{module.__name__}.FAMILIES[{family!r}]: {problem}" for problem in builder_problems(build)]
    return problems


def builder_problems(build) -> list[str]:
    """How `build` departs from the builder's signature, `build(config, *, num_classes, in_channels)`."""
    try:
        parameters = list(inspect.signature(build).parameters.values())
    except (TypeError, ValueError):
        return [f"{build!r} has no signature to check"]
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keywords = {p.name for p in parameters if p.kind == p.KEYWORD_ONLY}
    required = {p.name for p in parameters if p.default is p.empty and p.kind != p.VAR_KEYWORD}
    problems = []
    if len(positional) != 1:
        problems.append(f"takes {len(positional)} positional arguments ({', '.join(positional)}), not one (config)")
    if keywords != {"num_classes", "in_channels"} or required - {*positional[:1], "num_classes", "in_channels"}:
        problems.append(f"takes the keywords ({', '.join(sorted(keywords))}), not (num_classes, in_channels) alone")
    return problems

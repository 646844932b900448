"""`gradcheck [MODELS | --all]`: one training step's gradients, compared across the frameworks.

Each model is built with its random parts off (every dropout / stochastic-depth knob set to 0), in
training mode (BatchNorm normalises with the batch's statistics), with the same random canonical
weights (the reference framework's `randomize`, exported and loaded everywhere). The gradient of the
mean cross-entropy with respect to every trainable canonical tensor is compared with the reference's:

    error = ||g - g_ref|| / max(||g_ref||, layer_floor * ||g_ref of its layer||, 1e-6 * ||all of g_ref||)

A tensor is measured against its own reference gradient or, when that is much smaller, against the
gradient of the layer that holds it (the tensors sharing its name up to the last dot). So a tensor
whose true gradient is zero (a convolution bias right before a BatchNorm) does not turn float32
rounding noise into a large relative error, while every weight is held to its own. The absolute
error and the reference norm are reported with it.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import zoo

from .files import writable_file, write_json
from .frameworks import framework_installed, resolve_frameworks
from .knobs import add_set_option, check_knobs, input_size_for, knob_variants
from .options import (UsageError, add_batch_size_option, add_frameworks_option, add_input_size_option,
                      add_json_option, add_models_arguments, add_seed_option, add_tol_option, non_negative_float,
                      positive_int, selected_models)

TOLERANCE = 1e-3
LAYER_FLOOR = 1.0
# BatchNorm in training mode normalises by the batch's own spread: with two images and 1x1 final maps
# that spread is nearly zero and float32 rounding, not the frameworks, decides the gradients. 8 images
# of 64x64 leave every BatchNorm of the zoo at least 32 values per channel.
SMALL_SIZE = 64
BATCH = 8
# In float32, rounding alone moves a few pre-activations across a ReLU's kink or a max pool's tie, and
# each such flip shifts whole gradients by ~1/sqrt(elements) (about 1e-2 in a ResNet): that is
# float32's verdict, not the frameworks'. In float64 the frameworks agree to ~1e-13, so a
# difference above the tolerance there is a real one. `--dtype float32` shows the float32 picture.
DTYPE = "float64"
NUM_CLASSES = 10
# Knobs that make a training step random; gradcheck turns them all off.
RANDOM_KNOBS = re.compile(r"dropout|drop_rate|drop_prob|drop_path|drop_connect|stochastic_depth", re.IGNORECASE)

Tamper = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass
class TensorError:
    name: str
    error: float  # the relative error with the floor above
    absolute: float  # ||g - g_ref||
    reference_norm: float  # ||g_ref||

    def describe(self) -> str:
        return f"{self.name}: {self.error:.2e} (abs {self.absolute:.2e}, |ref| {self.reference_norm:.2e})"


@dataclass
class FrameworkCheck:
    framework: str
    loss: float
    loss_error: float  # relative difference of the loss from the reference's
    tensors: list[TensorError]  # worst first
    problems: list[str] = field(default_factory=list)  # tensors without a gradient, missing or extra

    @property
    def max_error(self) -> float:
        return self.tensors[0].error if self.tensors else 0.0


@dataclass
class ModelCheck:
    model: str
    size: int
    batch: int
    overrides: dict[str, Any]
    reference: str
    reference_loss: float
    tolerance: float
    checks: list[FrameworkCheck]
    error: str | None = None  # the model could not be checked at all
    dtype: str = DTYPE

    @property
    def ok(self) -> bool:
        return self.error is None and all(
            not c.problems and c.max_error <= self.tolerance and c.loss_error <= self.tolerance for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


def random_knobs(config: zoo.FamilyConfig) -> dict[str, Any]:
    """Every non-zero numeric dropout / drop-path / stochastic-depth knob of `config`, set to 0."""
    overrides = {}
    for knob in config.knobs():
        value = getattr(config, knob)
        if RANDOM_KNOBS.search(knob) and isinstance(value, (int, float)) and not isinstance(value, bool) and value:
            overrides[knob] = type(value)(0)
    return overrides


def check_size(model: str, size: int | None = None, overrides: Mapping[str, Any] | None = None) -> int:
    """`size` where given (the command line has checked that the model takes it), else the model's fixed
    size, else a small one that still leaves BatchNorm enough values per channel."""
    if size:
        return size
    spec = zoo.get_spec(model)
    signature = spec.signature(spec.configure(**overrides) if overrides else None)
    return signature.fixed_size or max(signature.min_size, SMALL_SIZE)


def _norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(array, np.float64).ravel()))


def compare_gradients(reference: Mapping[str, np.ndarray | None], grads: Mapping[str, np.ndarray | None],
                      layer_floor: float = LAYER_FLOOR) -> tuple[list[TensorError], list[str]]:
    """Per-tensor errors (worst first) and problems: tensors missing on either side or without a gradient."""
    problems = [f"{name}: no gradient in the reference" for name, g in reference.items() if g is None and name in grads]
    problems += [f"{name}: missing" for name in reference if name not in grads]
    problems += [f"{name}: not in the reference" for name in grads if name not in reference]
    norms = {name: _norm(g) for name, g in reference.items() if g is not None}
    layers: dict[str, float] = {}
    for name, value in norms.items():
        layer = name.rpartition(".")[0]
        layers[layer] = layers.get(layer, 0.0) + value ** 2
    floor = max(1e-6 * float(np.sqrt(sum(v ** 2 for v in norms.values()))), np.finfo(np.float32).tiny)
    errors = []
    for name, ref in reference.items():
        if ref is None or name not in grads:
            continue
        grad = grads[name]
        if grad is None:
            problems.append(f"{name}: no gradient")
            continue
        if np.shape(grad) != np.shape(ref):
            problems.append(f"{name}: shape {np.shape(grad)}, reference {np.shape(ref)}")
            continue
        absolute, ref_norm = _norm(np.asarray(grad, np.float64) - ref), norms[name]
        layer_norm = float(np.sqrt(layers[name.rpartition(".")[0]]))
        error = absolute / max(ref_norm, layer_floor * layer_norm, floor)
        errors.append(TensorError(name, error if np.isfinite(error) else float("inf"), absolute, ref_norm))
    errors.sort(key=lambda e: -e.error)
    return errors, problems


def gradcheck_model(model: str, frameworks: Sequence[str] | None = None, *,
                    reference: str = zoo.REFERENCE_FRAMEWORK, size: int | None = None, batch: int = BATCH,
                    seed: int = 0, tolerance: float = TOLERANCE, layer_floor: float = LAYER_FLOOR,
                    tamper: Tamper | None = None, dtype: str = DTYPE,
                    overrides: Mapping[str, Any] | None = None) -> ModelCheck:
    """Gradients of one training step of `model` (with the knob `overrides`) in each framework against
    `reference`'s.

    `tamper(framework, weights) -> weights` may alter the weights one framework receives (tests plant
    a mismatch with it).
    """
    frameworks = [fw for fw in (frameworks or zoo.available_frameworks()) if fw != reference]
    spec = zoo.get_spec(model)
    overrides = dict(overrides or {})
    size = check_size(model, size, overrides)
    overrides.update(random_knobs(spec.configure(**overrides)))
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, spec.in_channels, size, size)).astype(dtype)
    labels = rng.integers(0, NUM_CLASSES, batch)
    randomizer = zoo.backend(zoo.REFERENCE_FRAMEWORK)
    weights = randomizer.export_weights(randomizer.randomize(
        zoo.create_model(model, zoo.REFERENCE_FRAMEWORK, num_classes=NUM_CLASSES, dtype=dtype, **overrides), seed=seed))

    def gradients(framework: str):
        backend = zoo.backend(framework)
        built = zoo.create_model(model, framework, num_classes=NUM_CLASSES, dtype=dtype, **overrides)
        backend.load_weights(built, tamper(framework, dict(weights)) if tamper else weights)
        try:
            return backend.loss_gradients(built, images, labels)
        finally:
            # Models of a whole `--all` run would not fit in memory together (VGG in float64: >2 GB each).
            del built
            gc.collect()

    ref_loss, ref_grads = gradients(reference)
    checks = []
    for framework in frameworks:
        loss, grads = gradients(framework)
        errors, problems = compare_gradients(ref_grads, grads, layer_floor)
        checks.append(FrameworkCheck(framework, loss, abs(loss - ref_loss) / max(abs(ref_loss), 1e-12), errors, problems))
    return ModelCheck(model, size, batch, overrides, reference, ref_loss, tolerance, checks, dtype=dtype)


def gradcheck(models: Sequence[str], frameworks: Sequence[str] | None = None,
              log: Callable[[ModelCheck], None] | None = None, **options: Any) -> list[ModelCheck]:
    """`gradcheck_model` for each model; a model that fails to build or run is reported, not raised."""
    results = []
    for model in models:
        try:
            result = gradcheck_model(model, frameworks, **options)
        except zoo.FrameworkUnavailableError:
            raise
        except Exception as error:  # one broken model must not hide the others' results
            result = ModelCheck(model, 0, options.get("batch", BATCH), {},
                                options.get("reference", zoo.REFERENCE_FRAMEWORK), float("nan"),
                                options.get("tolerance", TOLERANCE), [],
                                error=f"{type(error).__name__}: {error}", dtype=options.get("dtype", DTYPE))
        results.append(result)
        if log:
            log(result)
    return results


def report(result: ModelCheck, top: int = 3) -> str:
    if result.error:
        return f"ERROR {result.model}: {result.error}"
    knobs = ", ".join(f"{k}={v}" for k, v in result.overrides.items())
    lines = [f"{'ok  ' if result.ok else 'FAIL'} {result.model}  ({result.dtype}, batch {result.batch}, "
             f"{result.size}x{result.size}"
             f"{', ' + knobs if knobs else ''}; loss {result.reference_loss:.6f} in {result.reference})"]
    for check in result.checks:
        worst = "; ".join(e.describe() for e in check.tensors[:top])
        lines.append(f"     {check.framework:>6}: max {check.max_error:.2e} over {len(check.tensors)} tensors, "
                     f"loss {check.loss_error:.1e}; worst {worst}")
        for problem in check.problems:
            lines.append(f"     {check.framework:>6}: {problem}")
    return "\n".join(lines)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "gradcheck", help="compare one training step's gradients across the frameworks",
        description="Gradients of the mean cross-entropy w.r.t. every canonical weight, in training mode "
                    "(BatchNorm on batch statistics, dropout and stochastic depth off), same random weights and "
                    "batch in every framework, compared with the reference framework's. Exits 1 when any "
                    "tensor's relative error exceeds the tolerance.",
    )
    add_models_arguments(parser)
    add_frameworks_option(parser)
    add_tol_option(parser, TOLERANCE, "per tensor")
    parser.add_argument("--layer-floor", type=non_negative_float, default=LAYER_FLOOR, metavar="X",
                        help="a tensor's error is relative to at least this fraction of its layer's gradient norm "
                             "(default 1; 0 compares every tensor with its own gradient alone)")
    add_input_size_option(parser, f"the model's fixed size, else max(its minimum, {SMALL_SIZE})")
    add_batch_size_option(parser, BATCH)
    parser.add_argument("--dtype", choices=("float64", "float32"), default=DTYPE,
                        help="precision of the check (default float64, where the frameworks agree to ~1e-13; "
                             "float32 adds its own rounding, which flips ReLU kinks and max-pool ties)")
    add_seed_option(parser)
    add_set_option(parser)
    parser.add_argument("--top", type=positive_int, default=3, metavar="N",
                        help="worst tensors named per framework (default 3)")
    add_json_option(parser, "the full results")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    models = selected_models(args)
    reference = zoo.REFERENCE_FRAMEWORK
    if not framework_installed(reference):
        raise UsageError(f"gradcheck compares every framework with {zoo.FRAMEWORKS[reference].title}, "
                         "which is not installed here")
    frameworks = [fw for fw in resolve_frameworks(args.frameworks) if fw != reference]
    if not frameworks:
        raise UsageError(f"gradcheck compares other frameworks with {reference}; --frameworks names none "
                         f"besides {reference}" if args.frameworks else
                         f"gradcheck compares other frameworks with {reference}; only {reference} is installed here")
    [overrides] = knob_variants(args.knobs)
    for model in models:  # bad knobs, sizes and paths fail before any work
        check_knobs(model, overrides)
        random = [k for k in random_knobs(zoo.get_spec(model).configure(**overrides)) if k in overrides]
        if random:
            raise UsageError(f"--set {', '.join(f'{k}={overrides[k]!r}' for k in random)}: "
                             "gradcheck turns dropout and stochastic depth off (a random step has no "
                             "gradient to compare); leave them unset or set them to 0")
        if args.input_size:
            input_size_for(model, args.input_size, overrides)
    if args.json:
        writable_file(args.json)
    results = gradcheck(models, frameworks, log=lambda r: print(report(r, args.top), flush=True),
                        size=args.input_size, batch=args.batch_size, seed=args.seed, tolerance=args.tol,
                        layer_floor=args.layer_floor, dtype=args.dtype, overrides=overrides)
    if args.json:
        write_json(args.json, [r.to_dict() for r in results])
    failed = [r.model for r in results if not r.ok]
    checked = [c for r in results for c in r.checks]
    worst = max((c.max_error for c in checked), default=0.0)
    print(f"\n{len(results) - len(failed)}/{len(results)} models within {args.tol:g}; largest error {worst:.2e}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0

"""What the sub-commands share: argument checking, framework probing, tables and atomic file writes."""
from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import io
import itertools
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import zoo


class UsageError(Exception):
    """A bad command line: `cli.main` prints it as `zoo-compare: error: ...` and exits with status 2."""


# ---------------------------------------------------------------- arguments

PROG = "zoo-compare"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the tool's one error path: a bad command line raises UsageError, which `cli.main`
    prints as one line and turns into exit status 2 (argparse's own would print the usage block too).

    Abbreviations are off: with them, `--batch` would silently mean another option the day a second
    option starting with `--batch` is added.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(message)


def split_list(text: str | Sequence[str] | None) -> list[str]:
    """'a,b c' or ['a,b', 'c'] -> ['a', 'b', 'c']."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [item for part in parts for item in part.replace(",", " ").split()]


def resolve_models(names: Iterable[str]) -> list[str]:
    """Model names and shell patterns ('resnet*') -> registered names, in the order given, no repeats."""
    found: list[str] = []
    for name in split_list(list(names)):
        if any(ch in name for ch in "*?["):
            matches = zoo.list_models(name)
            if not matches:
                raise UsageError(f"no registered model matches {name!r} (`zoo-compare list` shows them all)")
        else:
            try:
                zoo.get_spec(name)
            except zoo.UnknownModelError as error:
                raise UsageError(str(error)) from None
            matches = [name]
        found += [m for m in matches if m not in found]
    return found


def resolve_frameworks(text: str | Sequence[str] | None, *, require_installed: bool = True) -> list[str]:
    """Framework names from the command line (default: every installed one), checked."""
    names = split_list(text)
    for name in names:
        if name not in zoo.FRAMEWORKS:
            raise UsageError(f"unknown framework {name!r}; expected one of {', '.join(zoo.FRAMEWORKS)}")
    if not names:
        names = [fw for fw in zoo.FRAMEWORKS if framework_installed(fw)]
        if not names:
            raise UsageError("no framework is installed here; install one of: "
                             + "; ".join(zoo.FRAMEWORKS[fw].install for fw in zoo.FRAMEWORKS))
        note_absent_frameworks([fw for fw in zoo.FRAMEWORKS if fw not in names])
    names = list(dict.fromkeys(names))
    if require_installed:
        missing = [fw for fw in names if not framework_installed(fw)]
        if missing:
            raise UsageError("; ".join(
                f"framework {fw!r} needs {zoo.FRAMEWORKS[fw].needs[0]}, which is not installed here "
                f"(install it with: {zoo.FRAMEWORKS[fw].install})" for fw in missing))
    return names


# argparse `type=` functions: each refuses a value out of range with the range in the message
# (argparse prefixes the option's name). NaN fails every comparison, so each check is written as
# "is inside the range", never as "is outside".

SEED_MAX = 2 ** 32 - 1  # 32 bits: a seed that NumPy and every framework accept


def int_at_least(minimum: int):
    """A `type=` for integers >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)


def positive_int_list(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]: positive integers, no repeats, at least one."""
    values = [positive_int(item) for item in split_list(text)]
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers >= 1, got {text!r}")
    return list(dict.fromkeys(values))


def _number(text: str, expected: str, inside) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not (math.isfinite(value) and inside(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_float(text: str) -> float:
    return _number(text, "a finite number > 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    return _number(text, "a finite number >= 0", lambda v: v >= 0)


def unit_interval(text: str) -> float:
    """Numbers in [0, 1), such as SGD's momentum (1 would never forget a gradient)."""
    return _number(text, "a number in [0, 1)", lambda v: 0 <= v < 1)


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {SEED_MAX}], got {text!r}")
    return value


def framework_names(text: str) -> list[str]:
    """One --frameworks word ('a' or 'a,b'), each a name of zoo.FRAMEWORKS."""
    names = split_list(text)
    for name in names:
        if name not in zoo.FRAMEWORKS:
            # `crosscheck --frameworks torch tf lenet5` hands the model to --frameworks.
            hint = " (model names go before --frameworks)" if name in zoo.list_models() else ""
            raise argparse.ArgumentTypeError(
                f"unknown framework {name!r}; expected one of {', '.join(zoo.FRAMEWORKS)}{hint}")
    return names


# ---------------------------------------------------------------- the shared options
# Each option that several sub-commands take is declared here once, with one spelling and one help
# text. Old spellings stay accepted for a while, hidden from --help, with a note on stderr.

class _Extend(argparse.Action):
    """Collects list values (the `type=` returns a list per word) into one flat list: so
    `--frameworks torch,tf`, `--frameworks torch tf` and a repeated option all mean the same."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        for value in values if isinstance(values, list) else [values]:
            items += value if isinstance(value, list) else [value]
        setattr(namespace, self.dest, items)


class _OldSpelling(argparse.Action):
    """A deprecated spelling of an option: parsed as the new one, announced once on stderr."""

    def __init__(self, option_strings, dest, *, target: argparse.Action, **kwargs):
        super().__init__(option_strings, dest, type=target.type, nargs=target.nargs, choices=target.choices,
                         metavar=target.metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        new = self.target.option_strings[0] if self.target.option_strings else f"positional {self.target.metavar} arguments"
        print(f"{PROG}: warning: {option_string} is deprecated; use {new}", file=sys.stderr)
        self.target(parser, namespace, values, option_string)


def _add(parser: argparse.ArgumentParser, *flags: str, old: Sequence[str] = (), **kwargs) -> argparse.Action:
    action = parser.add_argument(*flags, **kwargs)
    for spelling in old:
        parser.add_argument(spelling, dest=action.dest, action=_OldSpelling, target=action)
    return action


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL ... (names or shell patterns, space- or comma-separated) or --all: every sub-command that
    takes many models. `selected_models(args)` reads them."""
    action = parser.add_argument("models", nargs="*", action=_Extend, default=[], metavar="MODEL",
                                 help="model names or shell patterns ('resnet*'), space- or comma-separated")
    parser.add_argument("--models", dest="models", action=_OldSpelling, target=action)
    parser.add_argument("--all", action="store_true", help="every registered model")


def selected_models(args: argparse.Namespace) -> list[str]:
    if args.all and args.models:
        raise UsageError("give model names or --all, not both")
    if not args.all and not args.models:
        raise UsageError("which models? give names or patterns (e.g. 'resnet*'), or --all")
    return zoo.list_models() if args.all else resolve_models(args.models)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """One model, as MODEL or --model MODEL: every sub-command that takes one. `selected_model(args)`."""
    parser.add_argument("model", nargs="?", metavar="MODEL", help="a registered model (`zoo-compare list`)")
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help="the same as MODEL")


def selected_model(args: argparse.Namespace) -> str:
    given = [name for name in (args.model, args.model_option) if name]
    if not given or (len(given) == 2 and given[0] != given[1]):
        raise UsageError("give one model, as MODEL or --model MODEL (e.g. lenet5); got "
                         + (" and ".join(map(repr, given)) or "none"))
    names = resolve_models([given[0]])
    if len(names) != 1:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise UsageError(f"this command takes one model; {given[0]!r} matches {len(names)} ({shown})")
    return names[0]


FRAMEWORKS_HELP = f"frameworks, comma- or space-separated, from {','.join(zoo.FRAMEWORKS)} (default: every installed one)"


def add_frameworks_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frameworks", nargs="+", type=framework_names, action=_Extend, metavar="NAME",
                        help=FRAMEWORKS_HELP)


def add_tol_option(parser: argparse.ArgumentParser, default: float, what: str) -> None:
    _add(parser, "--tol", old=("--tolerance",), type=non_negative_float, default=default, metavar="X",
         help=f"largest relative error accepted {what} (default {default:g})")


def add_batch_size_option(parser: argparse.ArgumentParser, default: int | Sequence[int], *,
                          many: bool = False) -> None:
    """--batch-size N, or with `many` a comma list of sizes (one run each)."""
    if many:
        _add(parser, "--batch-size", old=("--batch-sizes", "--batch"), type=positive_int_list,
             default=list(default), metavar="N[,N...]",
             help=f"images per batch, a comma list (default {','.join(map(str, default))})")
    else:
        _add(parser, "--batch-size", old=("--batch",), type=positive_int, default=default, metavar="N",
             help=f"images per batch (default {default})")


def add_input_size_option(parser: argparse.ArgumentParser, default: str = "each model's own") -> None:
    _add(parser, "--input-size", old=("--image-size", "--size"), type=positive_int, metavar="N",
         help=f"input height = width (default: {default}); a size the model does not take is refused")


def add_seed_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed_int, default=0, metavar="N",
                        help="seed of the run's random draws: weights, inputs, batches (default 0)")


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", metavar="PATH", help=f"also write {what} to this JSON file "
                                                       "(its folder must exist)")


def add_out_option(parser: argparse.ArgumentParser, default: str | None, shown: str | None = None) -> None:
    """--out DIR; `shown` describes a default that the sub-command works out itself (then `default` is None)."""
    parser.add_argument("--out", default=default, metavar="DIR",
                        help=f"output folder, made if needed (default {shown or default})")


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results already in the output folder")

# ---------------------------------------------------------------- family knobs (--set KEY=VALUE)

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _knob_literal(text: str) -> Any:
    """One knob value: a Python literal ('0.5', '(6, 12, 24, 16)', 'True'), true/false/none in any
    case, or else the text itself (a string knob such as `block=basic`)."""
    text = text.strip()
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_top_level(text: str) -> list[str]:
    """'false,true' -> ['false', 'true']; commas inside brackets stay: '(6,12),(4,4)' -> two items."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def knob_setting(text: str) -> tuple[str, list[Any]]:
    """argparse `type=` for `--set KEY=VALUE[,VALUE...]`: the knob's name and its values."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. memory_efficient=true), got {text!r}")
    return key, [_knob_literal(item) for item in _split_top_level(value)]


SET_HELP = ("a knob of the model's family, KEY=VALUE (repeatable; VALUE a Python literal or true/false/none; "
            "an unknown KEY lists the family's knobs)")


def add_set_option(parser: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """`--set KEY=VALUE`, the one spelling of knob overrides in every sub-command that builds models.

    With `sweep`, a comma list of values (`--set memory_efficient=false,true`) makes one variant each.
    """
    help_text = SET_HELP + ("; a comma list of values makes one variant per value" if sweep else "")
    parser.add_argument("--set", dest="knobs", type=knob_setting, action="append", default=[],
                        metavar="KEY=VALUE", help=help_text)
    parser.set_defaults(knob_sweep=sweep)


def knob_variants(settings: Sequence[tuple[str, list[Any]]], *, sweep: bool = False) -> list[dict[str, Any]]:
    """The `--set` options as override dicts: one dict, or with `sweep` the product of every value list."""
    merged: dict[str, list[Any]] = {}
    for key, values in settings:
        if key in merged:
            raise UsageError(f"--set {key} is given twice")
        if len(values) > 1 and not sweep:
            raise UsageError(f"--set {key} takes one value here, got {len(values)}")
        merged[key] = values
    return [dict(zip(merged, combo)) for combo in itertools.product(*merged.values())]


def check_knobs(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides if `name`'s family accepts them; else a UsageError naming the knob and the reason."""
    try:
        zoo.get_spec(name).configure(**overrides)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--set for {name}: {error}") from None
    return overrides


def knob_label(overrides: dict[str, Any]) -> str:
    """'memory_efficient=True' for tables and cell names; '' for the canonical configuration."""
    return ", ".join(f"{key}={value!r}" for key, value in overrides.items())


def input_size_for(name: str, requested: int | None, overrides: dict[str, Any] | None = None) -> int:
    """The input height (= width) to run `name` at (with the knob `overrides`): `requested` if the model
    accepts it, else a UsageError; without a request, the size the model is built for."""
    spec = zoo.get_spec(name)
    signature = spec.signature(spec.configure(**overrides) if overrides else None)
    if requested is None:
        # A knob may pin another size (LeNet's image_size); else the spec's input size is the model's.
        return (signature.fixed_size if overrides else None) or spec.input_size[1]
    if signature.fixed_size is not None and requested != signature.fixed_size:
        raise UsageError(f"{name} takes only {signature.fixed_size}x{signature.fixed_size} inputs "
                         f"(its dense head is sized for it); got --input-size {requested}")
    if requested < signature.min_size:
        raise UsageError(f"--input-size {requested} is below {name}'s minimum of {signature.min_size}")
    return requested


def writable_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the folder `path` if needed and check that files can be written there, before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to output folder {str(path)!r}: "
                         f"{error.strerror or error}") from None
    return path


def writable_file(path: str | os.PathLike, option: str = "--json") -> Path:
    """Check, before any work, that the file `path` can be written: not a folder, in an existing,
    writable folder (a missing folder is more often a typo than a wish)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option}: {str(path)!r} is a folder; expected a file name")
    folder = path.parent
    if not folder.exists():
        raise UsageError(f"{option}: folder {str(folder)!r} of {str(path)!r} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{option}: {str(folder)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"{option}: cannot write to folder {str(folder)!r}: {error.strerror or error}") from None
    return path


# ---------------------------------------------------------------- plugins

PLUGINS_ENV = "ZOO_PLUGINS"


def load_plugins() -> list[str]:
    """Import the modules named in $ZOO_PLUGINS (comma-separated module names or .py paths).

    A plugin registers models of its own (`zoo.registry.register`), e.g. a student's variant, and may
    provide family builders as modules `<backend package>.<family>`; the environment variable reaches the bench
    workers too, so every command sees the same registry.
    """
    loaded = []
    for item in split_list(os.environ.get(PLUGINS_ENV, "")):
        is_file = item.endswith(".py")
        name = f"zoo_plugin_{Path(item).stem}" if is_file else item
        if name in sys.modules:
            continue
        if is_file and not Path(item).is_file():
            raise UsageError(f"{PLUGINS_ENV}: no plugin file {item!r}")
        try:
            if is_file:
                spec = importlib.util.spec_from_file_location(name, item)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(item)
        except Exception as error:  # noqa: BLE001  (whatever the plugin raises, the user needs its name)
            sys.modules.pop(name, None)
            reason = (str(error).splitlines() or [""])[0]
            raise UsageError(f"{PLUGINS_ENV}: plugin {item!r} does not import: "
                             f"{type(error).__name__}: {reason}") from None
        loaded.append(item)
    return loaded


# ---------------------------------------------------------------- frameworks

_NOTED_ABSENT: set[str] = set()


def note_absent_frameworks(frameworks: Sequence[str]) -> None:
    """Say once per process which frameworks the default set leaves out and why (a GPU machine's own
    Python has PyTorch and JAX, not TensorFlow or MXNet); the run goes on with the others."""
    new = [fw for fw in frameworks if fw not in _NOTED_ABSENT]
    if new:
        _NOTED_ABSENT.update(new)
        reasons = "; ".join(f"{fw} ({zoo.FRAMEWORKS[fw].needs[0]} is not installed)" for fw in new)
        print(f"{PROG}: not here: {reasons}", file=sys.stderr)


def framework_installed(framework: str) -> bool:
    """Whether the framework's package is importable here, found without importing it (fast)."""
    return importlib.util.find_spec(zoo.FRAMEWORKS[framework].needs[0]) is not None


def backend_has_family(framework: str, family: str) -> bool:
    """Whether the framework's backend package has a builder for `family`, found without importing it."""
    package = zoo.FRAMEWORKS[framework].package
    if f"{package}.{family}" in sys.modules:  # registered by a plugin
        return True
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        if (Path(folder) / f"{family}.py").is_file() or (Path(folder) / family / "__init__.py").is_file():
            return True
    return False


def can_build(framework: str, name: str) -> bool:
    return framework_installed(framework) and backend_has_family(framework, zoo.get_spec(name).family)


# ---------------------------------------------------------------- output

def format_table(rows: Sequence[Sequence[object]], *, align: str | None = None, markdown: bool = False) -> str:
    """A plain-text (or Markdown) table; `align` is one 'l'/'r' per column (numbers right by default)."""
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not rows:
        return ""
    columns = len(rows[0])
    if align is None:
        align = "l" + "r" * (columns - 1)
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]

    def line(row):
        cells = [cell.ljust(w) if a == "l" else cell.rjust(w) for cell, w, a in zip(row, widths, align)]
        return ("| " + " | ".join(cells) + " |") if markdown else "  ".join(cells).rstrip()

    out = [line(rows[0])]
    if markdown:
        out.append("|" + "|".join((":" if a == "l" else "-") + "-" * w + (":" if a == "r" else "-")
                                  for w, a in zip(widths, align)) + "|")
    else:
        out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)


def fmt_num(value: float | None, digits: int = 3) -> str:
    """Numbers for tables: '-' for missing, thousands separators, `digits` significant figures."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}"
    if magnitude == 0:
        return "0"
    return f"{value:.{digits}g}"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data: numpy arrays and scalars as lists and numbers, tuples as lists, and
    every NaN or infinity as null. A dict entry that held one gets a `<key>_note` beside it saying
    what was there (unless the producer wrote its own note), so a reader learns why it is null."""
    return _safe(value)[0]


def _safe(value: Any) -> tuple[Any, list[tuple[tuple[int, ...], float]]]:
    """The converted value, and the non-finite numbers it held that no dict has noted yet (index paths)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None, [((), value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], bad = _safe(item)
            note_key = f"{key}_note"
            if bad and isinstance(key, str) and note_key not in value:
                (path, first), more = bad[0], len(bad) - 1
                where = "".join(f"[{index}]" for index in path)
                out[note_key] = (f"{first}{' at ' + where if where else ''}"
                                 f"{f' and {more} more' if more else ''} written as null")
        return out, []
    if isinstance(value, (list, tuple)):
        out, bad = [], []
        for index, item in enumerate(value):
            converted, inner = _safe(item)
            out.append(converted)
            bad += [((index, *path), number) for path, number in inner]
        return out, bad
    return value, []


def write_json(path: str | os.PathLike, data) -> None:
    """Valid JSON, atomically: non-finite numbers become null (see `json_safe`); anything else
    that JSON cannot hold is a TypeError, never a NaN token that strict readers reject."""
    text = json.dumps(json_safe(data), indent=1, allow_nan=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_csv(path: str | os.PathLike, records: Sequence[dict], columns: Sequence[str]) -> None:
    """Records to CSV: the given columns first, then any others in first-seen order."""
    extra = [key for record in records for key in record if key not in columns]
    header = list(columns) + list(dict.fromkeys(extra))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in record.items()})
    atomic_write_text(path, buffer.getvalue())

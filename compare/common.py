"""What the sub-commands share: argument checking, framework probing, tables and atomic file writes."""
from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import io
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import zoo


class UsageError(Exception):
    """A bad command line: `cli.main` prints it as `zoo-compare: error: ...` and exits with status 2."""


# ---------------------------------------------------------------- arguments

def split_list(text: str | Sequence[str] | None) -> list[str]:
    """'a,b c' or ['a,b', 'c'] -> ['a', 'b', 'c']."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [item for part in parts for item in part.replace(",", " ").split()]


def resolve_models(names: Iterable[str]) -> list[str]:
    """Model names and shell patterns ('resnet*') -> registered names, in the order given, no repeats."""
    found: list[str] = []
    for name in names:
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
    names = list(dict.fromkeys(names))
    if require_installed:
        missing = [fw for fw in names if not framework_installed(fw)]
        if missing:
            raise UsageError("; ".join(
                f"framework {fw!r} needs {zoo.FRAMEWORKS[fw].needs[0]}, which is not installed here "
                f"(install it with: {zoo.FRAMEWORKS[fw].install})" for fw in missing))
    return names


def positive_ints(text: str, what: str) -> list[int]:
    values = []
    for item in split_list(text):
        try:
            value = int(item)
        except ValueError:
            raise UsageError(f"{what} must be positive integers, got {item!r}") from None
        if value <= 0:
            raise UsageError(f"{what} must be positive integers, got {value}")
        values.append(value)
    if not values:
        raise UsageError(f"{what}: give at least one value")
    return list(dict.fromkeys(values))


def positive_int(text: str) -> int:
    """argparse `type=` for options that take one positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


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
    return ",".join(f"{key}={value!r}" for key, value in overrides.items())


def input_size_for(name: str, requested: int | None) -> int:
    """The input height (= width) to run `name` at: `requested` if the model accepts it, else its default."""
    spec = zoo.get_spec(name)
    signature = spec.signature()
    if requested is None:
        return spec.input_size[1]
    if signature.fixed_size is not None and requested != signature.fixed_size:
        raise UsageError(f"{name} takes only {signature.fixed_size}x{signature.fixed_size} inputs "
                         f"(its dense head is sized for it); got --input-size {requested}")
    if requested < signature.min_size:
        raise UsageError(f"--input-size {requested} is below {name}'s minimum of {signature.min_size}")
    return requested


def writable_dir(path: str | os.PathLike) -> Path:
    """Create `path` if needed and check that files can be written there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to output folder {str(path)!r}: {error.strerror or error}") from None
    return path


def writable_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    writable_dir(path.parent if str(path.parent) else ".")
    if path.is_dir():
        raise UsageError(f"{str(path)!r} is a folder; give a file name")
    return path


# ---------------------------------------------------------------- plugins

PLUGINS_ENV = "ZOO_PLUGINS"


def load_plugins() -> list[str]:
    """Import the modules named in $ZOO_PLUGINS (comma-separated module names or .py paths).

    A plugin registers models of its own (`zoo.registry.register`), e.g. a student's variant, and may
    provide family builders as modules `<backend package>.<family>`; the environment variable reaches the bench
    workers too, so every command sees the same registry.
    """
    import importlib

    loaded = []
    for item in split_list(os.environ.get(PLUGINS_ENV, "")):
        if item in sys.modules or f"zoo_plugin_{Path(item).stem}" in sys.modules:
            continue
        if item.endswith(".py"):
            name = f"zoo_plugin_{Path(item).stem}"
            spec = importlib.util.spec_from_file_location(name, item)
            if spec is None or not Path(item).is_file():
                raise UsageError(f"{PLUGINS_ENV}: no plugin file {item!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(item)
        loaded.append(item)
    return loaded


# ---------------------------------------------------------------- frameworks

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


def write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=_json_default) + "\n")


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

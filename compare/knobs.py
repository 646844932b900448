"""Family knobs from the command line: `--set KEY=VALUE[,VALUE...]` parsed into override dicts, checked
against the model's family, and the input size a knob may pin."""
from __future__ import annotations

import argparse
import ast
import itertools
from typing import Any, Sequence

import zoo

from .options import UsageError

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

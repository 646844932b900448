"""The command line's shared arguments: each option that several sub-commands take, declared once with one
spelling and one help text, its `type=` converter, and the one error path of a bad command line (UsageError)."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Iterable, Sequence

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


def add_models_arguments(parser: argparse.ArgumentParser, *, one_spelling: str | None = None) -> None:
    """MODEL ... (names or shell patterns, space- or comma-separated) or --all: every sub-command that
    takes many models. `selected_models(args)` reads them. `one_spelling` ("--model") keeps a sub-command
    that used to take one model accepting its option."""
    action = parser.add_argument("models", nargs="*", action=_Extend, default=[], metavar="MODEL",
                                 help="model names or shell patterns ('resnet*'), space- or comma-separated")
    parser.add_argument("--models", dest="models", action=_OldSpelling, target=action)
    if one_spelling:
        parser.add_argument(one_spelling, dest="models", action=_Extend, metavar="MODEL", help="the same as MODEL")
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

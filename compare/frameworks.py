"""Which frameworks and families this Python has: found without importing the frameworks (fast), the
absent ones named once with their reason; and the plugins ($ZOO_PLUGINS) that register models of their own."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Sequence

import zoo
import zoo.specs

from .options import PROG, UsageError, split_list

# ---------------------------------------------------------------- plugins

PLUGINS_ENV = "ZOO_PLUGINS"


def load_plugins() -> list[str]:
    """Import the modules named in $ZOO_PLUGINS (comma-separated module names or .py paths).

    A plugin registers models of its own (`zoo.registry.register`), e.g. a student's variant, and may
    add builders of a family of its own to the backends' tables (`FAMILIES[family] = build`); the
    environment variable reaches the bench workers too, so every command sees the same registry.
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
    """Whether the framework's backend builds `family`, without importing the framework: its table
    (`FAMILIES`) where the backend is imported already, else the zoo's own families, which every backend
    builds (tests/test_contract.py checks the tables). A plugin's family enters a table only by a plugin
    that imported the backend, so an unimported backend has none."""
    backend = sys.modules.get(zoo.FRAMEWORKS[framework].package)
    if backend is not None and hasattr(backend, "FAMILIES"):
        return family in backend.FAMILIES
    return family in zoo.specs.FAMILIES


def can_build(framework: str, name: str) -> bool:
    return framework_installed(framework) and backend_has_family(framework, zoo.get_spec(name).family)


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

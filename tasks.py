#!/usr/bin/env python3
"""Set up the project's virtual environment on first use, then run the zoo's main job or its tests.

    python3 tasks.py compare [ARGS...]   # the compare tool (default tour with no ARGS)
    python3 tasks.py test [PYTEST ARGS...]   # the linter (ruff, configured in pyproject.toml), then pytest

The environment lives in .venv and is refreshed whenever pyproject.toml changes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".zoo-installed"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
# The CUDA build of torch 2.14.1 brings triton, which kills the process (SIGSEGV) when it is imported
# after TensorFlow, as torch._dynamo, torchvision and timm import it; a CPU needs none of it
# (torch.compile's CPU backend generates C++).
UNWANTED = ("triton",)


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    digest = _requirements_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing the project and its dependencies (first run only)", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"], check=True)
    # Wheels whose metadata would pull NumPy back below 2 (MXNet 1.9.1), installed on their own.
    no_deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["zoo"]["no-deps"]
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--no-deps", *no_deps], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "uninstall", "--quiet", "--yes", *UNWANTED], check=True)
    STAMP.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"compare", "test"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment()
    if command == "compare":
        return subprocess.call([str(PYTHON), "-m", "compare", *rest], cwd=ROOT)
    # The linter first (a second): a style slip fails the run, and the tests still run and report.
    lint = subprocess.call([str(PYTHON), "-m", "ruff", "check", "--quiet", "."], cwd=ROOT)
    # Two workers, each taking every test of one model in turn (the tests share built models).
    parallel = [] if any(arg.startswith(("-n", "--numprocesses")) for arg in rest) else ["-n", "2", "--dist", "loadgroup"]
    tests = subprocess.call([str(PYTHON), "-m", "pytest", *parallel, *rest], cwd=ROOT)
    return tests or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`python -m compare` / `zoo-compare`."""
from __future__ import annotations

import sys

from .cli import main  # noqa: F401  (the `zoo-compare` console script)

if __name__ == "__main__":
    sys.exit(main())

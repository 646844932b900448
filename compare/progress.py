"""A progress bar on stderr for long runs: tqdm's when it is installed and stderr is a terminal,
one line per finished step otherwise (so logs of unattended runs still show where a run is)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str, *, enabled: bool = True, unit: str = "cell", lines: bool = True) -> None:
        """`lines`: without a terminal, print a line per step (False: stay silent, where the caller
        reports progress itself)."""
        self.total, self.desc, self.done, self.lines = total, desc, 0, lines
        self.enabled = enabled and total > 0
        self.start = time.perf_counter()
        self._bar = None
        if self.enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, file=sys.stderr, unit=unit, dynamic_ncols=True,
                                 leave=False)
            except ImportError:
                pass

    def describe(self, text: str) -> None:
        """What is running now."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def step(self, text: str = "") -> None:
        """One step finished; `text` says how it went."""
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            if text:
                self._bar.write(text, file=sys.stderr)
        elif self.lines:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.done}/{self.total} {elapsed:6.1f}s] {self.desc}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The bench's side of the worker protocol (`compare.worker`): one process per framework, JSON lines on its
stdin and stdout, its stderr in a log; a worker that dies, hangs or cannot start is a WorkerDied."""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from ..worker import PARENT_ENV


class WorkerDied(RuntimeError):
    pass


class Worker:
    """A framework's worker process, spoken to in JSON lines."""

    def __init__(self, framework: str, device: str, log_path: Path, timeout: float, threads: int | None = None) -> None:
        self.framework, self.device, self.timeout = framework, device, timeout
        self.log = open(log_path, "a", buffering=1)
        self.log.write(f"---- {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: {framework} worker started\n")
        package_root = str(Path(__file__).resolve().parents[2])  # the checkout that holds compare/
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env[PARENT_ENV] = str(os.getpid())  # the worker ends itself when this process is gone
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)  # frameworks that size their pools by it read it when they start
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compare.worker", framework, device, str(threads or 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, bufsize=1)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.info = self._read()
        if not self.info.get("ok"):
            self.close()
            raise WorkerDied(f"{framework} worker could not start: {self.info.get('error')}")

    def _read(self) -> dict:
        if not self.selector.select(self.timeout):
            self.kill()
            raise WorkerDied(f"no answer from the {self.framework} worker within {self.timeout:.0f} s; stopped it")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            why = (f"killed by signal {-code}" + (" (likely out of memory)" if code == -9 else "")
                   if code < 0 else f"exit status {code}")
            raise WorkerDied(f"the {self.framework} worker process died ({why}); see {self.log.name}")
        return json.loads(line)

    def ask(self, op: str, **payload) -> dict:
        if self.process.poll() is not None:
            raise WorkerDied(f"the {self.framework} worker process is gone")
        try:
            self.process.stdin.write(json.dumps({"op": op, **payload}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerDied(f"the {self.framework} worker process is gone") from None
        return self._read()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self.selector.close()
        self.log.close()

"""`bench` never loses results: a folder that holds results is refused unless --resume or --overwrite
says what to do with them, one bench at a time writes into a folder, workers end with the main process
however it ends, and SIGTERM stops a run as cleanly as Ctrl-C. Also its --set knob sweeps.

End to end on the cheapest settings: LeNet-5 in PyTorch (the quickest worker to start), one tiny cell
per step where the check allows.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare import bench, cli
from compare.options import UsageError

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(models=["lenet5"], frameworks=["torch"], batch_sizes=[1], modes=["infer"], device="cpu", repeat=1,
            min_round_s=0.01, warmup_s=0.0, peak_n=128, threads=1, show_progress=False, plots=False)
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def results(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())


def start_cli(out: Path, tmp_path: Path, *options: str) -> subprocess.Popen:
    """`zoo-compare bench lenet5` on torch into `out`, in a process of its own (so that it can be killed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "ZOO_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "compare", "bench", "lenet5", "--frameworks", "torch", "--device", "cpu",
               "--modes", "infer", "--threads", "1", "--no-plots", "--out", str(out), *options]
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def workers_of(pid: int) -> set[int]:
    """The bench worker processes whose parent is `pid`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"compare.worker" in cmdline:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a live process (an exited one that nobody has reaped yet is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def lock_is_free(out: Path) -> bool:
    try:
        with bench.OutputLock(out):
            return True
    except UsageError:
        return False


@linux_only
def test_kill_9_of_the_bench_ends_its_workers_and_frees_the_folder(tmp_path):
    out = tmp_path / "bench"
    main = start_cli(out, tmp_path, "--batch-size", "1", "--repeat", "4", "--min-time", "0.1")
    try:
        workers = set()

        def busy():  # the peak probe is done: the worker is on the first cell
            workers.update(workers_of(main.pid))
            return workers and (out / "machine.json").exists()

        wait_for(busy, 90, "the worker to be busy")
        assert all(running(pid) for pid in workers)
        main.send_signal(signal.SIGKILL)
        wait_for(lambda: not any(running(pid) for pid in workers), 2, f"workers {sorted(workers)} to end")
        assert main.wait(timeout=30) == -signal.SIGKILL
    finally:
        main.kill()
        main.wait()
    assert lock_is_free(out)  # the lock went with its holder


@linux_only
def test_a_stopped_run_keeps_its_cells_and_its_folder_is_refused_resumed_or_overwritten(tmp_path, capsys):
    out = tmp_path / "bench"
    # Two cells of about half a second of timed rounds each; SIGTERM comes during the second.
    main = start_cli(out, tmp_path, "--batch-size", "1,2", "--repeat", "4", "--min-time", "0.1")
    try:
        workers = set()

        def first_cell_saved():
            workers.update(workers_of(main.pid))
            return (out / "results.json").exists() and results(out)

        wait_for(first_cell_saved, 90, "the first cell")
        # Meanwhile another bench into the folder fails at once, naming the one at work there.
        refused_at = time.monotonic()
        with pytest.raises(UsageError) as refused:
            bench.run_bench(out=out, resume=True, **TINY)
        assert time.monotonic() - refused_at < 2
        workers.update(workers_of(main.pid))
        main.send_signal(signal.SIGTERM)
        wait_for(lambda: not any(running(pid) for pid in workers), 2, f"workers {sorted(workers)} to end")
        code = main.wait(timeout=30)
    finally:
        main.kill()
        main.wait()
    message = str(refused.value)
    assert f"another bench is writing there (pid {main.pid} on {socket.gethostname()}, started 20" in message
    assert "compare bench lenet5" in message and "\n" not in message
    # SIGTERM is a clean stop: the cell measured is kept, the one cut short is not recorded, the report made.
    assert code == bench.TERMINATED_STATUS
    assert "zoo-compare: terminated; the cells measured so far are in" in main.stderr.read()
    [first] = results(out)
    assert (first["batch_size"], first["status"]) == (1, "ok") and "lenet5" in (out / "report.md").read_text()
    assert lock_is_free(out)
    machine = (out / "machine.json").read_text()

    with pytest.raises(UsageError, match=r"already holds 1 benchmark cell\(s\).*--resume.*--overwrite"):
        bench.run_bench(out=out, **TINY)
    assert results(out) == [first]
    code = cli.main(["bench", "lenet5", "--frameworks", "torch", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "zoo-compare: error: --out" in err
    with pytest.raises(UsageError, match="give one"):
        bench.run_bench(out=out, resume=True, overwrite=True, **TINY)

    # --resume keeps the cell as it was and adds a --set sweep: cells of other knobs are other cells ...
    variants = [{"activation": "tanh"}, {"activation": "relu"}]
    records, _ = bench.run_bench(out=out, resume=True, variants=variants, **TINY)
    assert records[0] == first and all(r["status"] == "ok" for r in records)
    assert [r["knobs"] for r in results(out)] == [{}, *variants]
    # ... and the first run's machine record (its probe of 2048x2048 products, not this run's of 128x128):
    # every share is of one yardstick, and the report says which.
    assert (out / "machine.json").read_text() == machine
    assert {(r["machine_peak_gflops_per_sec"], r["machine_peak_source"]) for r in records} == {
        (first["machine_peak_gflops_per_sec"], first["machine_peak_source"])}
    report = (out / "report.md").read_text()
    assert f"against {bench.fmt_num(first['machine_peak_gflops_per_sec'])} GFLOP/s (torch float32 probe" in report
    assert "lenet5 [activation='relu']" in report and report.count("Peak memory:") == 1

    capsys.readouterr()
    [replaced], _ = bench.run_bench(out=out, overwrite=True, **TINY)
    assert "overwriting: 3 benchmark cell(s)" in capsys.readouterr().err
    assert results(out) == [replaced] and replaced["latency_ms"] != first["latency_ms"]  # measured again
    assert (out / "machine.json").read_text() != machine  # and the machine probed again


def test_report_shows_knob_variants_side_by_side_and_says_what_each_figure_is_of():
    from compare import report

    def record(knobs, mode, exact, peak, source):
        return {"model": "lenet5", "knobs": knobs, "framework": "torch", "implementation": "zoo", "mode": mode,
                "batch_size": 1, "device": "cpu", "status": "ok", "images_per_sec": 100.0 + len(knobs),
                "latency_ms": 10.0, "latency_p25_ms": 9.0, "latency_p75_ms": 11.0, "gflops": 0.0004,
                "gflops_per_sec": 1.0, "peak_share": 1.0 / peak, "machine_peak_gflops_per_sec": peak,
                "machine_peak_source": source, "peak_memory_mb": 12.5, "memory_exact": exact,
                "memory_method": "host RSS high-water mark"}

    narrow = {"channels": [4, 8]}  # a tuple knob, as results.json gives it back
    records = [record({}, "infer", True, 50.0, "torch float32 probe of T1"),
               record(narrow, "infer", False, 80.0, "torch float32 probe of T2"),
               record(narrow, "train", True, 80.0, "torch float32 probe of T2")]
    (_, infer), (_, train) = report.speed_tables(records)
    assert infer.splitlines()[2].split()[0] == "lenet5" and "lenet5 [channels=(4, 8)]" in infer.splitlines()[3]
    detail = report.detail_table(records)
    assert "12.5 ~" in detail and detail.count("~") == 1  # the inference cell of a reused worker only
    assert "of GFLOP/s" in detail  # two yardsticks on one device: each cell says which
    shares = report.yardstick_paragraph(records)
    assert "on cpu against 2 yardsticks" in shares and "80 GFLOP/s (torch float32 probe of T2) for 2 cell(s)" in shares
    memory = report.memory_paragraph(records)
    assert memory.count("host RSS high-water mark") == 1 and "marked ~" in memory
    assert "~" not in report.detail_table(records[:1]) and "of GFLOP/s" not in report.detail_table(records[:1])

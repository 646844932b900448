"""The yardstick for the `bench` harness's own overhead: a bare, hand-written timing loop, timed side by
side with the harness on the same cell.

    python -m compare.baseline MODEL FRAMEWORK BATCH [--rounds R] [--seconds S] [--threads N]

This process builds the model as `bench` does (each backend's `bare_loop`: the framework's inference
call the way its bench runner makes it) and times plain loops with nothing around them. A `bench`
worker process sets up the same cell. Their rounds alternate, each as long as the other, so the machine's
slow drifts (neighbours, clocks), which on a small shared machine move single runs by tens of percent,
hit both alike: the median of the per-round ratios is the harness's overhead, free of that noise.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import zoo

from .options import ArgumentParser, UsageError, int_at_least, positive_float, positive_int, resolve_models
from .worker import PRE_ROUND_SHARE

PROG = "python -m compare.baseline"


def bare_loop(framework: str, name: str, batch: int, threads: int | None):
    """run(n): n inference calls and one synchronisation, written out by hand in `framework`'s backend."""
    if threads:  # as `bench --threads` does for its workers, before any framework starts its pools
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return zoo.backend(framework).bare_loop(name, batch, threads)


def compare_with_harness(framework: str, name: str, batch: int, *, rounds: int = 7, seconds: float = 0.5,
                         threads: int | None = None) -> dict:
    """Images/s of the bare loop and of the harness, timed in alternating rounds, and their ratios."""
    from .bench import Worker, plan_cells

    cell = plan_cells([name], [framework], [batch], ["infer"], device="cpu", channels_last="off",
                      min_round_s=seconds, threads=threads)[0]
    run = bare_loop(framework, name, batch, threads)
    with tempfile.TemporaryDirectory() as logs:
        worker = Worker(framework, "cpu", Path(logs) / "worker.log", timeout=600, threads=threads)
        try:
            reply = worker.ask("setup", cell=cell)
            if not reply.get("ok"):
                raise RuntimeError(f"the bench worker could not set up {name}: {reply.get('error')}")
            run(3)  # first calls: tracing, allocation, oneDNN primitives
            iterations, bare, harness = reply["iterations"], [], []
            for index in range(rounds):
                for side in ("bare", "harness") if index % 2 == 0 else ("harness", "bare"):
                    if side == "harness":
                        reply = worker.ask("round", min_round_s=seconds)
                        if not reply.get("ok"):
                            raise RuntimeError(f"bench worker: {reply.get('error')}")
                        iterations = reply["iterations"]
                        harness.append(reply["seconds"] / iterations)
                    else:
                        run(max(1, math.ceil(iterations * PRE_ROUND_SHARE)))  # untimed, as the worker does
                        start = time.perf_counter()
                        run(iterations)
                        bare.append((time.perf_counter() - start) / iterations)
        finally:
            worker.close()
    ratios = sorted(b / h for b, h in zip(bare, harness))  # harness speed / bare speed, per round pair
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive")
    return {"bare_images_per_sec": batch / statistics.median(bare),
            "harness_images_per_sec": batch / statistics.median(harness),
            "ratio_median": statistics.median(ratios), "ratio_p25": quartiles[0], "ratio_p75": quartiles[2],
            "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a registered model (`zoo-compare list`)")
    parser.add_argument("framework", choices=list(zoo.FRAMEWORKS))
    parser.add_argument("batch", type=positive_int, metavar="BATCH_SIZE", help="images per batch")
    parser.add_argument("--seconds", type=positive_float, default=0.5, help="least length of one round (default 0.5)")
    # The quartiles of the per-round ratios need two rounds at least.
    parser.add_argument("--rounds", type=int_at_least(2), default=7, help="round pairs (default 7)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="intra-op threads (default: the framework's own choice)")
    try:
        args = parser.parse_args(argv)
        [model] = resolve_models([args.model])
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    result = compare_with_harness(args.framework, model, args.batch, rounds=args.rounds,
                                  seconds=args.seconds, threads=args.threads)
    print(f"{model} {args.framework} batch {args.batch}, {result['rounds']} alternating round pairs: "
          f"bare loop {result['bare_images_per_sec']:.1f} images/s, bench harness "
          f"{result['harness_images_per_sec']:.1f} images/s; harness/bare per pair: median "
          f"{result['ratio_median']:.3f} (p25-p75 {result['ratio_p25']:.3f}-{result['ratio_p75']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

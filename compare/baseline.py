"""A bare, hand-written timing loop: the yardstick for the `bench` harness's own overhead.

    python -m compare.baseline MODEL FRAMEWORK BATCH [--seconds S] [--rounds R] [--threads N]

It builds the model as `bench` does (same execution settings: PyTorch inference_mode in NCHW, TensorFlow
tf.function, MXNet hybridize(static_alloc, static_shape)) and times plain loops with nothing around them,
then prints the median images/s. `bench` on the same cell (`--channels-last off` for PyTorch) should
report within a few percent of it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import zoo


def loop(framework: str, name: str, batch: int, threads: int | None):
    import os

    if threads:  # as `bench --threads` does for its workers, before any framework starts its pools
        os.environ["OMP_NUM_THREADS"] = str(threads)
    spec = zoo.get_spec(name)
    size = spec.input_size[1]
    if framework == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        model = zoo.create_model(name, "torch").eval()
        x = torch.randn(batch, spec.in_channels, size, size)

        def run(n):
            with torch.inference_mode():
                for _ in range(n):
                    model(x)
        return run
    if framework == "tf":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        model = zoo.create_model(name, "tf")
        x = tf.random.normal((batch, size, size, spec.in_channels))
        forward = tf.function(lambda t: model(t, training=False))

        def run(n):
            out = None
            for _ in range(n):
                out = forward(x)
            np.asarray(out)
        return run
    import zoo_mxnet  # noqa: F401
    import mxnet as mx

    model = zoo.create_model(name, "mxnet")
    model.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.normal(shape=(batch, spec.in_channels, size, size))

    def run(n):
        for _ in range(n):
            model(x)
        mx.nd.waitall()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("framework", choices=list(zoo.FRAMEWORKS))
    parser.add_argument("batch", type=int)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    run = loop(args.framework, args.model, args.batch, args.threads)
    run(3)
    start = time.perf_counter()
    run(3)
    n = max(1, int(args.seconds / ((time.perf_counter() - start) / 3)))
    latencies = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        run(n)
        latencies.append((time.perf_counter() - start) / n)
    print(f"{args.model} {args.framework} batch {args.batch}: {args.batch / statistics.median(latencies):.1f} images/s "
          f"(median of {args.rounds} rounds of {n})")


if __name__ == "__main__":
    main()

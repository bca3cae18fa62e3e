"""Training throughput of the helpers pipeline (tf.data: cache, shuffle, batch, prefetch)
versus a naive ``model.fit(numpy arrays)`` of the same model, in the same run.

    python benchmarks/train_throughput.py [--images 3600] [--epochs 3]

Prints images/s for both, their ratio (target on a 2-core CPU at 32x32: >= 2.2x) and the
process's peak resident memory. The first epoch of each (tracing) is not timed.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from helpers import data, model, train
from helpers.profiles import get_profile


def _timed_epochs(fit_one_epoch, epochs: int) -> float:
    fit_one_epoch()  # warm-up: tracing and the tf.data cache fill are not throughput
    start = time.perf_counter()
    for _ in range(epochs):
        fit_one_epoch()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3600)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    profile = get_profile("full")
    train_set = data.load_split("train").take(np.arange(args.images))
    images, labels = train_set.images, train_set.labels

    pipelined = model.build_model()
    dataset = train.make_dataset(images, labels, profile.batch_size, shuffle_seed=0)
    pipeline_s = _timed_epochs(lambda: pipelined.fit(dataset, epochs=1, verbose=0), args.epochs)

    naive = model.build_model()
    naive_s = _timed_epochs(lambda: naive.fit(images, labels, batch_size=profile.batch_size,
                                              epochs=1, shuffle=True, verbose=0), args.epochs)

    n = args.images * args.epochs
    pipeline_rate, naive_rate = n / pipeline_s, n / naive_s
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"helpers tf.data pipeline : {pipeline_rate:8.1f} images/s")
    print(f"naive fit(numpy)         : {naive_rate:8.1f} images/s")
    print(f"ratio                    : {pipeline_rate / naive_rate:8.2f}x (target >= 2.2x)")
    print(f"peak memory (RSS)        : {peak_mib:8.0f} MiB")
    print(f"hardware                 : {train.hardware()}")


if __name__ == "__main__":
    main()

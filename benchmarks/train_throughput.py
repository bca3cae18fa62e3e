"""Training throughput of the helpers pipeline versus a naive ``model.fit(numpy)`` of the same
model, in one run, plus the two knobs worth revisiting: tf.data's autotuner and Keras's
``steps_per_execution``.

    python benchmarks/train_throughput.py [--images 3600] [--epochs 3]

Prints images/s for each variant, the ratio of the helpers pipeline to the naive fit (the
README keeps the last measurement), and the process's peak resident memory. The first epoch
of each variant (tracing, cache fill) is not timed. Uses the book's recipe
(``helpers.recipe.CURRENT``) and the full profile's batch size.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import tensorflow as tf

from helpers import data, model, train
from helpers.profiles import get_profile


def _timed_epochs(fit_one_epoch, epochs: int) -> float:
    fit_one_epoch(0)  # warm-up: tracing and cache fills are not throughput
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        fit_one_epoch(epoch)
    return time.perf_counter() - start


def _pipeline(images, labels, batch_size, autotune: bool):
    def one_epoch(epoch):
        ds, steps = train.training_dataset(images, labels, batch_size, seed=0, first_epoch=epoch,
                                           epochs=epoch + 1)
        if autotune:
            options = tf.data.Options()
            options.autotune.enabled = True
            ds = ds.with_options(options).prefetch(tf.data.AUTOTUNE)
        return ds, steps
    return one_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3600)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    batch = get_profile("full").batch_size
    train_set = data.load_split("train").take(np.arange(args.images))
    images, labels = train_set.images, train_set.labels
    rates = {}

    for label, autotune, per_execution in (("helpers pipeline", False, 1),
                                           ("helpers pipeline, tf.data autotune on", True, 1),
                                           ("helpers pipeline, steps_per_execution=4", False, 4)):
        net = model.build_model()
        if per_execution != 1:
            net.compile(optimizer=net.optimizer, loss=net.loss, metrics=["accuracy"],
                        steps_per_execution=per_execution, jit_compile=False)
        make = _pipeline(images, labels, batch, autotune)

        def fit_one(epoch, net=net, make=make):
            ds, steps = make(epoch)
            net.fit(ds, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)

        rates[label] = args.images * args.epochs / _timed_epochs(fit_one, args.epochs)

    naive = model.build_model()
    rates["naive fit(numpy)"] = args.images * args.epochs / _timed_epochs(
        lambda epoch: naive.fit(images, labels, batch_size=batch, epochs=1, shuffle=True,
                                verbose=0), args.epochs)

    for label, rate in rates.items():
        print(f"{label:<42}: {rate:8.1f} images/s")
    ratio = rates["helpers pipeline"] / rates["naive fit(numpy)"]
    print(f"{'ratio helpers / naive':<42}: {ratio:8.2f}x (target >= 2.2x)")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak memory (RSS)':<42}: {peak_mib:8.0f} MiB")
    print(f"{'hardware':<42}: {train.hardware()}")


if __name__ == "__main__":
    main()

"""CIFAR-10 as uint8 arrays, the article's split, nested stratified subsets and extra examples.

The dataset is read once per process through ``tfds`` (which honours ``TFDS_DATA_DIR``).
Every array travels with the tfds ``id`` of each example; test ids are original CIFAR-10
test indices (``test_01227`` is index 1227).

The split: 10,000 validation images are held out of the 50,000 training images; the other
40,000 are the *pool*. Training sets are stratified fractions of the pool, nested so that a
smaller fraction is always inside a larger one. Profiles shrink the pool, validation and
test sets by taking the first images of the same per-class orders, so they stay nested too.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import urllib.parse

import numpy as np

from helpers import CLASS_NAMES, NUM_CLASSES, class_id, sources
from helpers.profiles import FULL_VAL_SIZE, Profile

SPLIT_SEED = 20_240_521  # fixed: every experiment sees the same split, whatever its seed
# where tfds 4.9's cifar10 builder downloads from (tensorflow_datasets/image_classification/
# cifar.py); read from the builder when it exposes it
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
NETWORK_CHECK_TIMEOUT_S = 5.0


class DatasetUnavailableError(RuntimeError):
    """CIFAR-10 is neither prepared locally nor downloadable."""


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # (n, 32, 32, 3) uint8
    labels: np.ndarray  # (n,) int64
    ids: np.ndarray  # (n,) str, tfds ids

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "LabelledImages":
        return LabelledImages(self.images[index], self.labels[index], self.ids[index])

    def by_ids(self, ids) -> "LabelledImages":
        """The examples with these tfds ids, in that order (``ids`` are sorted by load_split)."""
        ids = np.asarray(ids)
        rows = np.searchsorted(self.ids, ids)
        if len(ids) and (rows.max() >= len(self.ids) or not np.array_equal(self.ids[rows], ids)):
            raise KeyError("some ids are not in this split")
        return self.take(rows)


def _offline_fix() -> str:
    """How to use CIFAR-10 without downloading it; names DCAI_OFFLINE only when it is set."""
    fix = (
        "Without network, point tfds at a prepared copy: export TFDS_DATA_DIR=/path/to/shared/"
        "tensorflow_datasets (or DCAI_SHARED=/path/to/shared) before starting Python."
    )
    if sources.offline():
        fix += " With network, unset DCAI_OFFLINE so tfds can download CIFAR-10."
    return fix


def _download_url(builder) -> str:
    info = getattr(builder, "_cifar_info", None)
    return getattr(info, "url", None) or CIFAR10_URL


def _proxy_configured() -> bool:
    return any(os.environ.get(name) for name in
               ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))


def check_download_reachable(url: str = CIFAR10_URL,
                             timeout: float = NETWORK_CHECK_TIMEOUT_S,
                             data_dir: str | None = None) -> None:
    """Fail in seconds when the download host cannot be reached (TCP connect, port 443).

    Skipped when an HTTPS proxy is configured (the proxy, not this machine, connects). Raises
    DatasetUnavailableError whose message says there is no network and how to use a
    prepared copy instead (``data_dir``: where tfds looked, for the message); tfds itself would
    retry for minutes first."""
    if _proxy_configured():
        return
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise DatasetUnavailableError(
            f"CIFAR-10 is not prepared {'in ' + repr(str(data_dir)) if data_dir else 'locally'} "
            f"and cannot be downloaded: {host}:{port} is not "
            f"reachable ({type(error).__name__}: {error}), so this machine seems to have no "
            f"network. {_offline_fix()}"
        ) from error


@functools.lru_cache(maxsize=None)
def load_split(split: str) -> LabelledImages:
    """One tfds split of CIFAR-10 as arrays (cached for the life of the process)."""
    import tensorflow_datasets as tfds

    data_dir = sources.tfds_data_dir()
    builder = tfds.builder("cifar10", data_dir=data_dir)
    if not builder.is_prepared():
        if sources.offline():
            raise DatasetUnavailableError(
                f"CIFAR-10 is not prepared in {builder.data_dir!r} and DCAI_OFFLINE=1 forbids "
                f"downloading it. {_offline_fix()}"
            )
        check_download_reachable(_download_url(builder), data_dir=builder.data_dir)
        try:
            builder.download_and_prepare()
        except Exception as error:  # network errors come in many types
            raise DatasetUnavailableError(
                f"CIFAR-10 could not be downloaded ({type(error).__name__}: {error}). "
                f"{_offline_fix()}"
            ) from error
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    ids = np.array([i.decode() for i in arrays["id"]])
    order = np.argsort(ids, kind="stable")  # a canonical order, independent of shard layout
    return LabelledImages(
        images=np.ascontiguousarray(arrays["image"][order]),
        labels=arrays["label"][order].astype(np.int64),
        ids=ids[order],
    )


def test_indices(ids: np.ndarray) -> np.ndarray:
    """Original CIFAR-10 test indices from tfds test ids (``test_01227`` -> 1227)."""
    return np.array([int(i.rsplit("_", 1)[1]) for i in ids], dtype=np.int64)


def _per_class_orders(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """For each class, its example indices in one fixed random order."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(NUM_CLASSES)]


def _first_per_class(orders: list[np.ndarray], count: int) -> np.ndarray:
    """The first ``count // 10`` indices of every class order (stratified, nested in count)."""
    per_class = count // NUM_CLASSES
    if count % NUM_CLASSES or per_class < 1:
        raise ValueError(f"sizes must be positive multiples of {NUM_CLASSES}, got {count}")
    if any(len(o) < per_class for o in orders):
        raise ValueError(f"{count} examples asked for, but a class has only {min(map(len, orders))}")
    return np.sort(np.concatenate([o[:per_class] for o in orders]))


@dataclasses.dataclass(frozen=True)
class Split:
    """The article's split, shrunk to a profile: pool orders, validation and test sets."""

    train: LabelledImages  # all 50,000 CIFAR-10 training images
    pool_orders: tuple[np.ndarray, ...]  # per class, indices into ``train`` (profile-sized)
    validation: LabelledImages
    test: LabelledImages

    @property
    def pool_size(self) -> int:
        return sum(len(o) for o in self.pool_orders)


@functools.lru_cache(maxsize=None)
def make_split(profile: Profile) -> Split:
    train = load_split("train")
    orders = _per_class_orders(train.labels, SPLIT_SEED)
    val_per_class = FULL_VAL_SIZE // NUM_CLASSES
    held_out = [o[:val_per_class] for o in orders]
    pool_orders = tuple(o[val_per_class:][: profile.pool_size // NUM_CLASSES] for o in orders)
    validation = train.take(_first_per_class(held_out, profile.val_size))
    test_all = load_split("test")
    if profile.test_size >= len(test_all):
        test = test_all
    else:
        test = test_all.take(_first_per_class(_per_class_orders(test_all.labels, SPLIT_SEED),
                                              profile.test_size))
    return Split(train=train, pool_orders=pool_orders, validation=validation, test=test)


def subset_counts(pool_size: int, fraction: float) -> int:
    """Images per class in a stratified ``fraction`` of a pool of ``pool_size`` images."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (e.g. 0.5 for half the pool), got {fraction}")
    per_class = round(fraction * pool_size / NUM_CLASSES)
    if per_class < 1:
        raise ValueError(
            f"fraction {fraction} of a {pool_size}-image pool is an empty training set: "
            "use a larger fraction or a larger profile"
        )
    return per_class


def training_set(split: Split, fraction: float,
                 extra: tuple[tuple[str, int], ...] = ()) -> LabelledImages:
    """A stratified, nested ``fraction`` of the pool plus ``extra`` examples of named classes.

    Extras come from the part of the pool outside the subset (so they are never duplicates).
    """
    per_class = subset_counts(split.pool_size, fraction)
    chosen = [o[:per_class] for o in split.pool_orders]
    for name, count in extra:
        c = class_id(name)
        if count < 0:
            raise ValueError(f"extra count for {name!r} must be >= 0, got {count}")
        free = len(split.pool_orders[c]) - per_class
        if count > free:
            raise ValueError(
                f"{count} extra {name!r} examples asked for, but only {free} are left in the "
                f"pool outside the {fraction:.0%} subset: ask for at most {free}, or use a "
                "smaller fraction"
            )
        chosen.append(split.pool_orders[c][per_class:per_class + count])
    return split.train.take(np.sort(np.concatenate(chosen)))


def class_counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(np.asarray(labels), minlength=NUM_CLASSES)


__all__ = [
    "CLASS_NAMES", "DatasetUnavailableError", "LabelledImages", "Split", "class_counts",
    "load_split", "make_split", "subset_counts", "test_indices", "training_set",
]

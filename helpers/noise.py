"""Injected label noise with a known mask: symmetric (any class to any other) and
class-conditional (labels swapped between confusable classes, as annotators do).

Both are pure functions of (labels, rate, seed): the same seed gives the same noisy labels.
"""

from __future__ import annotations

import numpy as np

from helpers import CLASS_NAMES, NUM_CLASSES, class_id

NOISE_KINDS = ("symmetric", "pairs")

# The confusable pairs of CIFAR-10 (each the other's most frequent confusion in the book's
# confusion matrices and in the published test-label errors): class-conditional noise swaps
# labels within these pairs only.
CONFUSABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("cat", "dog"), ("automobile", "truck"), ("deer", "horse"), ("airplane", "ship"))


def check_kind(kind: str) -> str:
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}: use one of {', '.join(NOISE_KINDS)}")
    return kind


def _check_rate(rate: float) -> None:
    if not 0 <= rate < 1:
        raise ValueError(
            f"noise rate must be in [0, 1) as a fraction (0.05 for 5%), got {rate}"
        )


def inject_symmetric_noise(labels: np.ndarray, rate: float, seed: int,
                           num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` labels, chosen uniformly, each to a different class
    chosen uniformly. Returns ``(noisy_labels, flipped_mask)``; the input is not modified.
    """
    _check_rate(rate)
    labels = np.asarray(labels)
    n_flips = round(rate * len(labels))
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), size=n_flips, replace=False)
    noisy = labels.copy()
    # an offset in 1..K-1 lands uniformly on one of the K-1 *other* classes
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, size=n_flips)) % num_classes
    mask = np.zeros(len(labels), dtype=bool)
    mask[flipped] = True
    return noisy, mask


def _partners(pairs) -> dict[int, int]:
    partner = {}
    for a, b in pairs:
        a, b = class_id(a), class_id(b)
        if a == b or a in partner or b in partner:
            raise ValueError(f"pairs must be disjoint pairs of different classes, got {pairs!r}")
        partner[a], partner[b] = b, a
    return partner


def inject_pair_noise(labels: np.ndarray, rate: float, seed: int,
                      pairs=CONFUSABLE_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """Class-conditional noise: in each class of ``pairs``, exactly ``round(rate * n_c)`` of
    its ``n_c`` examples (chosen uniformly) get the partner's label; classes outside the pairs
    keep theirs. With the four CIFAR-10 pairs, 8 of 10 classes take part, so 40% per pair is
    32% of all labels. Returns ``(noisy_labels, flipped_mask)``; the input is not modified.
    ``noise_matrix("pairs", rate)`` is the matrix this draws from."""
    _check_rate(rate)
    labels = np.asarray(labels)
    partner = _partners(pairs)
    rng = np.random.default_rng([seed, 1])  # a stream of its own: not symmetric noise's draws
    noisy = labels.copy()
    mask = np.zeros(len(labels), dtype=bool)
    for cls in sorted(partner):
        members = np.flatnonzero(labels == cls)
        flipped = rng.choice(members, size=round(rate * len(members)), replace=False)
        noisy[flipped] = partner[cls]
        mask[flipped] = True
    return noisy, mask


def inject_noise(labels: np.ndarray, rate: float, seed: int,
                 kind: str = "symmetric") -> tuple[np.ndarray, np.ndarray]:
    """``inject_symmetric_noise`` or ``inject_pair_noise``, by ``kind`` (one of NOISE_KINDS)."""
    if check_kind(kind) == "pairs":
        return inject_pair_noise(labels, rate, seed)
    return inject_symmetric_noise(labels, rate, seed)


def noise_matrix(kind: str, rate: float, num_classes: int = NUM_CLASSES,
                 pairs=CONFUSABLE_PAIRS) -> np.ndarray:
    """The noise transition matrix ``P(given label = i | true label = j)`` (rows: given, columns:
    true; each column sums to 1), cleanlab's convention (``cleanlab.benchmarking.noise_generation``)."""
    _check_rate(rate)
    if check_kind(kind) == "symmetric":
        matrix = np.full((num_classes, num_classes), rate / (num_classes - 1))
        np.fill_diagonal(matrix, 1 - rate)
        return matrix
    matrix = np.eye(num_classes)
    for true, given in _partners(pairs).items():
        matrix[true, true], matrix[given, true] = 1 - rate, rate
    return matrix


def noise_counts_per_class(true_labels: np.ndarray, mask: np.ndarray,
                           num_classes: int = NUM_CLASSES) -> np.ndarray:
    """How many examples of each (true) class received a wrong label."""
    return np.bincount(np.asarray(true_labels)[np.asarray(mask)], minlength=num_classes)


__all__ = ["CLASS_NAMES", "CONFUSABLE_PAIRS", "NOISE_KINDS", "inject_noise", "inject_pair_noise",
           "inject_symmetric_noise", "noise_matrix", "noise_counts_per_class"]

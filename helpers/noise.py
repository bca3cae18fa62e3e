"""Symmetric label noise: a known number of labels moved to a different class."""

from __future__ import annotations

import numpy as np

from helpers import NUM_CLASSES


def inject_symmetric_noise(labels: np.ndarray, rate: float, seed: int,
                           num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` labels, chosen uniformly, each to a different class
    chosen uniformly. Returns ``(noisy_labels, flipped_mask)``; the input is not modified.
    """
    if not 0 <= rate < 1:
        raise ValueError(
            f"noise rate must be in [0, 1) as a fraction (0.05 for 5%), got {rate}"
        )
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


def noise_counts_per_class(true_labels: np.ndarray, mask: np.ndarray,
                           num_classes: int = NUM_CLASSES) -> np.ndarray:
    """How many examples of each (true) class received a wrong label."""
    return np.bincount(np.asarray(true_labels)[np.asarray(mask)], minlength=num_classes)

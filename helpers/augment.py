"""Training augmentations applied in the input pipeline (numpy, batch by batch), as opposed to
the article's set, which lives inside the model as Keras preprocessing layers
(``helpers.model.augmentation_block``).

Each is a pure function ``augment(images, seed) -> images`` of a uint8 batch (n, 32, 32, 3) and
an integer seed: ``helpers.train.training_dataset`` derives the seed from (run seed, epoch,
batch), so a resumed run sees exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from helpers import corruptions

CROP_PADDING = 4  # pixels of zero padding on each side before the random 32x32 crop

PIPELINE_AUGMENTATIONS = {
    "crop_flip": "pad 4 pixels (zeros), random 32x32 crop, random horizontal flip (CIFAR practice)",
    "weather": "half the images get snow, frost or fog at a random severity 1-5 "
               "(the deployment-mimicking augmentation; CIFAR-10-C's definitions)",
    # the two halves of crop_flip alone, to tell which one does the work
    "crop": "pad 4 pixels (zeros), random 32x32 crop; no flip",
    "flip": "random horizontal flip; no crop",
}


def crop_flip(images: np.ndarray, seed: int, padding: int = CROP_PADDING, crop: bool = True,
              mirror: bool = True) -> np.ndarray:
    """Pad-and-random-crop plus horizontal flip, the standard CIFAR augmentation (He et al.,
    2016): each image is zero-padded by ``padding`` pixels on every side, a window of the
    original size is cut at a uniformly random offset, and the result is mirrored left-right
    with probability 1/2. ``crop=False`` keeps every window centred (no shift) and
    ``mirror=False`` never flips: the two halves alone, with the same random draws.
    ``images``: uint8 (n, h, w, c); returns a new array, same shape."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be a batch (n, h, w, c), got shape {images.shape}")
    n, h, w, _ = images.shape
    rng = np.random.default_rng(seed)
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    flip = rng.random(n) < 0.5
    if not crop:
        dy[:] = dx[:] = padding
    if not mirror:
        flip[:] = False
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    rows = dy[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + np.arange(w)[None, :]  # (n, w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def pipeline_augmentation(kind: str) -> Callable[[np.ndarray, int], np.ndarray]:
    """The batch transform of ``kind`` (a key of ``PIPELINE_AUGMENTATIONS``); ValueError names
    the choices for an unknown kind."""
    if kind == "crop_flip":
        return crop_flip
    if kind == "crop":
        return functools.partial(crop_flip, mirror=False)
    if kind == "flip":
        return functools.partial(crop_flip, crop=False)
    if kind == "weather":
        mimic = corruptions.mimic_augmentation("weather", probability=0.5)
        return lambda images, seed: mimic(images, seed=seed)
    raise ValueError(f"unknown pipeline augmentation {kind!r}: use one of "
                     f"{', '.join(PIPELINE_AUGMENTATIONS)} (or augment=True for the article's set)")

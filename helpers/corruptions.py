"""Deployment shift: deterministic corrupted copies of test images, in the spirit of CIFAR-10-C.

Ten corruptions at five severities (``CORRUPTIONS`` x ``SEVERITIES``: 50 shifted test sets),
grouped into ``FAMILIES``; ``corrupt`` makes one set, ``shifted_test_set`` caches it for the
life of the process (nothing is written to disk), ``score_shifted`` measures a classifier on
all of them, and ``mimic_augmentation`` returns an on-the-fly training augmentation that draws
from one family (the chapter trains on "weather" and holds the other families out).

Whose definitions
-----------------
Every corruption and every per-severity parameter is CIFAR-10-C's: ``make_cifar_c.py`` in
Hendrycks & Dietterich's code (github.com/hendrycks/robustness, ``ImageNet-C/create_c/``,
Apache-2.0), where the authors rescaled the ImageNet-C corruptions for 32x32 images
(``PARAMETERS`` lists them). The packaged ImageNet-C code, ``imagecorruptions`` 1.1.2 (Rusak,
Mitzkus et al., Bethge lab, Apache-2.0), hard-codes the 224-pixel values instead: a defocus
radius of 3-10 pixels (CIFAR-10-C: 0.3-1.5), motion-blur radius 10-20 (6-9), Gaussian noise of
standard deviation 0.08-0.38 (0.04-0.10), JPEG quality 25-7 (80-40), pixelation to 60-25% of the
side (95-65%): on a 32-pixel image its severity 1 is already harsher than CIFAR-10-C's 5 for
defocus, motion blur, JPEG and pixelate. Three of its functions also fail with numpy 2 and scikit-image 0.26
(``fog``: ``np.float_``; ``glass_blur`` and ``gaussian_blur``: ``multichannel=``). So the
functions below re-implement CIFAR-10-C's code, batched over images, on numpy, SciPy, Pillow and
OpenCV; from ``imagecorruptions`` they take the frost photographs (byte-identical to
CIFAR-10-C's), and the tests check the batched helpers against its reference ones (disk kernel,
motion blur, clipped zoom, plasma fractal).

How these sets differ from the published CIFAR-10-C files
---------------------------------------------------------
- The clean images are this book's test images (offline: a JPEG-degraded copy of CIFAR-10), not
  the original files, and every random draw (noise, snow layer, blur angle, frost crop, fog
  fractal) comes from numpy Generators seeded by (seed, corruption, severity) instead of the
  global ``np.random`` state: the corruptions follow the same distributions, the pixels differ.
  Accuracies are comparable in kind, not number for number, with published CIFAR-10-C results.
  The published sets are in tensorflow-datasets as ``cifar10_corrupted/<corruption>_<severity>``
  (``tfds_name``; test split, the 10,000 original test images).
- Motion blur (also the streaks of the snow layer): CIFAR-10-C calls ImageMagick's
  ``MotionBlurImage`` through Wand; here it is imagecorruptions' numpy re-implementation of that
  kernel (a one-sided Gaussian-weighted sum of the image shifted by whole pixels along the blur
  direction, edges replicated), rounded to 8 bits as ImageMagick's PNG output is.
- Brightness adds to the HSV value in closed form (see ``_brightness``): equal to scikit-image's
  HSV round trip that CIFAR-10-C uses up to float rounding (one grey level, in a few % of values).
- JPEG is encoded and decoded by OpenCV: the same bytes as Pillow, which CIFAR-10-C uses (checked
  in the tests); pixelate is Pillow's box filter, as there.
- Fog's plasma fractal is CIFAR-10-C's diamond-square algorithm, one 32x32 fractal per image.
- Frost crops a random 32x32 window of one of the first five frost photographs scaled to 20%
  (CIFAR-10-C's ``np.random.randint(5)`` never picks the sixth either).
- Results are converted to uint8 by truncation, as ``np.uint8(...)`` in ``make_cifar_c.py``.
- Ten of CIFAR-10-C's fifteen benchmark corruptions: shot and impulse noise, glass and zoom blur
  and the elastic transform are left out (and the four extra ones).
- Families follow Hendrycks & Dietterich except brightness, which they count as weather: here it
  is "digital", so that the weather family (the one the augmentation mimics) is snow, frost and
  fog only.

Determinism
-----------
``corrupt(images, c, s, seed)`` is a pure function: the same arguments give the same bytes, in
this process and in any other with the same library versions (numpy does not promise Generator
streams across its own versions). Image ``i`` of a call is corrupted with draws that depend only
on (seed, corruption, severity, i): a prefix of a batch comes out exactly as inside the whole
batch.

Cost: generating all 50 sets took 7 s for 2,000 images and 33 s for 10,000 (about 3.5 ms per
image) on 2 CPU cores that were also training a model.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---------------------------------------------------------------------------------------------
# What exists

FAMILIES: dict[str, tuple[str, ...]] = {
    "weather": ("snow", "frost", "fog"),
    "blur": ("motion_blur", "defocus_blur"),
    "noise": ("gaussian_noise",),
    "digital": ("brightness", "contrast", "jpeg_compression", "pixelate"),
}
CORRUPTIONS: tuple[str, ...] = tuple(name for names in FAMILIES.values() for name in names)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
IMAGE_SHAPE = (32, 32, 3)

# CIFAR-10-C's parameters (make_cifar_c.py), one entry per severity 1..5.
PARAMETERS: dict[str, tuple] = {
    # (mean, std of the snow layer's normal draw, zoom, threshold, streak radius (px),
    #  streak sigma, blend of the image with its brightened grey version)
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95),
             (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    # (weight of the image, weight of the frost crop)
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    # (fog strength, plasma-fractal roughness decay: lower = patchier)
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    # (radius (px), sigma) of the motion-blur kernel; angle uniform in [-45, 45) degrees
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    # (disk radius (px), anti-aliasing Gaussian sigma)
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # standard deviation of the added noise, pixels in [0, 1]
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    # added to the HSV value channel, in [0, 1]
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    # factor on each channel's deviation from its mean
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    # JPEG quality (4:2:0 chroma subsampling, as Pillow and OpenCV default to)
    "jpeg_compression": (80, 65, 58, 50, 40),
    # side after box down-sampling, as a fraction of 32 (then box up-sampled back to 32)
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
}

CHUNK = 1000  # images processed at a time: bounds memory; random draws are per chunk index
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")


def tfds_name(corruption: str, severity: int) -> str:
    """The tensorflow-datasets name of the published CIFAR-10-C set for a corruption and
    severity, e.g. ``tfds.load(tfds_name("snow", 5), split="test")`` (a 2.9 GB download)."""
    _check_choice(corruption, severity)
    return f"cifar10_corrupted/{corruption}_{severity}"


# ---------------------------------------------------------------------------------------------
# Checks


def _check_images(images) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array of shape (n, 32, 32, 3), dtype uint8; "
                        f"got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must have dtype uint8 (pixels 0-255), got {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must have shape (n, 32, 32, 3), got {images.shape}")
    return images


def _check_choice(corruption, severity) -> None:
    if not isinstance(corruption, str) or corruption not in PARAMETERS:
        raise ValueError(f"unknown corruption {corruption!r}; "
                         f"choose one of {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES} (an int), got {severity!r}")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _key(name: str) -> int:
    """A stable number for a name (so adding a corruption never changes another's draws)."""
    return zlib.crc32(name.encode())


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 255] floats to uint8 by truncation, like ``np.uint8(...)`` in make_cifar_c.py."""
    return np.clip(x, 0, 255).astype(np.uint8)


def _rngs(seed_sequence: np.random.SeedSequence, count: int) -> list[np.random.Generator]:
    """Independent generators, one per kind of draw: each kind is drawn once per chunk, so
    image i's draws do not depend on how many images follow it."""
    return [np.random.default_rng(s) for s in seed_sequence.spawn(count)]


# ---------------------------------------------------------------------------------------------
# Building blocks (batched versions of CIFAR-10-C's / imagecorruptions' helpers)


@functools.cache
def _frost_textures() -> tuple[np.ndarray, ...]:
    """The first five frost photographs of imagecorruptions, scaled to 20% (RGB uint8)."""
    import cv2

    spec = importlib.util.find_spec("imagecorruptions")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("frost needs the photographs shipped with `imagecorruptions`: "
                          "pip install 'imagecorruptions>=1.1.2,<1.2' (in requirements.txt)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "frost"
    textures = []
    for name in _FROST_FILES:
        bgr = cv2.imread(str(folder / name))
        if bgr is None:
            raise FileNotFoundError(f"frost photograph missing or unreadable: {folder / name}")
        small = cv2.resize(bgr, (0, 0), fx=0.2, fy=0.2)  # INTER_LINEAR, as make_cifar_c.py
        textures.append(np.ascontiguousarray(small[..., ::-1]))
    return tuple(textures)


@functools.cache
def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """CIFAR-10-C's defocus kernel (imagecorruptions.corruptions.disk for radius <= 8), cropped
    to its non-zero support so that the filter runs directly instead of through a DFT."""
    import cv2

    grid = np.arange(-8, 8 + 1)
    xx, yy = np.meshgrid(grid, grid)
    aliased = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=np.float32)
    aliased /= np.sum(aliased)
    kernel = cv2.GaussianBlur(aliased, ksize=(3, 3), sigmaX=alias_blur)
    rows = np.flatnonzero(kernel.any(axis=1))
    half = int(max(8 - rows.min(), rows.max() - 8))
    return np.ascontiguousarray(kernel[8 - half:8 + half + 1, 8 - half:8 + half + 1])


def _plasma_fractal(uniforms: np.ndarray, wibbledecay: float, mapsize: int = 32) -> np.ndarray:
    """Diamond-square height maps (n, mapsize, mapsize) in [0, 1], one per image, from
    ``uniforms`` (n, 1023) in [-1, 1): CIFAR-10-C's ``plasma_fractal`` with its
    ``np.random.uniform(-wibble, wibble)`` draws replaced by ``wibble * uniforms``."""
    n = uniforms.shape[0]
    maparray = np.zeros((n, mapsize, mapsize))
    stepsize, wibble, used = mapsize, 100.0, 0

    def wibbledmean(array):
        nonlocal used
        size = array.shape[1] * array.shape[2]
        noise = uniforms[:, used:used + size].reshape(array.shape)
        used += size
        return array / 4 + wibble * (wibble * noise)

    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        squares = corners + np.roll(corners, shift=-1, axis=1)
        squares += np.roll(squares, shift=-1, axis=2)
        maparray[:, half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(squares)

        drgrid = maparray[:, half:mapsize:stepsize, half:mapsize:stepsize]
        ulgrid = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        left = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=2)
        maparray[:, 0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(left)
        top = drgrid + np.roll(drgrid, 1, axis=2) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[:, half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(top)

        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min(axis=(1, 2), keepdims=True)
    return maparray / maparray.max(axis=(1, 2), keepdims=True)


PLASMA_DRAWS = sum(3 * (32 // (2 ** k)) ** 2 for k in range(5, 0, -1))  # 1023 for 32x32


def _clipped_zoom(layers: np.ndarray, zoom: float) -> np.ndarray:
    """CIFAR-10-C's ``clipped_zoom`` for a batch (n, h, h): crop the centre, zoom it back up
    (bilinear, SciPy) and trim to h x h."""
    from scipy.ndimage import zoom as scizoom

    h = layers.shape[1]
    ch = int(np.ceil(h / zoom))
    top = (h - ch) // 2
    zoomed = scizoom(layers[:, top:top + ch, top:top + ch], (1, zoom, zoom), order=1)
    trim = (zoomed.shape[1] - h) // 2
    return zoomed[:, trim:trim + h, trim:trim + h]


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's motion blur as imagecorruptions re-implements it (``_motion_blur``), for a
    batch (n, h, w, c) of floats with one angle (degrees) per image; returns float64.

    Output pixel (y, x) is the sum over steps i of kernel[i] * image[y - dy_i, x - dx_i] (edges
    replicated), with kernel a one-sided Gaussian of ``2 * radius + 1`` taps and (dy_i, dx_i)
    the rounded points of a line at the image's angle, added in the reference's order."""
    n, h, w, channels = x.shape
    width = 2 * radius + 1
    steps = np.arange(width)
    kernel = np.exp(-steps ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64))
    point_y, point_x = width * np.sin(radians), width * np.cos(radians)
    hypot = np.hypot(point_y, point_x)
    dy = -np.ceil(steps[None, :] * point_y[:, None] / hypot[:, None] - 0.5).astype(np.int64)
    dx = -np.ceil(steps[None, :] * point_x[:, None] / hypot[:, None] - 0.5).astype(np.int64)
    # imagecorruptions stops adding shifts once one leaves the image (never for 32 px here)
    weights = kernel * np.cumprod((np.abs(dy) < h) & (np.abs(dx) < w), axis=1)
    pad = width - 1
    hp, wp = h + 2 * pad, w + 2 * pad
    grid = (np.arange(h)[:, None] * wp + np.arange(w)[None, :])[None]  # (1, h, w)
    out = np.zeros(x.shape)
    for start in range(0, n, 64):  # small blocks stay in the CPU cache: ~3x faster
        block = slice(start, start + 64)
        m = len(x[block])
        padded = np.pad(x[block], ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        flat = padded.reshape(m * hp * wp, channels)
        base = (np.arange(m) * hp * wp)[:, None, None]
        for i in range(width):
            offset = ((pad - dy[block, i]) * wp + (pad - dx[block, i]))[:, None, None]
            shifted = np.take(flat, base + offset + grid, axis=0)  # (m, h, w, channels)
            out[block] += weights[block, i][:, None, None, None] * shifted
    return out


# ---------------------------------------------------------------------------------------------
# The corruptions: (uint8 (n, 32, 32, 3), CIFAR-10-C parameters, SeedSequence) -> uint8


def _gaussian_noise(x, c, seeds):
    (rng,) = _rngs(seeds, 1)
    x = x / 255.0
    return _to_uint8(np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255)


def _brightness(x, c, seeds):
    # make_cifar_c.py adds c to the HSV value (skimage rgb2hsv -> hsv2rgb). With hue and
    # saturation fixed, that scales R, G and B by V'/V (a black pixel becomes grey V'): the
    # same in closed form, 7x faster, equal up to float rounding (a few % of the values end
    # one level higher, where the round trip lands just below an integer).
    x = x / 255.0
    value = x.max(axis=-1, keepdims=True)
    raised = np.minimum(value + c, 1.0)
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    out = np.where(value > 0, x * scale, raised)
    return _to_uint8(np.clip(out, 0, 1) * 255)


def _contrast(x, c, seeds):
    x = x / 255.0
    means = np.mean(x, axis=(1, 2), keepdims=True)
    return _to_uint8(np.clip((x - means) * c + means, 0, 1) * 255)


def _jpeg_compression(x, c, seeds):
    # make_cifar_c.py saves with Pillow (quality c, 4:2:0); OpenCV's libjpeg-turbo encoder and
    # decoder give the same bytes (checked in the tests) at a sixth of the time.
    import cv2

    out = np.empty_like(x)
    for i, image in enumerate(x):
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, c])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        out[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return out


def _pixelate(x, c, seeds):
    from PIL import Image

    side = int(32 * c)
    out = np.empty_like(x)
    for i, image in enumerate(x):
        small = Image.fromarray(image).resize((side, side), Image.Resampling.BOX)
        out[i] = np.asarray(small.resize((32, 32), Image.Resampling.BOX))
    return out


def _defocus_blur(x, c, seeds):
    import cv2

    kernel = _disk(*c).astype(np.float64)
    x = x / 255.0
    out = np.empty_like(x)
    for i, image in enumerate(x):  # cv2's default border is reflect-101, as make_cifar_c.py
        out[i] = cv2.filter2D(image, -1, kernel)
    return _to_uint8(np.clip(out, 0, 1) * 255)


def _motion_blur_corruption(x, c, seeds):
    radius, sigma = c
    (angle_rng,) = _rngs(seeds, 1)
    angles = angle_rng.uniform(-45, 45, size=len(x))
    blurred = _motion_blur(x.astype(np.float64), radius, sigma, angles)
    return np.clip(np.round(blurred), 0, 255).astype(np.uint8)  # ImageMagick rounds to 8 bits


def _snow(x, c, seeds):
    import cv2

    loc, scale, zoom, threshold, radius, sigma, blend = c
    layer_rng, angle_rng = _rngs(seeds, 2)
    n = len(x)
    layer = layer_rng.normal(size=(n, 32, 32), loc=loc, scale=scale)
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0  # through an 8-bit PNG
    angles = angle_rng.uniform(-135, -45, size=n)
    layer = _motion_blur(layer[..., None], radius, sigma, angles)
    layer = np.round(layer * 255) / 255.0  # ImageMagick's 8-bit output

    x = x.astype(np.float32) / 255.0
    grey = cv2.cvtColor(x.reshape(n * 32, 32, 3), cv2.COLOR_RGB2GRAY).reshape(n, 32, 32, 1)
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return _to_uint8(np.clip(x + layer + layer[:, ::-1, ::-1], 0, 1) * 255)


def _frost(x, c, seeds):
    textures = _frost_textures()
    which_rng, where_rng = _rngs(seeds, 2)
    n = len(x)
    which = which_rng.integers(0, len(textures), size=n)
    where = where_rng.random(size=(n, 2))
    crops = np.empty_like(x)
    for t, texture in enumerate(textures):
        chosen = np.flatnonzero(which == t)
        if chosen.size == 0:
            continue
        # a start drawn uniformly from [0, side - 32), as np.random.randint(0, side - 32)
        starts = np.floor(where[chosen] * (np.array(texture.shape[:2]) - 32)).astype(np.int64)
        windows = sliding_window_view(texture, (32, 32), axis=(0, 1))  # (H', W', 3, 32, 32)
        crops[chosen] = np.moveaxis(windows[starts[:, 0], starts[:, 1]], 1, -1)
    return _to_uint8(c[0] * x.astype(np.float64) + c[1] * crops)


def _fog(x, c, seeds):
    strength, decay = c
    (rng,) = _rngs(seeds, 1)
    fractal = _plasma_fractal(rng.uniform(-1, 1, size=(len(x), PLASMA_DRAWS)), decay)
    x = x / 255.0
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * fractal[..., None]
    return _to_uint8(np.clip(x * max_val / (max_val + strength), 0, 1) * 255)


_FUNCTIONS: dict[str, Callable] = {
    "snow": _snow, "frost": _frost, "fog": _fog,
    "motion_blur": _motion_blur_corruption, "defocus_blur": _defocus_blur,
    "gaussian_noise": _gaussian_noise,
    "brightness": _brightness, "contrast": _contrast,
    "jpeg_compression": _jpeg_compression, "pixelate": _pixelate,
}
assert set(_FUNCTIONS) == set(CORRUPTIONS) == set(PARAMETERS)


def _apply(images: np.ndarray, corruption: str, severity: int, entropy: list[int]) -> np.ndarray:
    """Corrupt in chunks of ``CHUNK`` images; chunk k draws from SeedSequence(entropy + [k])."""
    function, params = _FUNCTIONS[corruption], PARAMETERS[corruption][severity - 1]
    out = np.empty_like(images)
    for k, start in enumerate(range(0, len(images), CHUNK)):
        chunk = images[start:start + CHUNK]
        out[start:start + CHUNK] = function(chunk, params, np.random.SeedSequence(entropy + [k]))
    return out


# ---------------------------------------------------------------------------------------------
# Public API


def corrupt(images: np.ndarray, corruption: str, severity: int, seed: int = 0) -> np.ndarray:
    """A corrupted copy of a batch of images.

    Args:
        images: uint8 array (n, 32, 32, 3), RGB pixels 0-255 (n may be 0). Not modified.
        corruption: one of ``CORRUPTIONS``.
        severity: one of ``SEVERITIES`` (1 mildest .. 5 strongest).
        seed: non-negative int; every random draw is seeded by (seed, corruption, severity)
            and the image's position, so the same arguments give the same bytes in any process.

    Returns:
        A new uint8 array of the same shape.

    Raises:
        TypeError: ``images`` is not a numpy array, or its dtype is not uint8.
        ValueError: wrong shape, unknown corruption or severity (the message lists the valid
            choices), or a negative or non-integer seed.
    """
    _check_images(images)
    _check_choice(corruption, severity)
    seed = _check_seed(seed)
    return _apply(images, corruption, int(severity), [seed, _key(corruption), int(severity)])


def _digest(images: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(images).data, digest_size=16).hexdigest()


CACHE_BYTES = 2 * 1024 ** 3  # at most this much of shifted sets is kept (least recently used go)
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(digest: str, images: np.ndarray, corruption: str, severity: int,
            seed: int) -> np.ndarray:
    key = (digest, images.shape, corruption, int(severity), seed)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    shifted = corrupt(images, corruption, severity, seed)
    shifted.flags.writeable = False
    with _cache_lock:
        _cache[key] = shifted
        while len(_cache) > 1 and sum(a.nbytes for a in _cache.values()) > CACHE_BYTES:
            _cache.popitem(last=False)
    return shifted


def shifted_test_set(images: np.ndarray, corruption: str, severity: int,
                     seed: int = 0) -> np.ndarray:
    """``corrupt(images, corruption, severity, seed)``, computed once per process.

    Cached in memory (never on disk) under a hash of the images' bytes and the arguments, up to
    ``CACHE_BYTES`` in all (least recently used sets are dropped first). The returned array is
    read-only because it is shared: ``.copy()`` it to change it. Arguments and errors as
    ``corrupt``.
    """
    _check_images(images)
    _check_choice(corruption, severity)
    seed = _check_seed(seed)
    return _cached(_digest(images), images, corruption, severity, seed)


def clear_cache() -> None:
    """Forget every cached shifted set."""
    with _cache_lock:
        _cache.clear()


SUBSET_SEED = 20190101  # fixes which test images the scoring subset holds, for every run


def stratified_subset(labels: np.ndarray, size: int | None) -> np.ndarray:
    """Sorted indices of a fixed stratified subset of ``size`` examples (all when ``size`` is
    None or not smaller than ``len(labels)``): each class keeps its share of the set (largest
    remainders), and which examples is fixed by ``SUBSET_SEED``, the same for every call."""
    labels = np.asarray(labels)
    n = len(labels)
    if size is None or size >= n:
        return np.arange(n)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"subset must be a positive int or None, got {size!r}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    quotas = np.floor(exact).astype(int)
    extra = np.argsort(-(exact - quotas), kind="stable")[:size - quotas.sum()]
    quotas[extra] += 1
    order = np.random.default_rng(SUBSET_SEED).permutation(n)
    picks = [order[labels[order] == cls][:quota] for cls, quota in zip(classes, quotas)]
    return np.sort(np.concatenate(picks))


def score_shifted(predict_proba: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                  labels: np.ndarray, corruptions: Iterable[str] = CORRUPTIONS,
                  severities: Iterable[int] = SEVERITIES, subset: int | None = 2000,
                  seed: int = 0) -> dict:
    """Accuracy and macro-F1 of a classifier on every shifted test set.

    Args:
        predict_proba: maps uint8 images (m, 32, 32, 3) to class probabilities (m, classes)
            (any scores whose arg-max is the predicted class); called once, on all the
            sets concatenated (len(sets) * subset images).
        images: uint8 (n, 32, 32, 3), the clean test images.
        labels: int (n,), their classes.
        corruptions, severities: which sets (default: all 50).
        subset: score a fixed stratified subset of this many images (``stratified_subset``:
            the same images for every call and seed), or all of them when None.
        seed: corruption seed (``corrupt``).

    Returns:
        ``{"per_corruption": {corruption: {str(severity): {"accuracy", "macro_f1",
        "confusion_matrix"}}},`` (the matrix as nested lists, rows: true class, columns:
        predicted),
        ``"corruption_accuracy"``: mean accuracy over all sets, ``"corruption_macro_f1"``: mean
        macro-F1, ``"images_per_set"``: int, ``"seconds": {"generate": s, "predict": s}``;
        fractions in [0, 1], seconds of wall time (generation is ~0 for cached sets).

    Raises:
        TypeError / ValueError: as ``corrupt``; labels not (n,); an empty list of corruptions
            or severities; predictions of the wrong shape.
    """
    from helpers.evaluate import classification_metrics

    _check_images(images)
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
    corruptions, severities = tuple(corruptions), tuple(severities)
    if not corruptions or not severities:
        raise ValueError("corruptions and severities must not be empty")
    for corruption in corruptions:
        for severity in severities:
            _check_choice(corruption, severity)
    seed = _check_seed(seed)

    chosen = stratified_subset(labels, subset)
    images, labels = np.ascontiguousarray(images[chosen]), labels[chosen]
    digest = _digest(images)
    sets = [(corruption, severity) for corruption in corruptions for severity in severities]
    start = time.perf_counter()
    shifted = np.concatenate([_cached(digest, images, corruption, severity, seed)
                              for corruption, severity in sets])
    middle = time.perf_counter()
    probs = np.asarray(predict_proba(shifted))  # one call: per-call overhead paid once
    generate, predict = middle - start, time.perf_counter() - middle
    if probs.ndim != 2 or len(probs) != len(shifted):
        raise ValueError(f"predict_proba must return ({len(shifted)}, classes) scores, "
                         f"got shape {probs.shape}")
    per_corruption: dict[str, dict[str, dict[str, float]]] = {c: {} for c in corruptions}
    for n, (corruption, severity) in enumerate(sets):
        metrics = classification_metrics(labels, probs[n * len(images):(n + 1) * len(images)])
        per_corruption[corruption][str(severity)] = {
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "confusion_matrix": metrics["confusion_matrix"]}
    cells = [cell for by_severity in per_corruption.values() for cell in by_severity.values()]
    return {
        "per_corruption": per_corruption,
        "corruption_accuracy": float(np.mean([cell["accuracy"] for cell in cells])),
        "corruption_macro_f1": float(np.mean([cell["macro_f1"] for cell in cells])),
        "images_per_set": int(len(images)),
        "seconds": {"generate": generate, "predict": predict},
    }


@dataclasses.dataclass
class MimicAugmentation:
    """A batch transform that corrupts each image, with probability ``probability``, by a
    corruption drawn uniformly from ``family`` at a severity drawn uniformly from 1-5.

    Call it on uint8 images (n, 32, 32, 3); it returns a new uint8 array of the same shape.
    ``augment(images)`` draws from the transform's own generator (seeded by ``seed``; thread
    safe, but the order of concurrent calls decides who gets which draws);
    ``augment(images, seed=k)`` is a pure function of (family, probability, k, images), for a
    pipeline whose every batch must be reproducible (e.g. k from the run's seed, the epoch and
    the step).

    For tf.data wrap it with ``tf.numpy_function`` (it is numpy in, numpy out)::

        def augment_batch(images):           # images: a tf.uint8 batch
            out = tf.numpy_function(augment, [images], tf.uint8)
            out.set_shape(images.shape)
            return out
        dataset = dataset.map(lambda x, y: (augment_batch(x), y))
    """

    family: str = "weather"
    seed: int | None = None
    probability: float = 0.5

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose one of {', '.join(FAMILIES)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")
        if self.seed is not None:
            _check_seed(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray, seed: int | None = None) -> np.ndarray:
        _check_images(images)
        if seed is None:
            with self._lock:
                seed = int(self._rng.integers(2 ** 63))
        seed = _check_seed(seed)
        names = FAMILIES[self.family]
        draws = np.random.default_rng([seed, _key("mimic"), _key(self.family)])
        n = len(images)
        corrupted = draws.random(n) < self.probability
        which = draws.integers(0, len(names), size=n)
        severity = draws.integers(1, len(SEVERITIES) + 1, size=n)
        out = images.copy()
        for j, name in enumerate(names):
            for s in SEVERITIES:
                chosen = np.flatnonzero(corrupted & (which == j) & (severity == s))
                if chosen.size:
                    out[chosen] = _apply(images[chosen], name, s,
                                         [seed, _key("mimic"), _key(name), s])
        return out


def mimic_augmentation(family: str = "weather", seed: int | None = None,
                       probability: float = 0.5) -> MimicAugmentation:
    """A training augmentation that mimics one corruption family (``MimicAugmentation``).

    Args:
        family: a key of ``FAMILIES`` ("weather": snow, frost or fog).
        seed: seeds the transform's generator (None: fresh entropy each process).
        probability: the chance that an image is corrupted at all (1.0: every image).

    Returns:
        A callable ``augment(images, seed=None)``: uint8 (n, 32, 32, 3) -> uint8, same shape.

    Raises:
        ValueError: unknown family, probability outside [0, 1], negative seed.
    """
    return MimicAugmentation(family=family, seed=seed, probability=probability)


__all__ = [
    "CORRUPTIONS", "FAMILIES", "PARAMETERS", "SEVERITIES", "MimicAugmentation", "clear_cache",
    "corrupt", "mimic_augmentation", "score_shifted", "shifted_test_set", "stratified_subset",
    "tfds_name",
]


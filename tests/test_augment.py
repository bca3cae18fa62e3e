"""Pipeline augmentations and the training input pipeline that applies them."""

import numpy as np
import pytest

from helpers import augment
from helpers.train import batch_seed, training_dataset


def _images(n=6):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_crop_flip_cuts_a_window_of_the_padded_image_and_may_mirror_it():
    images = _images(40)
    out = augment.crop_flip(images, seed=5)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.array_equal(out, augment.crop_flip(images, seed=5))
    assert not np.array_equal(out, augment.crop_flip(images, seed=6))
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    flips = 0
    for image, result in zip(padded, out):
        windows = [image[y:y + 32, x:x + 32] for y in range(9) for x in range(9)]
        plain = any(np.array_equal(result, w) for w in windows)
        mirrored = any(np.array_equal(result[:, ::-1], w) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 5 < flips < 35  # about half are mirrored


def test_crop_and_flip_alone_are_the_two_halves_of_crop_flip():
    images = _images(40)
    both = augment.crop_flip(images, seed=5)
    crop = augment.pipeline_augmentation("crop")(images, 5)
    flip = augment.pipeline_augmentation("flip")(images, 5)
    mirrored = [not np.array_equal(f, image) for f, image in zip(flip, images)]
    for f, image, m in zip(flip, images, mirrored):  # flip alone: mirrored or not, never moved
        assert np.array_equal(f, image[:, ::-1] if m else image)
    assert 5 < sum(mirrored) < 35
    for c, b, m in zip(crop, both, mirrored):  # the same draws as crop+flip, split in two
        assert np.array_equal(b, c[:, ::-1] if m else c)


def test_unknown_pipeline_augmentation_names_the_choices():
    with pytest.raises(ValueError, match="crop_flip, weather"):
        augment.pipeline_augmentation("snowflakes")


def test_weather_augmentation_is_deterministic_and_changes_about_half():
    images = _images(200)
    weather = augment.pipeline_augmentation("weather")
    out = weather(images, 11)
    assert np.array_equal(out, weather(images, 11))
    changed = np.any(out != images, axis=(1, 2, 3)).mean()
    assert 0.35 < changed < 0.65


def test_training_batches_are_augmented_with_seeds_that_survive_a_resume():
    images, labels = _images(10), np.arange(10) % 3
    weights = np.linspace(0, 1, 10).astype(np.float32)
    seen = []

    def transform(batch, seed):
        seen.append(seed)
        return augment.crop_flip(batch, seed)

    whole, steps = training_dataset(images, labels, 4, seed=2, first_epoch=0, epochs=2,
                                    transform=transform, sample_weights=weights)
    assert steps == 3
    batches = list(whole.as_numpy_iterator())
    resumed, _ = training_dataset(images, labels, 4, seed=2, first_epoch=1, epochs=2,
                                  transform=transform, sample_weights=weights)
    tail = list(resumed.as_numpy_iterator())
    for a, b in zip(batches[3:], tail, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert seen[:3] == [batch_seed(2, 0, s) for s in (0, 4, 8)]
    x, y, w = batches[0]  # (images, labels, weights): Keras weights the loss
    order = np.random.default_rng([2, 0]).permutation(10)[:4]
    assert np.array_equal(y, labels[order]) and np.allclose(w, weights[order])
    with pytest.raises(ValueError, match="sample_weights"):
        training_dataset(images, labels, 4, 2, 0, 1, sample_weights=weights[:3])

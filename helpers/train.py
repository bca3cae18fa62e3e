"""The article's recipe: tf.data input pipeline, Adam 1e-4, early stopping on val_loss,
learning-rate decay on plateau, batch 180, up to 100 epochs (numbers from the profile).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers.profiles import Profile

# Keras warns that fit()'s default shuffle=True is ignored for a tf.data.Dataset; our
# pipeline shuffles itself (make_dataset), so the warning is noise on every page.
warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")


def strategy() -> tf.distribute.Strategy:
    """MirroredStrategy when several GPUs are visible, else the default strategy."""
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def hardware() -> str:
    import platform
    import os

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
               for g in gpus]
    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.processor() or 'cpu'})"
    return f"{cpu}; GPUs: {', '.join(details) if details else 'none'}"


def make_dataset(images: np.ndarray, labels: np.ndarray | None, batch_size: int,
                 shuffle_seed: int | None = None) -> tf.data.Dataset:
    """cache -> shuffle (training only) -> batch -> prefetch.

    Images stay uint8 until they reach the model, which casts and scales them itself; so the
    pipeline needs no map stage. tf.data's autotuner is off and the prefetch buffer fixed:
    once, under heavy CPU load, deleting an autotuned iterator hung forever waiting for the
    autotuner's thread, and a fixed two-batch buffer keeps these 2-core CPUs just as busy.
    """
    tensors = images if labels is None else (images, labels)
    ds = tf.data.Dataset.from_tensor_slices(tensors).cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.batch(batch_size).prefetch(2).with_options(options)


def callbacks(profile: Profile, backup_dir: Path | None = None) -> list[keras.callbacks.Callback]:
    result = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=profile.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=profile.lr_plateau_patience,
                                          factor=profile.lr_plateau_factor, min_lr=1e-7),
    ]
    if backup_dir is not None:  # resume an interrupted run from its last finished epoch
        result.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    return result


# Tracing MobileNetV2's training step costs ~30 s on these CPUs, far more than a smoke or quick
# run trains. So each process keeps one compiled model per architecture and, for every new
# experiment, copies a freshly built (seeded) model's variables into it and zeroes the
# optimizer: the same starting point as a new model, without tracing again.
_compiled_models: dict[tuple, keras.Model] = {}


def _fresh_start(model_factory, architecture: tuple | None, learning_rate: float) -> keras.Model:
    fresh = model_factory()
    if architecture is None:
        return fresh
    cached = _compiled_models.setdefault(architecture, fresh)
    if cached is not fresh:
        for target, source in zip(cached.variables, fresh.variables, strict=True):
            target.assign(source)
        for variable in cached.optimizer.variables:
            variable.assign(tf.zeros_like(variable))
        cached.optimizer.learning_rate.assign(learning_rate)
    return cached


def fit(model_factory, train_images: np.ndarray, train_labels: np.ndarray,
        val_images: np.ndarray, val_labels: np.ndarray, profile: Profile, seed: int,
        backup_dir: Path | None = None, verbose: int = 2,
        architecture: tuple | None = None) -> tuple[keras.Model, dict]:
    """Build the model under the right distribution strategy and train it with the recipe.

    ``architecture`` (hashable, e.g. ``(input_size, augment)``) lets runs of the same
    architecture in one process share a compiled model (see ``_fresh_start``).

    Returns the trained model (best val_loss weights) and its history (lists per epoch,
    plus ``seconds`` of wall time).
    """
    keras.utils.set_random_seed(seed)
    with strategy().scope():
        model = _fresh_start(model_factory, architecture, profile.learning_rate)
    train_ds = make_dataset(train_images, train_labels, profile.batch_size, shuffle_seed=seed)
    val_ds = make_dataset(val_images, val_labels, profile.batch_size)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=profile.max_epochs,
                        callbacks=callbacks(profile, backup_dir), verbose=verbose)
    record = {k: [float(v) for v in values] for k, values in history.history.items()}
    record["seconds"] = time.perf_counter() - start
    return model, record


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    return model.predict(make_dataset(images, None, batch_size), verbose=0)

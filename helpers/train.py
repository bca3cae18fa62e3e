"""The article's recipe: tf.data input pipeline, Adam 1e-4, early stopping on val_loss,
learning-rate decay on plateau, batch 180, up to 100 epochs (numbers from the profile).
"""

from __future__ import annotations

import datetime
import json
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
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=profile.early_stopping_patience, restore_best_weights=True)
    lr_plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", patience=profile.lr_plateau_patience,
        factor=profile.lr_plateau_factor, min_lr=1e-7)
    result = [early_stopping, lr_plateau]
    if backup_dir is not None:  # resume an interrupted run from its last finished epoch
        result.append(TrainingJournal(backup_dir, early_stopping, lr_plateau))
        result.append(keras.callbacks.BackupAndRestore(str(backup_dir)))
    return result


class TrainingJournal(keras.callbacks.Callback):
    """Makes an interrupted run resume where it stopped, not just its weights.

    ``BackupAndRestore`` restores the weights, the optimizer and the epoch number only. This
    callback keeps the rest in ``backup_dir/journal.json`` after every epoch: the history so
    far, the training seconds so far, the early-stopping and LR-plateau counters, and one
    entry per sitting (first epoch, hardware, date), so that the record of a resumed run says
    so. The best weights so far go to ``best_weights.npz``, for ``restore_best_weights``.
    List it after EarlyStopping and ReduceLROnPlateau and before BackupAndRestore.
    """

    def __init__(self, backup_dir: Path, early_stopping: keras.callbacks.EarlyStopping,
                 lr_plateau: keras.callbacks.ReduceLROnPlateau):
        super().__init__()
        self.path = Path(backup_dir) / "journal.json"
        self.best_path = Path(backup_dir) / "best_weights.npz"
        self.early_stopping = early_stopping
        self.lr_plateau = lr_plateau
        self.state = {"history": {}, "seconds": 0.0, "sittings": [],
                      "early_stopping": None, "lr_plateau": None}

    def on_train_begin(self, logs=None):
        # Keras calls callbacks in list order, so BackupAndRestore has not read its files yet
        # (it will load the latest weights right after this): read its epoch count here.
        metadata = self.path.parent / "training_metadata.json"
        done = json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0
        if done and self.path.exists():
            self.state = json.loads(self.path.read_text())
            # a crash between this journal's save and the backup's: drop the epoch not backed up
            self.state["history"] = {k: v[:done] for k, v in self.state["history"].items()}
            es, lr = self.state["early_stopping"], self.state["lr_plateau"]
            self.early_stopping.wait, self.early_stopping.best = es["wait"], es["best"]
            self.early_stopping.best_epoch = es["best_epoch"]
            if self.best_path.exists():
                with np.load(self.best_path) as best:
                    self.early_stopping.best_weights = [best[f"arr_{i}"]
                                                        for i in range(len(best.files))]
            self.lr_plateau.wait, self.lr_plateau.best = lr["wait"], lr["best"]
            self.lr_plateau.cooldown_counter = lr["cooldown_counter"]
        self.state["sittings"].append({
            "first_epoch": done + 1, "hardware": hardware(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.state["seconds"] += time.perf_counter() - self._epoch_start
        for key, value in (logs or {}).items():
            self.state["history"].setdefault(key, []).append(float(value))
        es, lr = self.early_stopping, self.lr_plateau
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if es.best_epoch == epoch:
            with open(self.best_path, "wb") as out:  # np.savez would append ".npz" to a str
                np.savez(out, *es.best_weights)
        self.state["early_stopping"] = {"wait": es.wait, "best": _plain(es.best),
                                        "best_epoch": es.best_epoch}
        self.state["lr_plateau"] = {"wait": lr.wait, "best": _plain(lr.best),
                                    "cooldown_counter": lr.cooldown_counter}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state))
        temporary.replace(self.path)


def _plain(value):
    return None if value is None else float(value)


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
        cached._initial_epoch = None  # set by BackupAndRestore when a run resumed; Keras keeps it
    return cached


def fit(model_factory, train_images: np.ndarray, train_labels: np.ndarray,
        val_images: np.ndarray, val_labels: np.ndarray, profile: Profile, seed: int,
        backup_dir: Path | None = None, verbose: int = 2,
        architecture: tuple | None = None) -> tuple[keras.Model, dict]:
    """Build the model under the right distribution strategy and train it with the recipe.

    ``architecture`` (hashable, e.g. ``(input_size, augment)``) lets runs of the same
    architecture in one process share a compiled model (see ``_fresh_start``).

    Returns the trained model (best val_loss weights) and its history: lists per epoch, plus
    ``seconds`` of training time and, when ``backup_dir`` is given, ``sittings`` (one entry per
    uninterrupted stretch of training, with its hardware: a resumed run says so).
    """
    keras.utils.set_random_seed(seed)
    with strategy().scope():
        model = _fresh_start(model_factory, architecture, profile.learning_rate)
    train_ds = make_dataset(train_images, train_labels, profile.batch_size, shuffle_seed=seed)
    val_ds = make_dataset(val_images, val_labels, profile.batch_size)
    start = time.perf_counter()
    steps = callbacks(profile, backup_dir)
    history = model.fit(train_ds, validation_data=val_ds, epochs=profile.max_epochs,
                        callbacks=steps, verbose=verbose)
    journal = next((c for c in steps if isinstance(c, TrainingJournal)), None)
    if journal is not None:  # the whole run, also the epochs trained before an interruption
        record = {**journal.state["history"], "seconds": journal.state["seconds"],
                  "sittings": journal.state["sittings"]}
    else:
        record = {k: [float(v) for v in values] for k, values in history.history.items()}
        record["seconds"] = time.perf_counter() - start
    return model, record


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    return model.predict(make_dataset(images, None, batch_size), verbose=0)

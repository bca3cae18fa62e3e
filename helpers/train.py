"""The article's recipe: input pipeline, Adam 1e-4, early stopping on val_loss,
learning-rate decay on plateau, batch 180, up to 100 epochs (numbers from the profile), and
the per-epoch checkpoint that lets a run resume exactly where it was interrupted.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
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


def make_dataset(images: np.ndarray, labels: np.ndarray | None, batch_size: int) -> tf.data.Dataset:
    """Evaluation and prediction input: cache -> batch -> prefetch, in the given order.

    Images stay uint8 (shape ``(n, 32, 32, 3)``) until they reach the model, which casts and
    scales them itself; so the pipeline needs no map stage. tf.data's autotuner is off and the
    prefetch buffer fixed: once, under heavy CPU load, deleting an autotuned iterator hung
    forever waiting for the autotuner's thread, and a fixed two-batch buffer keeps these
    2-core CPUs just as busy (``make benchmark`` measures it).
    """
    tensors = images if labels is None else (images, labels)
    ds = tf.data.Dataset.from_tensor_slices(tensors).cache()
    return ds.batch(batch_size).prefetch(2).with_options(_options())


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` (0-based) of a run with ``seed`` visits ``n`` examples.

    A pure function of (seed, epoch): a run resumed at epoch 12 sees exactly the batches an
    uninterrupted run sees from epoch 12 on."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_seed(seed: int, epoch: int, start: int) -> int:
    """The seed of the augmentation of the batch that starts at position ``start`` of epoch
    ``epoch`` (0-based) in a run with ``seed``: a pure function, so resumed runs repeat it."""
    return int(np.random.SeedSequence([seed, epoch, start]).generate_state(1)[0])


def training_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                     first_epoch: int, epochs: int, transform=None,
                     sample_weights: np.ndarray | None = None) -> tuple[tf.data.Dataset, int]:
    """Shuffled training batches for epochs ``first_epoch`` .. ``epochs - 1``, each epoch in
    ``epoch_order``; returns the dataset and the steps per epoch (the last batch of an epoch
    may be smaller; no batch mixes two epochs). Pass the steps to ``fit(steps_per_epoch=)``.

    ``transform(images, seed) -> images`` (optional) augments each uint8 batch with the seed
    ``batch_seed(seed, epoch, start)``; ``sample_weights`` (optional, ``(n,)`` floats) makes
    every element ``(images, labels, weights)``, which Keras uses to weight the loss."""
    n = len(labels)
    steps = -(-n // batch_size)
    if sample_weights is not None:
        sample_weights = np.asarray(sample_weights, dtype=np.float32)
        if sample_weights.shape != (n,):
            raise ValueError(f"sample_weights must have shape ({n},), got {sample_weights.shape}")

    def batches():
        for epoch in range(first_epoch, epochs):
            order = epoch_order(n, seed, epoch)
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                x = images[rows]
                if transform is not None:
                    x = transform(x, batch_seed(seed, epoch, start))
                if sample_weights is None:
                    yield x, labels[rows]
                else:
                    yield x, labels[rows], sample_weights[rows]

    signature = (tf.TensorSpec((None, *images.shape[1:]), tf.as_dtype(images.dtype)),
                 tf.TensorSpec((None,), tf.as_dtype(labels.dtype)))
    if sample_weights is not None:
        signature += (tf.TensorSpec((None,), tf.float32),)
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return ds.prefetch(2).with_options(_options()), steps


def callbacks(profile: Profile) -> list[keras.callbacks.Callback]:
    """Early stopping on val_loss (best weights restored) and LR decay on plateau."""
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=profile.early_stopping_patience, restore_best_weights=True)
    lr_plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", patience=profile.lr_plateau_patience,
        factor=profile.lr_plateau_factor, min_lr=1e-7)
    return [early_stopping, lr_plateau]


CHECKPOINT_FILE = "checkpoint.npz"


class CheckpointError(RuntimeError):
    """A partial run's checkpoint cannot be read (a kill mid-write, a truncated copy)."""


def _save_checkpoint(path: Path, state: dict, model: keras.Model, best_weights) -> None:
    """Everything a resume needs, in ONE file written atomically (temporary file, fsync,
    rename): a kill at any moment leaves either the previous epoch's checkpoint or this one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays |= {f"o{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)}
    arrays |= {f"b{i}": w for i, w in enumerate(best_weights or [])}
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        np.savez(out, **arrays)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _load_checkpoint(path: Path) -> tuple[dict, list, list, list]:
    """(state, weights, optimizer variables, best weights) of a checkpoint; CheckpointError
    when it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = json.loads(npz["state"].tobytes().decode())
            count = lambda prefix: sum(1 for k in npz.files if k.startswith(prefix))  # noqa: E731
            weights = [npz[f"w{i}"] for i in range(count("w"))]
            optimizer = [npz[f"o{i}"] for i in range(count("o"))]
            best = [npz[f"b{i}"] for i in range(count("b"))]
    except Exception as error:  # BadZipFile, OSError, KeyError, ValueError, JSONDecodeError
        raise CheckpointError(f"{type(error).__name__}: {error}") from error
    return state, weights, optimizer, best


class _Timer(keras.callbacks.Callback):
    """Seconds spent in training steps and in validation, per epoch and in total."""

    def on_train_begin(self, logs=None):
        self.train = self.validation = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._validating = time.perf_counter(), 0.0

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self._validating += time.perf_counter() - self._test_start

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_validation = self._validating
        self.epoch_train = time.perf_counter() - self._start - self._validating
        self.train += self.epoch_train
        self.validation += self.epoch_validation


class TrainingJournal(_Timer):
    """Makes an interrupted run resume exactly where it stopped.

    After every epoch it writes one checkpoint (``backup_dir/checkpoint.npz``, atomically):
    the weights, the optimizer's variables (Adam's moments and step count), the learning
    rate, the best weights so far, the early-stopping and LR-plateau counters, the history so
    far, the seconds spent in training steps and in validation, and one entry per sitting
    (first epoch, hardware, date). The data order is a function of (seed, epoch) (see
    ``epoch_order``), so a resumed run continues with the same batches. List it after
    EarlyStopping and ReduceLROnPlateau.
    """

    def __init__(self, backup_dir: Path, early_stopping: keras.callbacks.EarlyStopping,
                 lr_plateau: keras.callbacks.ReduceLROnPlateau, restored: dict | None = None,
                 restored_best: list | None = None):
        super().__init__()
        self.path = Path(backup_dir) / CHECKPOINT_FILE
        self.early_stopping = early_stopping
        self.lr_plateau = lr_plateau
        self.state = restored or {"history": {}, "seconds": 0.0, "validation_seconds": 0.0,
                                  "epochs_done": 0, "finished": False, "sittings": [],
                                  "early_stopping": None, "lr_plateau": None}
        self.restored_best = restored_best

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # runs after EarlyStopping's and ReduceLROnPlateau's on_train_begin, which reset them
        es, lr = self.state["early_stopping"], self.state["lr_plateau"]
        if es is not None:
            self.early_stopping.wait, self.early_stopping.best = es["wait"], es["best"]
            self.early_stopping.best_epoch = es["best_epoch"]
            self.early_stopping.best_weights = self.restored_best or None
        if lr is not None:
            self.lr_plateau.wait, self.lr_plateau.best = lr["wait"], lr["best"]
            self.lr_plateau.cooldown_counter = lr["cooldown_counter"]
        self.state["sittings"].append({
            "first_epoch": self.state["epochs_done"] + 1, "hardware": hardware(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)  # this epoch's seconds; the state adds up sittings
        self.state["seconds"] += self.epoch_train
        self.state["validation_seconds"] += self.epoch_validation
        for key, value in (logs or {}).items():  # Keras logs the epoch's learning rate too
            self.state["history"].setdefault(key, []).append(float(value))
        self.state["epochs_done"] = epoch + 1
        self.save()

    def save(self, finished: bool = False) -> None:
        es, lr = self.early_stopping, self.lr_plateau
        self.state["finished"] = finished
        self.state["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.state["early_stopping"] = {"wait": es.wait, "best": _plain(es.best),
                                        "best_epoch": es.best_epoch}
        self.state["lr_plateau"] = {"wait": lr.wait, "best": _plain(lr.best),
                                    "cooldown_counter": lr.cooldown_counter}
        _save_checkpoint(self.path, self.state, self.model, es.best_weights)


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
    return cached


def _restore(backup_dir: Path | None, model: keras.Model, run: str) -> tuple[dict | None, list | None]:
    """Load a partial run's checkpoint into ``model``; (state, best weights), or (None, None)
    for a fresh start. A checkpoint that cannot be read, or that does not fit the model, is
    discarded with one line naming the run and what is lost: never a crash loop."""
    if backup_dir is None:
        return None, None
    path = Path(backup_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None, None
    try:
        state, weights, optimizer, best = _load_checkpoint(path)
        model.set_weights(weights)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if len(optimizer) != len(model.optimizer.variables):
            raise CheckpointError("its optimizer state does not fit this model")
        for variable, value in zip(model.optimizer.variables, optimizer):
            variable.assign(value)
        model.optimizer.learning_rate.assign(state["learning_rate"])
    except (CheckpointError, ValueError, KeyError) as error:
        print(f"Discarding the interrupted state of {run} ({path}: {error}); "
              "it trains again from epoch 1.", flush=True)
        shutil.rmtree(backup_dir, ignore_errors=True)
        return None, None
    return state, best


def fit(model_factory, train_images: np.ndarray, train_labels: np.ndarray,
        val_images: np.ndarray, val_labels: np.ndarray, profile: Profile, seed: int,
        backup_dir: Path | None = None, verbose: int = 2,
        architecture: tuple | None = None, transform=None,
        sample_weights: np.ndarray | None = None) -> tuple[keras.Model, dict]:
    """Build the model under the right distribution strategy and train it with the recipe.

    ``train_images``: ``(n, 32, 32, 3)`` uint8; ``train_labels``: ``(n,)`` int class ids.
    ``architecture`` (hashable, e.g. ``(input_size, augment, recipe)``) lets runs of the
    same architecture in one process share a compiled model (see ``_fresh_start``).
    ``transform`` and ``sample_weights``: pipeline augmentation and per-example loss weights
    (``training_dataset``).
    ``backup_dir``: where the per-epoch checkpoint lives; a run interrupted at any moment
    resumes from its last finished epoch with the same state and data order, and a run
    whose training finished but whose caller crashed later does not train again.

    Returns the trained model (best val_loss weights) and its history: lists per epoch, plus
    ``seconds`` spent in training steps, ``validation_seconds`` spent validating and, when
    ``backup_dir`` is given, ``sittings`` (one entry per uninterrupted stretch of training,
    with its hardware: a resumed run says so).
    """
    keras.utils.set_random_seed(seed)
    with strategy().scope():
        model = _fresh_start(model_factory, architecture, profile.learning_rate)
    run = Path(backup_dir).name if backup_dir is not None else "this run"
    state, best = _restore(backup_dir, model, run)
    steps = callbacks(profile)
    journal = None
    if backup_dir is not None:
        journal = TrainingJournal(backup_dir, steps[0], steps[1], restored=state,
                                  restored_best=best)
    timer = journal or _Timer()
    steps.insert(2, timer)  # right after the callbacks whose counters the journal saves
    first_epoch = state["epochs_done"] if state else 0
    if not (state and state.get("finished")):
        train_ds, steps_per_epoch = training_dataset(train_images, train_labels,
                                                     profile.batch_size, seed, first_epoch,
                                                     profile.max_epochs, transform=transform,
                                                     sample_weights=sample_weights)
        val_ds = make_dataset(val_images, val_labels, profile.batch_size)
        history = model.fit(train_ds, validation_data=val_ds, epochs=profile.max_epochs,
                            initial_epoch=first_epoch, steps_per_epoch=steps_per_epoch,
                            shuffle=False, callbacks=steps, verbose=verbose)
        if journal is not None:
            journal.save(finished=True)  # best weights restored: predictions need not retrain
    if journal is not None:  # the whole run, also the epochs trained before an interruption
        return model, {**journal.state["history"], "seconds": journal.state["seconds"],
                       "validation_seconds": journal.state["validation_seconds"],
                       "sittings": journal.state["sittings"]}
    record = {k: [float(v) for v in values] for k, values in history.history.items()}
    record["seconds"], record["validation_seconds"] = timer.train, timer.validation
    return model, record


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    return model.predict(make_dataset(images, None, batch_size), verbose=0)

"""Resuming an interrupted run: the record must describe the whole run, not its last sitting."""

import dataclasses

import keras
import numpy as np
import pytest

from helpers import train
from helpers.profiles import get_profile


class Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epochs):
        super().__init__()
        self.after_epochs = after_epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after_epochs:
            raise KeyboardInterrupt("simulated crash")


def tiny_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(300, 8)).astype("float32")
    labels = rng.integers(0, 10, 300)
    # patience large enough that no run stops early: the epoch counts below are exact
    profile = dataclasses.replace(get_profile("smoke"), max_epochs=6, batch_size=50,
                                  learning_rate=1e-4, early_stopping_patience=50,
                                  lr_plateau_patience=50)
    return images[:200], labels[:200], images[200:], labels[200:], profile


def test_interrupted_run_resumes_with_its_whole_history(problem, tmp_path, monkeypatch):
    x, y, vx, vy, profile = problem
    backup = tmp_path / "partial"
    plain_callbacks = train.callbacks
    monkeypatch.setattr(train, "callbacks",
                        lambda *a, **k: plain_callbacks(*a, **k) + [Interrupt(after_epochs=4)])
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup, verbose=0)
    first_sitting = train.json.loads((backup / "journal.json").read_text())
    assert len(first_sitting["history"]["loss"]) == 4
    assert (backup / "best_weights.npz").exists()
    assert first_sitting["early_stopping"]["best"] == min(first_sitting["history"]["val_loss"])

    monkeypatch.setattr(train, "callbacks", plain_callbacks)
    model, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup,
                               verbose=0)
    assert len(history["loss"]) == len(history["val_loss"]) == 6
    assert history["loss"][:4] == first_sitting["history"]["loss"]
    assert [s["first_epoch"] for s in history["sittings"]] == [1, 5]
    assert history["seconds"] > first_sitting["seconds"]


def test_uninterrupted_run_has_one_sitting_and_a_reused_model_starts_at_epoch_one(
        problem, tmp_path):
    x, y, vx, vy, profile = problem
    model, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0,
                               backup_dir=tmp_path / "a", verbose=0, architecture=("tiny",))
    assert len(history["loss"]) == 6 and len(history["sittings"]) == 1
    model._initial_epoch = 3  # what BackupAndRestore leaves behind after resuming a run
    _, again = train.fit(tiny_model, x, y, vx, vy, profile, seed=0,
                         backup_dir=tmp_path / "b", verbose=0, architecture=("tiny",))
    assert len(again["loss"]) == 6
    assert again["loss"] == history["loss"]  # a fresh start, identical to the first run

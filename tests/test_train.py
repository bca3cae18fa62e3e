"""Resuming an interrupted run: the record must describe the whole run, the resumed run must
train exactly as an uninterrupted one, and no broken partial state may block a rerun."""

import dataclasses

import keras
import numpy as np
import pytest

from helpers import train
from helpers.profiles import get_profile


class Interrupt(keras.callbacks.Callback):
    """Raises at the end of epoch ``after_epochs`` (after the checkpoint was written)."""

    def __init__(self, after_epochs):
        super().__init__()
        self.after_epochs = after_epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after_epochs:
            raise KeyboardInterrupt("simulated crash")


def tiny_model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _problem(**changes):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(300, 8)).astype("float32")
    labels = rng.integers(0, 10, 300)
    settings = dict(max_epochs=6, batch_size=50, learning_rate=1e-2,
                    early_stopping_patience=50, lr_plateau_patience=50)
    profile = dataclasses.replace(get_profile("smoke"), **{**settings, **changes})
    return images[:200], labels[:200], images[200:], labels[200:], profile


@pytest.fixture
def problem():
    # patience large enough that no run stops early: the epoch counts below are exact
    return _problem()


def _interrupted(monkeypatch, after_epochs):
    plain = train.callbacks
    monkeypatch.setattr(train, "callbacks",
                        lambda *a, **k: plain(*a, **k) + [Interrupt(after_epochs)])
    return plain


def test_interrupted_run_resumes_with_its_whole_history(problem, tmp_path, monkeypatch):
    x, y, vx, vy, profile = problem
    backup = tmp_path / "partial"
    plain = _interrupted(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup, verbose=0)
    first_sitting, *_ = train._load_checkpoint(backup / train.CHECKPOINT_FILE)
    assert len(first_sitting["history"]["loss"]) == first_sitting["epochs_done"] == 4
    assert first_sitting["early_stopping"]["best"] == min(first_sitting["history"]["val_loss"])

    monkeypatch.setattr(train, "callbacks", plain)
    model, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup,
                               verbose=0)
    assert len(history["loss"]) == len(history["val_loss"]) == 6
    assert history["loss"][:4] == first_sitting["history"]["loss"]
    assert [s["first_epoch"] for s in history["sittings"]] == [1, 5]
    assert history["seconds"] > first_sitting["seconds"]
    assert history["validation_seconds"] > 0


@pytest.mark.parametrize("after_epochs", [2, 3, 5])
def test_a_resumed_run_trains_exactly_like_an_uninterrupted_one(tmp_path, monkeypatch,
                                                                 after_epochs):
    """Same data order, same optimizer state, same early-stopping and plateau counters: an
    interruption anywhere changes nothing, also when the LR is cut and training stops early."""
    x, y, vx, vy, profile = _problem(max_epochs=12, early_stopping_patience=3,
                                     lr_plateau_patience=1, learning_rate=0.5)
    _, straight = train.fit(tiny_model, x, y, vx, vy, profile, seed=3,
                            backup_dir=tmp_path / "straight", verbose=0)
    plain = _interrupted(monkeypatch, after_epochs)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_model, x, y, vx, vy, profile, seed=3, backup_dir=tmp_path / "cut",
                  verbose=0)
    monkeypatch.setattr(train, "callbacks", plain)
    _, resumed = train.fit(tiny_model, x, y, vx, vy, profile, seed=3,
                           backup_dir=tmp_path / "cut", verbose=0)
    assert len(straight["loss"]) < 12 or min(straight["learning_rate"]) < 0.5, \
        "the case must exercise early stopping or an LR cut"
    for key in ("loss", "val_loss", "learning_rate"):
        np.testing.assert_allclose(resumed[key], straight[key], rtol=1e-5, err_msg=key)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_checkpoint_is_discarded_with_one_clear_line(problem, tmp_path, monkeypatch,
                                                               capsys, damage):
    x, y, vx, vy, profile = problem
    backup = tmp_path / "baseline-abc"
    plain = _interrupted(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup, verbose=0)
    checkpoint = backup / train.CHECKPOINT_FILE
    content = checkpoint.read_bytes()
    checkpoint.write_bytes({"truncate": content[: len(content) // 2], "garbage": b"\x00junk",
                            "empty": b""}[damage])
    monkeypatch.setattr(train, "callbacks", plain)
    _, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup,
                           verbose=0)
    out = capsys.readouterr().out
    assert "Discarding the interrupted state of baseline-abc" in out and "epoch 1" in out
    assert len(history["loss"]) == 6 and [s["first_epoch"] for s in history["sittings"]] == [1]


def test_a_run_that_finished_training_does_not_train_again(problem, tmp_path, monkeypatch):
    """A crash after training (while predicting or writing the record) resumes at scoring."""
    x, y, vx, vy, profile = problem
    backup = tmp_path / "partial"
    model, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0, backup_dir=backup,
                               verbose=0)
    weights = [w.copy() for w in model.get_weights()]
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("trained again"))
    again, history_again = train.fit(tiny_model, x, y, vx, vy, profile, seed=0,
                                     backup_dir=backup, verbose=0)
    assert history_again["loss"] == history["loss"]
    for a, b in zip(again.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_the_data_order_depends_only_on_seed_and_epoch():
    assert np.array_equal(train.epoch_order(100, 1, 7), train.epoch_order(100, 1, 7))
    assert not np.array_equal(train.epoch_order(100, 1, 7), train.epoch_order(100, 1, 8))
    assert not np.array_equal(train.epoch_order(100, 1, 7), train.epoch_order(100, 2, 7))
    assert sorted(train.epoch_order(100, 1, 7)) == list(range(100))


def test_uninterrupted_run_has_one_sitting_and_a_reused_model_starts_at_epoch_one(
        problem, tmp_path):
    x, y, vx, vy, profile = problem
    model, history = train.fit(tiny_model, x, y, vx, vy, profile, seed=0,
                               backup_dir=tmp_path / "a", verbose=0, architecture=("tiny",))
    assert len(history["loss"]) == 6 and len(history["sittings"]) == 1
    _, again = train.fit(tiny_model, x, y, vx, vy, profile, seed=0,
                         backup_dir=tmp_path / "b", verbose=0, architecture=("tiny",))
    assert len(again["loss"]) == 6
    assert again["loss"] == history["loss"]  # a fresh start, identical to the first run

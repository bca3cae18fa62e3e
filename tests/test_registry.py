import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import results
from helpers.experiments import Experiment, run_experiment, training_data


def test_key_is_deterministic_and_ignores_the_name():
    a = Experiment("a", profile="smoke", noise_rate=0.1)
    assert a.key() == Experiment("b", profile="smoke", noise_rate=0.1).key()
    assert a.key() != Experiment("a", profile="smoke", noise_rate=0.1, seed=1).key()
    assert a.key() != Experiment("a", profile="quick", noise_rate=0.1).key()


def test_augmented_fold_runs_are_other_records_one_per_fold():
    from helpers import catalog

    plain = catalog.cv_folds(0.4, "smoke")
    augmented = catalog.cv_folds(0.4, "smoke", augment="crop_flip")
    assert [e.key() for e in plain] == [e.key() for e in catalog.cv_folds(0.4, "smoke",
                                                                         augment=False)]
    assert not {e.key() for e in plain} & {e.key() for e in augmented}
    assert [e.cv_fold for e in augmented] == [0, 1, 2, 3]
    assert all("augmented: crop+flip" in e.summary() for e in augmented)


@pytest.mark.parametrize("kwargs, message", [
    ({"noise_rate": 1.5}, r"\[0, 1\)"),
    ({"noise_rate": -0.01}, r"\[0, 1\)"),
    ({"fraction": 0}, r"\(0, 1\]"),
    ({"extra": (("kitten", 10),)}, "unknown class name"),
    ({"profile": "huge"}, "unknown profile"),
    ({"cv_folds": 4, "cv_fold": 4}, "cv_fold"),
])
def test_bad_configs_fail_before_anything_is_written(results_dir, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_experiment(Experiment("bad", **{"profile": "smoke", **kwargs}))
    assert not results_dir.exists()


@pytest.mark.needs_data
def test_bad_data_recipes_fail_before_anything_is_written(results_dir):
    with pytest.raises(ValueError, match="only 20 are left"):
        run_experiment(Experiment("bad", profile="smoke", extra=(("dog", 500),)))
    with pytest.raises(ValueError, match="empty training set"):
        run_experiment(Experiment("bad", profile="smoke", fraction=0.001))
    assert not results_dir.exists()


def _fake_record(exp):
    return results.write(exp.record_dir(), {
        "name": exp.name, "key": exp.key(), "profile": exp.profile, "seed": exp.seed,
        "summary": exp.summary(), "config": exp.config(),
        "metrics": {"test": {"accuracy": 0.5, "macro_f1": 0.4}},
        "provenance": {"profile": exp.profile, "data_source": "test", "weights_source": "test"},
    }, {"test_probs": np.eye(10, dtype=np.float16)})


def test_cache_hit_does_not_train(results_dir, monkeypatch):
    exp = Experiment("cached", profile="smoke")
    _fake_record(exp)
    import helpers.train

    monkeypatch.setattr(helpers.train, "fit", lambda *a, **k: pytest.fail("trained on a cache hit"))
    record = run_experiment(exp)
    assert record.metric("test", "accuracy") == 0.5
    assert record.arrays["test_probs"].shape == (10, 10)


def test_incomplete_records_do_not_count(results_dir):
    exp = Experiment("killed", profile="smoke")
    folder = exp.record_dir()
    folder.mkdir(parents=True)
    (folder / results.ARRAYS_FILE).write_bytes(b"half a file")
    assert results.load(folder) is None
    (folder / results.RECORD_FILE).write_text('{"status": "running"')
    assert results.load(folder) is None
    assert list(results.iter_records("smoke")) == []


def test_failed_write_leaves_nothing(results_dir):
    exp = Experiment("broken", profile="smoke")
    with pytest.raises(TypeError):
        results.write(exp.record_dir(), {"name": "broken", "oops": object()})
    assert list(exp.record_dir().parent.iterdir()) == []


def test_update_adds_fields(results_dir):
    record = _fake_record(Experiment("upd", profile="smoke"))
    results.update(record, analysis={"detection_f1": 0.7})
    assert results.load(record.path)["analysis"] == {"detection_f1": 0.7}


@pytest.mark.needs_data
def test_repairs_change_the_training_set(results_dir):
    noisy = training_data(Experiment("n", profile="smoke", noise_rate=0.1))
    assert noisy.noise_mask.sum() == 20
    flipped = noisy.ids[noisy.noise_mask]
    dropped = training_data(Experiment("d", profile="smoke", noise_rate=0.1,
                                       drop_ids=tuple(flipped)))
    assert len(dropped.ids) == 180 and not dropped.noise_mask.any()
    fixed = training_data(Experiment(
        "r", profile="smoke", noise_rate=0.1,
        relabel=tuple(zip(flipped, noisy.true_labels[noisy.noise_mask]))))
    assert np.array_equal(fixed.given_labels, fixed.true_labels)
    with pytest.raises(ValueError, match="not in the training set"):
        training_data(Experiment("x", profile="smoke", drop_ids=("train_99999999",)))


@pytest.mark.needs_data
def test_smoke_experiment_end_to_end(results_dir):
    exp = Experiment("e2e", profile="smoke", noise_rate=0.05)
    leftover = exp.record_dir()  # what a run killed mid-write would leave: re-run, replace
    leftover.mkdir(parents=True)
    (leftover / results.ARRAYS_FILE).write_bytes(b"truncated")
    record = run_experiment(exp)
    assert record.path == exp.record_dir() and (record.path / results.RECORD_FILE).exists()
    assert record["train"]["trainable_params"] == 2_236_682
    assert record["train"]["injected_errors"] == 10
    assert len(record.history["loss"]) == record["epochs"] >= 1
    arrays = record.arrays
    assert arrays["test_probs"].shape == (200, 10)
    assert np.allclose(arrays["test_probs"].astype(float).sum(axis=1), 1, atol=1e-2)
    assert 0 <= record.metric("test", "accuracy") <= 1
    prov = record.provenance
    assert prov["profile"] == "smoke" and prov["seed"] == 0
    assert prov["data_source"].startswith("JPEG copy of CIFAR-10")
    assert prov["weights_source"].startswith("approximate ImageNet weights")
    assert prov["packages"]["tensorflow"] and prov["hardware"] and prov["date"]
    # a second call is served from the registry
    again = run_experiment(exp)
    assert again.data == record.data

    out = subprocess.run([sys.executable, "-m", "helpers.results", "list", "--profile", "smoke",
                          "--json"], capture_output=True, text=True, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["key"] for line in lines] == [exp.key()]
    assert lines[0]["metrics"]["test"]["accuracy"] == record.metric("test", "accuracy")
    assert lines[0]["provenance"]["data_source"].startswith("JPEG copy")
    assert lines[0]["path"] == str(record.path)
    text = subprocess.run([sys.executable, "-m", "helpers.results", "list"],
                          capture_output=True, text=True, check=True).stdout
    assert "e2e" in text and exp.key() in text


def test_cli_rejects_unknown_profile(results_dir):
    done = subprocess.run([sys.executable, "-m", "helpers.results", "list", "--profile", "x"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "unknown profile" in done.stderr


@pytest.mark.parametrize("kwargs, error, message", [
    ({"seed": "0"}, TypeError, "seed must be an integer"),
    ({"seed": None}, TypeError, "seed must be an integer"),
    ({"seed": True}, TypeError, "seed must be an integer"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"seed": 2**32}, ValueError, "seed must be >= 0, below"),
    ({"seed": 1.5}, ValueError, "seed must be a whole number"),
    ({"input_size": 16}, ValueError, "input_size must be >= 32"),
    ({"input_size": "64"}, TypeError, "input_size must be an integer"),
    ({"augment": "yes"}, ValueError, "is not an augmentation: use False, True"),
    ({"augment": 2}, TypeError, "augment must be True or False"),
    ({"noise_rate": "0.1"}, TypeError, "noise_rate must be a number"),
    ({"fraction": None}, TypeError, "fraction must be a number"),
    ({"extra": (("cat", 5), ("cat", 5))}, ValueError, "give each class once"),
    ({"extra": (("cat", -1),)}, ValueError, "must be >= 0"),
    ({"extra": (("cat", 2.5),)}, ValueError, "whole number"),
    ({"extra": ("cat",)}, TypeError, "pairs"),
    ({"extra": (("cat", 500),)}, ValueError, "only 20 are left"),  # smoke pool: 40 per class
    ({"fraction": 0.001}, ValueError, "empty training set"),
    ({"relabel": (("train_1", 10),)}, ValueError, "relabel target must be >= 0, below 10"),
    ({"cv_folds": 4, "cv_fold": 4}, ValueError, "cv_fold"),
    ({"cv_fold": 1}, ValueError, "needs cv_folds"),
    ({"recipe": "sgd"}, ValueError, "unknown recipe"),
    ({"name": "my run"}, ValueError, "plain identifier"),
    ({"name": "../escape"}, ValueError, "plain identifier"),
])
def test_experiment_fields_are_checked_when_it_is_made(kwargs, error, message):
    with pytest.raises(error, match=message):
        Experiment(**{"name": "bad", "profile": "smoke", **kwargs})


@pytest.mark.parametrize("a, b", [
    ({"seed": 1.0}, {"seed": 1}),
    ({"augment": 1}, {"augment": True}),
    ({"extra": (("cat", 0),)}, {}),
    ({"extra": (("dog", 3), ("cat", 2))}, {"extra": (("cat", 2), ("dog", 3))}),
    ({"fraction": 1}, {"fraction": 1.0}),
    ({"drop_ids": ("b", "a", "a")}, {"drop_ids": ("a", "b")}),
])
def test_equal_experiments_get_equal_keys(a, b):
    assert Experiment("x", profile="smoke", **a).key() == Experiment("x", profile="smoke", **b).key()


def test_the_recipe_and_the_weights_content_are_part_of_the_key(tmp_path, monkeypatch):
    from helpers.recipe import LEGACY

    plain = Experiment("x", profile="smoke")
    assert plain.key() != Experiment("x", profile="smoke", recipe="v2-frozen-bn").key()
    assert plain.key() != Experiment("x", profile="smoke", recipe=LEGACY).key()
    first, renamed, other = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5", tmp_path / "c.weights.h5"
    first.write_bytes(b"weights one")
    renamed.write_bytes(b"weights one")
    other.write_bytes(b"weights two")
    keys = {}
    for path in (first, renamed, other):
        monkeypatch.setenv("DCAI_WEIGHTS", str(path))
        keys[path.name] = Experiment("x", profile="smoke").key()
    assert keys["a.weights.h5"] == keys["b.weights.h5"] != keys["c.weights.h5"]


def test_legacy_records_keep_their_keys():
    """The recipe-less key of records made before recipes had names (a committed full record)."""
    from helpers.recipe import LEGACY

    if not sources_are_offline_copies():
        pytest.skip("the committed legacy records were made with the offline copies in ../shared")
    exp = Experiment("baseline", profile="full", seed=0, recipe=LEGACY)
    assert exp.key() == "f4140cc4f0fc"
    # and the recipe study's runs of the book's recipe keep theirs (a recipe's fields are hashed)
    assert Experiment("baseline", profile="full", seed=0, recipe="v2-bn0.99").key() == "d8af4c8a06f2"
    assert Experiment("baseline", profile="full", seed=0, recipe="v2-frozen-bn").key() == "72c477ca947b"
    assert results.load(exp.record_dir()) is not None or not exp.record_dir().parent.exists()


def sources_are_offline_copies() -> bool:
    from helpers import sources

    return sources.data_source().startswith(sources.JPEG_COPY_NOTE) and \
        "approx" in sources.weights_setting()


def test_two_processes_asking_for_one_run_train_it_once(results_dir, monkeypatch, tmp_path):
    """The second process waits on the run's lock, then reads the first one's record."""
    import multiprocessing
    import time

    from helpers import experiments

    exp = Experiment("locked", profile="smoke")
    log = tmp_path / "trained.log"

    def slow_training(exp, path, verbose):
        with open(log, "a") as out:
            out.write(f"{exp.key()}\n")
        time.sleep(1.5)
        return _fake_record(exp)

    monkeypatch.setattr(experiments, "_train_and_record", slow_training)
    context = multiprocessing.get_context("fork")  # children inherit the patched function
    answers = context.Queue()

    def ask():
        answers.put(run_experiment(exp).key)

    processes = [context.Process(target=ask) for _ in range(2)]
    processes[0].start()
    time.sleep(0.3)
    processes[1].start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert log.read_text().split() == [exp.key()]
    assert [answers.get(timeout=5) for _ in processes] == [exp.key(), exp.key()]


def test_an_unwritable_registry_fails_before_training(tmp_path, monkeypatch):
    from helpers import experiments

    blocker = tmp_path / "registry-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(blocker))
    monkeypatch.setattr(experiments, "_train_and_record",
                        lambda *a: pytest.fail("training started on an unwritable registry"))
    with pytest.raises(Exception, match="DCAI_RESULTS_DIR"):
        run_experiment(Experiment("x", profile="smoke"))


def test_colab_reads_runs_recorded_from_other_sources_only_when_asked(results_dir, monkeypatch):
    """DCAI_ANY_SOURCE=1 (set by the Colab setup cell) serves a committed record of the same
    experiment made from the offline copies, instead of retraining with the real sources."""
    from helpers import experiments

    exp = Experiment("baseline", profile="smoke", seed=1)
    record = _fake_record(exp)
    elsewhere = results.record_dir("smoke", exp.name, "0123456789ab")  # another source's key
    record.path.rename(elsewhere)
    monkeypatch.setattr(experiments, "_train_and_record", lambda *a: "trained")
    assert run_experiment(exp) == "trained"
    monkeypatch.setenv("DCAI_ANY_SOURCE", "1")
    served = run_experiment(exp)
    assert served.path == elsewhere and served.metric("test", "accuracy") == 0.5
    assert run_experiment(Experiment("baseline", profile="smoke", seed=2)) == "trained"


def test_new_fields_keep_the_keys_of_records_made_before_them():
    """noise_kind and sample_weights enter the key only when they differ from their defaults."""
    base = Experiment("x", profile="smoke", noise_rate=0.1)
    assert base.key() == Experiment("x", profile="smoke", noise_rate=0.1,
                                    noise_kind="symmetric", sample_weights=()).key()
    assert base.key() != Experiment("x", profile="smoke", noise_rate=0.1, noise_kind="pairs").key()
    if sources_are_offline_copies():  # committed full records of the book's recipe
        from helpers.catalog import augmentation, label_noise

        assert augmentation("full", 0).key() == "f3d240ae497f"
        assert label_noise(0.10, "full", 0).key() == "8bb9d6054a17"


def test_augment_accepts_the_article_set_and_the_pipeline_augmentations():
    article = Experiment("x", profile="smoke", augment=True)
    assert Experiment("x", profile="smoke", augment="article").key() == article.key()
    assert Experiment("x", profile="smoke", augment="none").augment is False
    crop = Experiment("x", profile="smoke", augment="crop_flip")
    weather = Experiment("x", profile="smoke", augment="weather")
    assert len({article.key(), crop.key(), weather.key()}) == 3
    assert crop.summary().endswith("augmented: crop+flip")
    with pytest.raises(ValueError, match="crop_flip, weather"):
        Experiment("x", profile="smoke", augment="rain")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"noise_kind": "asymmetric"}, ValueError, "symmetric, pairs"),
    ({"sample_weights": (("a", 1.5),)}, ValueError, r"\[0, 1\]"),
    ({"sample_weights": ("a",)}, TypeError, "pairs"),
])
def test_bad_noise_kinds_and_weights_name_the_fix(kwargs, error, message):
    with pytest.raises(error, match=message):
        Experiment("x", profile="smoke", **kwargs)


@pytest.mark.needs_data
def test_class_conditional_noise_and_weights_reach_the_training_data():
    exp = Experiment("x", profile="smoke", noise_rate=0.4, noise_kind="pairs")
    data = training_data(exp)
    assert data.noise_mask.mean() == pytest.approx(0.32, abs=0.02)
    assert np.array_equal(data.noise_mask, data.given_labels != data.true_labels)
    chosen = [(str(i), 0.25) for i in data.ids[:3]]
    weighted = training_data(Experiment("x", profile="smoke", sample_weights=chosen))
    assert np.allclose(weighted.sample_weights[:3], 0.25) and weighted.sample_weights[3:].min() == 1
    with pytest.raises(ValueError, match="not in the training set"):
        training_data(Experiment("x", profile="smoke", sample_weights=(("nope", 0.5),)))


def test_noise_seed_is_left_out_of_the_key_when_it_changes_nothing():
    """The default spelled out (noise seed = seed), or a noise seed with no noise and no folds
    to act on, is the same experiment; another noise seed is a new one."""
    noisy = Experiment("x", profile="smoke", seed=1, noise_rate=0.1)
    assert noisy.key() == Experiment("x", profile="smoke", seed=1, noise_rate=0.1,
                                     noise_seed=1).key()
    shared = Experiment("x", profile="smoke", seed=1, noise_rate=0.1, noise_seed=0)
    assert shared.key() != noisy.key() and shared.data_seed == 0
    assert "noise seed 0" in shared.summary()
    assert Experiment("x", profile="smoke", seed=1, noise_seed=0).noise_seed is None
    with pytest.raises(ValueError, match="noise_seed"):
        Experiment("x", profile="smoke", noise_rate=0.1, noise_seed=-1)


@pytest.mark.needs_data
def test_training_seeds_share_one_noisy_set_through_the_noise_seed():
    first = training_data(Experiment("x", profile="smoke", seed=0, noise_rate=0.3))
    shared = training_data(Experiment("x", profile="smoke", seed=2, noise_rate=0.3,
                                      noise_seed=0))
    own = training_data(Experiment("x", profile="smoke", seed=2, noise_rate=0.3))
    assert np.array_equal(first.given_labels, shared.given_labels)
    assert not np.array_equal(first.noise_mask, own.noise_mask)


@pytest.mark.needs_data
def test_records_carry_shifted_set_metrics_and_old_records_get_them(results_dir):
    from helpers import corruptions, experiments

    exp = Experiment("baseline", profile="smoke", augment="weather")
    record = run_experiment(exp)
    shifted = record["shift"]
    assert set(shifted["per_corruption"]) == set(corruptions.CORRUPTIONS)
    assert shifted["images_per_set"] == 50 and 0 <= shifted["corruption_accuracy"] <= 1
    assert record["seconds"]["shift"] > 0
    line = results.summary_line(record)
    assert line["metrics"]["corruption"]["accuracy"] == shifted["corruption_accuracy"]
    assert "shifted test sets (mean of 50): accuracy" in results._format_text(line)
    del record.data["shift"]  # a record made before records carried them
    results.update(record, **record.data)
    assert "shift" not in results.load(exp.record_dir()).data
    assert experiments.add_shift_metrics(exp)["shift"]["per_corruption"] == shifted["per_corruption"]


def test_shift_metrics_are_never_added_to_a_record_of_other_sources(results_dir, monkeypatch):
    from helpers import experiments

    exp = Experiment("baseline", profile="smoke", seed=7)
    other = _fake_record(Experiment("baseline", profile="smoke", seed=8))  # another folder
    monkeypatch.setattr(experiments, "run_experiment", lambda e: other)
    with pytest.raises(ValueError, match="Unset DCAI_ANY_SOURCE"):
        experiments.add_shift_metrics(exp)

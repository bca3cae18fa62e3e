import pytest

from helpers import class_id, sources
from helpers.profiles import PROFILES, get_profile


def test_profiles_and_env(monkeypatch):
    assert set(PROFILES) == {"smoke", "quick", "full"}
    full = get_profile("full")
    assert (full.pool_size, full.val_size, full.test_size) == (40_000, 10_000, 10_000)
    assert (full.batch_size, full.max_epochs, full.learning_rate) == (180, 100, 1e-4)
    assert (full.early_stopping_patience, full.lr_plateau_patience) == (5, 2)
    monkeypatch.setenv("DCAI_PROFILE", "quick")
    assert get_profile().name == "quick"
    monkeypatch.delenv("DCAI_PROFILE")
    assert get_profile().name == "full"


def test_unknown_profile_names_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="smoke, quick, full"):
        get_profile("huge")
    monkeypatch.setenv("DCAI_PROFILE", "nope")
    with pytest.raises(ValueError, match="DCAI_PROFILE"):
        get_profile()


def test_scaled_counts():
    assert get_profile("full").scaled(1000) == 1000
    assert get_profile("quick").scaled(1000) == 100


def test_unknown_class_name():
    assert class_id("cat") == 3
    with pytest.raises(ValueError, match="airplane, automobile"):
        class_id("kitten")


def test_sources_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("DCAI_SHARED", "none")
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.delenv("DCAI_WEIGHTS", raising=False)
    assert sources.shared_dir() is None
    assert sources.weights_setting() == "imagenet"
    assert "downloaded" in sources.data_source()
    shared = tmp_path / "shared"
    (shared / "tensorflow_datasets").mkdir(parents=True)
    (shared / sources.SHARED_WEIGHTS_FILE).parent.mkdir(parents=True)
    (shared / sources.SHARED_WEIGHTS_FILE).write_bytes(b"")
    monkeypatch.setenv("DCAI_SHARED", str(shared))
    assert sources.data_source().startswith("JPEG copy of CIFAR-10")
    assert sources.weights_source().startswith("approximate ImageNet weights")
    monkeypatch.setenv("DCAI_SHARED", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="DCAI_SHARED=none"):
        sources.shared_dir()

import numpy as np
import pytest

from helpers import data
from helpers.profiles import get_profile

pytestmark = pytest.mark.needs_data


@pytest.fixture(scope="module")
def split():
    return data.make_split(get_profile("smoke"))


@pytest.fixture(scope="module")
def full_split():
    return data.make_split(get_profile("full"))


def test_real_cifar10_loaded_with_ids():
    train, test = data.load_split("train"), data.load_split("test")
    assert train.images.shape == (50_000, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (10_000, 32, 32, 3)
    assert len(set(train.ids)) == 50_000
    assert np.array_equal(np.sort(data.test_indices(test.ids)), np.arange(10_000))


def test_full_split_is_the_articles(full_split):
    assert len(full_split.validation) == 10_000 and full_split.pool_size == 40_000
    pool_ids = set(full_split.train.ids[np.concatenate(full_split.pool_orders)])
    assert len(pool_ids) == 40_000
    assert pool_ids.isdisjoint(full_split.validation.ids)
    assert np.all(data.class_counts(full_split.validation.labels) == 1000)
    assert len(full_split.test) == 10_000


def test_subsets_are_stratified_and_nested(full_split):
    sizes = {}
    previous = set()
    for fraction in (0.25, 0.5, 0.75, 1.0):
        subset = data.training_set(full_split, fraction)
        sizes[fraction] = len(subset)
        assert np.all(data.class_counts(subset.labels) == round(4000 * fraction))
        assert previous <= set(subset.ids)
        previous = set(subset.ids)
        assert previous.isdisjoint(full_split.validation.ids)
    assert sizes[0.5] == 20_000 and sizes[1.0] == 40_000


def test_extras_are_disjoint_from_the_subset(full_split):
    base = data.training_set(full_split, 0.5)
    more = data.training_set(full_split, 0.5, extra=(("cat", 1000), ("dog", 1000)))
    assert len(more) == 22_000
    added = set(more.ids) - set(base.ids)
    assert len(added) == 2000 and set(base.ids) <= set(more.ids)
    counts = data.class_counts(more.labels)
    assert counts[3] == counts[5] == 3000 and counts[0] == 2000


def test_ids_stay_with_their_images(split):
    subset = data.training_set(split, 1.0)
    position = {i: n for n, i in enumerate(split.train.ids)}
    rows = [position[i] for i in subset.ids]
    assert np.array_equal(split.train.images[rows], subset.images)
    assert np.array_equal(split.train.labels[rows], subset.labels)


def test_profiles_shrink_within_the_same_orders(split, full_split):
    assert split.pool_size == 400 and len(split.validation) == 200 and len(split.test) == 200
    assert set(split.validation.ids) <= set(full_split.validation.ids)
    assert set(data.training_set(split, 1.0).ids) <= set(data.training_set(full_split, 1.0).ids)


def test_too_many_extras_names_the_limit(split):
    with pytest.raises(ValueError, match="only 20 are left"):
        data.training_set(split, 0.5, extra=(("cat", 21),))


def test_unknown_class_in_extras(split):
    with pytest.raises(ValueError, match="unknown class name 'kitty'"):
        data.training_set(split, 0.5, extra=(("kitty", 1),))


@pytest.mark.parametrize("fraction", [0, -0.5, 1.2])
def test_fraction_out_of_range(split, fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        data.training_set(split, fraction)


def test_empty_subset(split):
    with pytest.raises(ValueError, match="empty training set"):
        data.training_set(split, 0.001)


def test_missing_dataset_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DCAI_OFFLINE", "1")
    data.load_split.cache_clear()
    try:
        with pytest.raises(data.DatasetUnavailableError, match="TFDS_DATA_DIR"):
            data.load_split("train")
    finally:
        data.load_split.cache_clear()
    assert list(tmp_path.iterdir()) == [] or all(p.is_dir() for p in tmp_path.iterdir())

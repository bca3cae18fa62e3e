import numpy as np
import pytest

from helpers.noise import inject_symmetric_noise, noise_counts_per_class


@pytest.fixture
def labels():
    return np.repeat(np.arange(10), 100)


@pytest.mark.parametrize("rate", [0.01, 0.02, 0.05, 0.1, 0.333])
def test_exact_count_and_no_label_kept(labels, rate):
    noisy, mask = inject_symmetric_noise(labels, rate, seed=3)
    assert mask.sum() == round(rate * len(labels))
    assert np.all(noisy[mask] != labels[mask])
    assert np.array_equal(noisy[~mask], labels[~mask])
    assert noisy.min() >= 0 and noisy.max() <= 9


def test_input_is_not_modified(labels):
    before = labels.copy()
    inject_symmetric_noise(labels, 0.1, seed=0)
    assert np.array_equal(labels, before)


def test_same_seed_same_result_other_seed_differs(labels):
    a = inject_symmetric_noise(labels, 0.1, seed=7)
    b = inject_symmetric_noise(labels, 0.1, seed=7)
    c = inject_symmetric_noise(labels, 0.1, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_rate_zero_changes_nothing(labels):
    noisy, mask = inject_symmetric_noise(labels, 0.0, seed=0)
    assert not mask.any() and np.array_equal(noisy, labels)


def test_new_classes_are_spread_over_all_other_classes():
    labels = np.zeros(20_000, dtype=int)
    noisy, mask = inject_symmetric_noise(labels, 0.5, seed=0)
    counts = np.bincount(noisy[mask], minlength=10)
    assert counts[0] == 0
    assert counts[1:].min() > 0.8 * counts[1:].mean()  # roughly uniform over the 9 others


def test_per_class_counts(labels):
    noisy, mask = inject_symmetric_noise(labels, 0.1, seed=1)
    counts = noise_counts_per_class(labels, mask)
    assert counts.sum() == 100 and len(counts) == 10
    assert np.array_equal(counts, np.bincount(labels[mask], minlength=10))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_bad_rate_names_the_fix(labels, rate):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        inject_symmetric_noise(labels, rate, seed=0)


def test_pair_noise_swaps_only_within_the_confusable_pairs():
    from helpers import CLASS_NAMES
    from helpers.noise import CONFUSABLE_PAIRS, inject_pair_noise

    labels = np.repeat(np.arange(10), 100)
    noisy, mask = inject_pair_noise(labels, 0.4, seed=3)
    partner = {}
    for a, b in CONFUSABLE_PAIRS:
        partner[CLASS_NAMES.index(a)], partner[CLASS_NAMES.index(b)] = \
            CLASS_NAMES.index(b), CLASS_NAMES.index(a)
    assert np.array_equal(mask, noisy != labels)
    for cls in range(10):
        flipped = mask[labels == cls]
        assert flipped.sum() == (40 if cls in partner else 0)  # exactly the rate, per class
        if cls in partner:
            assert set(noisy[(labels == cls) & mask]) == {partner[cls]}
    assert mask.mean() == pytest.approx(0.32)  # 8 of 10 classes take part
    again, _ = inject_pair_noise(labels, 0.4, seed=3)
    other, _ = inject_pair_noise(labels, 0.4, seed=4)
    assert np.array_equal(noisy, again) and not np.array_equal(noisy, other)


def test_noise_matrices_are_cleanlabs_convention_and_match_the_draws():
    from helpers.noise import inject_noise, noise_matrix

    labels = np.repeat(np.arange(10), 200)
    for kind, rate in (("symmetric", 0.3), ("pairs", 0.4)):
        matrix = noise_matrix(kind, rate)
        assert np.allclose(matrix.sum(axis=0), 1)  # columns: P(given | true) sums to 1
        noisy, _ = inject_noise(labels, rate, seed=0, kind=kind)
        empirical = np.zeros((10, 10))
        np.add.at(empirical, (noisy, labels), 1 / 200)
        assert np.abs(empirical - matrix).max() < 0.08
    with pytest.raises(ValueError, match="symmetric, pairs"):
        noise_matrix("asymmetric", 0.1)

"""The one rule that calls a difference real: a confidence interval over seeds."""

import math

import numpy as np
import pytest
from scipy import stats

from helpers.evaluate import compare_over_seeds, mean_interval


def test_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    a = {0: 0.75, 1: 0.765, 2: 0.758}
    b = {0: 0.72, 1: 0.74, 2: 0.73}
    result = compare_over_seeds(a, b)
    d = np.array([0.03, 0.025, 0.028])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert result.difference == pytest.approx(d.mean())
    assert (result.low, result.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert result.n == 3 and result.real and result.verdict == "gain"


def test_pairing_matters_a_shared_seed_effect_cancels():
    """Seeds move both configurations together: paired sees a consistent gain, unpaired not."""
    a = {0: 0.700, 1: 0.750, 2: 0.800}
    b = {0: 0.690, 1: 0.741, 2: 0.789}
    assert compare_over_seeds(a, b).verdict == "gain"
    assert compare_over_seeds(a, b, paired=False).verdict == "no detectable difference"


def test_only_common_seeds_are_paired_and_too_few_give_no_verdict():
    result = compare_over_seeds({0: 0.8, 5: 0.1}, {0: 0.7, 1: 0.7})
    assert result.n == 1 and result.difference == pytest.approx(0.1)
    assert math.isnan(result.low) and not result.real and result.verdict == "not enough seeds"


def test_an_interval_that_covers_zero_is_no_difference_and_a_negative_one_a_loss():
    assert compare_over_seeds({0: 0.70, 1: 0.74}, {0: 0.72, 1: 0.72}).verdict == \
        "no detectable difference"
    assert compare_over_seeds({0: 0.60, 1: 0.61, 2: 0.60}, {0: 0.70, 1: 0.72, 2: 0.71}).verdict \
        == "loss"


def test_unpaired_uses_welch():
    a, b = {0: 0.8, 1: 0.82, 2: 0.81}, {0: 0.7, 1: 0.75, 2: 0.72, 3: 0.71}
    result = compare_over_seeds(a, b, paired=False)
    expected = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high))
    assert result.n == (3, 4) and "Welch" in result.test


def test_mean_interval():
    mean, low, high = mean_interval([0.7, 0.72, 0.71])
    assert mean == pytest.approx(0.71) and low < mean < high
    assert math.isnan(mean_interval([0.7])[1])

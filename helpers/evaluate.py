"""Metrics from predicted probabilities (scikit-learn), and the one rule that decides whether a
difference between two configurations is real: a 95% confidence interval over seeds (scipy)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from helpers import CLASS_NAMES, NUM_CLASSES


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    y_pred = np.asarray(probs).argmax(axis=1)
    labels = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def top_confusions(confusion: np.ndarray, k: int = 5) -> list[tuple[str, str, int]]:
    """The k largest off-diagonal cells as (true class, predicted class, count)."""
    cm = np.array(confusion, dtype=int)
    np.fill_diagonal(cm, 0)
    flat = np.argsort(cm, axis=None)[::-1][:k]
    return [(CLASS_NAMES[i], CLASS_NAMES[j], int(cm[i, j]))
            for i, j in zip(*np.unravel_index(flat, cm.shape))]


def seed_spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of a metric over seeds."""
    values = np.asarray(list(values), dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A difference ``a - b`` between two configurations over seeds, with its confidence interval.

    ``difference``, ``low`` and ``high`` are in the metric's units (fractions for accuracy);
    ``low``/``high`` are NaN when there are too few runs for an interval. ``n`` is the number
    of seed pairs (paired) or ``(runs of a, runs of b)`` (unpaired); ``test`` names the test.
    """

    difference: float
    low: float
    high: float
    n: int | tuple[int, int]
    test: str
    confidence: float = CONFIDENCE

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def real(self) -> bool:
        """True only when the confidence interval excludes zero."""
        return self.has_interval and (self.low > 0 or self.high < 0)

    @property
    def verdict(self) -> str:
        """``gain``, ``loss``, ``no detectable difference``, or ``not enough seeds``."""
        if not self.has_interval:
            return "not enough seeds"
        if not self.real:
            return "no detectable difference"
        return "gain" if self.difference > 0 else "loss"


def compare_over_seeds(a: dict, b: dict, paired: bool = True,
                       confidence: float = CONFIDENCE) -> Comparison:
    """Is configuration ``a`` better than ``b``? ``a`` and ``b`` map seed -> metric value.

    Paired (the default, for runs whose seed s shares the head initialisation and data order
    of the other configuration's seed s): the mean of the per-seed differences over the seeds
    both have, with a Student-t interval over those differences (``scipy.stats.ttest_1samp``;
    n - 1 degrees of freedom). Unpaired (e.g. different training-set sizes, whose data orders
    differ): Welch's t interval for the difference of means (``scipy.stats.ttest_ind`` with
    ``equal_var=False``). With fewer than two pairs (or two runs a side), or differences that
    do not vary at all, the interval is NaN and the verdict is "not enough seeds".
    """
    if paired:
        seeds = sorted(set(a) & set(b))
        differences = np.array([a[s] - b[s] for s in seeds], dtype=float)
        mean = float(differences.mean()) if len(seeds) else math.nan
        low = high = math.nan
        if len(seeds) >= 2 and differences.std(ddof=1) > 0:
            interval = stats.ttest_1samp(differences, 0.0).confidence_interval(confidence)
            low, high = float(interval.low), float(interval.high)
        return Comparison(mean, low, high, len(seeds), "paired t-test over seeds", confidence)
    x, y = np.array(list(a.values()), float), np.array(list(b.values()), float)
    mean = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    low = high = math.nan
    if len(x) >= 2 and len(y) >= 2 and (x.std(ddof=1) > 0 or y.std(ddof=1) > 0):
        interval = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return Comparison(mean, low, high, (len(x), len(y)), "Welch's t-test (unpaired)", confidence)


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): a Student-t confidence interval for the mean of ``values`` over
    seeds; NaN bounds with fewer than two values."""
    values = np.asarray(list(values), dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std(ddof=1) == 0:
        return mean, math.nan, math.nan
    interval = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(interval[0]), float(interval[1])

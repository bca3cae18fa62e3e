"""Metrics from predicted probabilities (scikit-learn), and comparisons against seed spread."""

from __future__ import annotations

import numpy as np
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


def distinguishable(difference: float, spread: float, factor: float = 2.0) -> bool:
    """A difference counts as real only when it exceeds ``factor`` seed-to-seed std devs."""
    return abs(difference) > factor * spread and spread > 0

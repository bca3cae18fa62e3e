"""Figures drawn from records and arrays only; nothing here trains anything.

Every function draws on a given ``ax`` (or a new figure), labels its axes, uses class names
rather than ids, and returns the figure so notebooks can ``display`` or save it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers import CLASS_NAMES

sns.set_theme(style="whitegrid", context="notebook")
BOOK_WIDTH = 9  # inches: readable at the book's page width


def _axes(ax=None, size=(BOOK_WIDTH, 3.6)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return ax.figure, ax


def class_distribution(counts, title: str = "Training images per class", ax=None,
                       reference=None, reference_label: str = "baseline"):
    """Bar chart of images per class, optionally next to a reference distribution."""
    fig, ax = _axes(ax)
    frame = pd.DataFrame({"class": CLASS_NAMES, "images": np.asarray(counts), "set": "this set"})
    if reference is not None:
        frame = pd.concat([pd.DataFrame({"class": CLASS_NAMES, "images": np.asarray(reference),
                                         "set": reference_label}), frame])
    sns.barplot(frame, x="class", y="images", hue="set" if reference is not None else None, ax=ax)
    ax.set(title=title, xlabel="class", ylabel="images")
    ax.tick_params(axis="x", rotation=30)
    return fig


def learning_curves(history: dict, title: str = "Learning curves"):
    """Loss and accuracy per epoch, training vs validation."""
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH, 3.4), layout="constrained")
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("cross-entropy loss", "accuracy")):
        ax.plot(epochs, history[metric], marker="o", label="training")
        ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel=label, title=label.capitalize())
        ax.legend()
    fig.suptitle(title)
    return fig


def confusion_matrix(matrix, title: str = "Confusion matrix (validation)", ax=None,
                     normalize: bool = True):
    """Heatmap of a confusion matrix; rows are true classes, columns predictions."""
    fig, ax = _axes(ax, size=(6.4, 5.4))
    matrix = np.asarray(matrix, dtype=float)
    values = matrix / matrix.sum(axis=1, keepdims=True) if normalize else matrix
    sns.heatmap(values, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues",
                xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, cbar=False, ax=ax,
                annot_kws={"size": 7})
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    return fig


def per_class_bars(values: dict[str, np.ndarray], ylabel: str, title: str, ax=None):
    """Grouped bars: one group per class, one bar per named series (e.g. 1% vs 10% noise)."""
    fig, ax = _axes(ax)
    frame = pd.concat([pd.DataFrame({"class": CLASS_NAMES, ylabel: np.asarray(v), "series": k})
                       for k, v in values.items()])
    sns.barplot(frame, x="class", y=ylabel, hue="series", ax=ax)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(title=title, xlabel="class", ylabel=ylabel)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(title=None)
    return fig


def metric_vs_x(frame: pd.DataFrame, x: str, xlabel: str, title: str,
                metrics=("accuracy", "macro_f1"), band: dict | None = None, ax=None):
    """Metric(s) against a varied quantity, with error bars from ``<metric>_std`` columns.

    ``band`` maps a metric to ``(mean, std)`` of the clean baseline: drawn as a shaded
    region of mean ± 2 std, the seed-to-seed noise level.
    """
    fig, ax = _axes(ax)
    for metric in metrics:
        std = frame.get(f"{metric}_std")
        line = ax.errorbar(frame[x], frame[metric], yerr=std, marker="o", capsize=4,
                           label=metric.replace("_", "-").replace("macro-f1", "macro-F1"))
        if band and metric in band:
            mean, spread = band[metric]
            ax.axhspan(mean - 2 * spread, mean + 2 * spread, color=line[0].get_color(), alpha=0.12)
    ax.set(title=title, xlabel=xlabel, ylabel="score")
    ax.legend()
    return fig


def image_gallery(images, titles, columns: int = 8, title: str | None = None):
    """Small images with a caption each (e.g. given vs suggested label)."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(BOOK_WIDTH, 1.45 * rows + 0.4),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def confusion_pair(left, right, titles: tuple[str, str]):
    """Two row-normalised confusion matrices side by side (e.g. baseline vs augmented)."""
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH + 3, 5.2), layout="constrained")
    for ax, matrix, title in zip(axes, (left, right), titles):
        confusion_matrix(matrix, title=title, ax=ax)
    return fig


def overview(frame: pd.DataFrame, baseline_label: str = "baseline"):
    """Test accuracy of every experiment (mean ± std over seeds), the baseline's ± 2 std
    band shaded so that differences can be judged against seed-to-seed noise."""
    labels = [f"{e}: {s}" for e, s in zip(frame["experiment"], frame["setting"])]
    fig, ax = plt.subplots(figsize=(BOOK_WIDTH, 0.38 * len(frame) + 1.2), layout="constrained")
    y = np.arange(len(frame))
    ax.errorbar(100 * frame["test accuracy"], y, xerr=100 * frame["test accuracy std"], fmt="o",
                capsize=4)
    base = frame[frame["experiment"] == baseline_label]
    if len(base):
        mean, std = 100 * base["test accuracy"].iloc[0], 100 * base["test accuracy std"].iloc[0]
        ax.axvspan(mean - 2 * std, mean + 2 * std, color="grey", alpha=0.2,
                   label="baseline ± 2 seed std")
        ax.legend(loc="best")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set(xlabel="test accuracy (%)", title="Every recorded experiment, side by side")
    return fig

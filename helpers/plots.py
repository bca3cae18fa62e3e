"""Figures drawn from records and arrays only; nothing here trains anything.

Every function draws on a given ``ax`` (or a new figure), labels its axes, uses class names
rather than ids, and returns the figure so notebooks can ``display`` or save it.
"""

from __future__ import annotations

import re
import textwrap

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
    if reference is not None:  # beside the bars, never over them
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title=None, frameon=False)
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
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title=None, frameon=False)
    return fig


def metric_vs_x(frame: pd.DataFrame, x: str, xlabel: str, title: str,
                metrics=("accuracy", "macro_f1"), band: dict | None = None, ax=None):
    """Metric(s) against a varied quantity; error bars are the 95% confidence interval of the
    mean over seeds (``<metric>_ci`` half-widths; none for a single run).

    ``band`` maps a metric to ``(low, high)``, the 95% confidence interval of the clean
    baseline's mean (``report.baseline_band``), drawn as a shaded region.
    """
    fig, ax = _axes(ax)
    for metric in metrics:
        ci = frame.get(f"{metric}_ci")
        line = ax.errorbar(frame[x], frame[metric], yerr=None if ci is None else ci.fillna(0),
                           marker="o", capsize=4,
                           label=metric.replace("_", "-").replace("macro-f1", "macro-F1"))
        if band and metric in band:
            low, high = band[metric]
            ax.axhspan(low, high, color=line[0].get_color(), alpha=0.12)
    ax.set(title=title, xlabel=xlabel, ylabel="score")
    ax.legend()
    return fig


def image_gallery(images, titles, columns: int = 6, title: str | None = None):
    """Small images with a caption each (e.g. given vs suggested label)."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    lines = max([str(t).count("\n") + 1 for t in titles] or [1])
    fontsize = 9 if columns <= 6 else 7.5  # narrow columns: captions must not run into each other
    row_height = BOOK_WIDTH / columns + 0.16 * lines * fontsize / 9 + 0.1
    fig, axes = plt.subplots(rows, columns, figsize=(BOOK_WIDTH, row_height * rows + 0.4),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(caption, fontsize=fontsize)
    if title:
        fig.suptitle(title)
    return fig


def confusion_pair(left, right, titles: tuple[str, str]):
    """Two row-normalised confusion matrices side by side (e.g. baseline vs augmented)."""
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH + 3, 5.2), layout="constrained")
    for ax, matrix, title in zip(axes, (left, right), titles):
        confusion_matrix(matrix, title=title, ax=ax)
    return fig


def _overview_label(experiment: str, setting: str) -> str:
    """``augmentation: the article's set`` for an experiment and its record summary (50% of
    the pool, the default, is left out; label noise drawn once for every seed is named as in
    ``report.setting_label``, without its noise seed: ``noise 40% symmetric, one draw``)."""
    from helpers.report import setting_label

    setting = setting_label(setting.replace("50% of pool, ", ""), noise_seed=False)
    if experiment == "label_noise":  # "label noise: 10%", not "label noise: noise 10%"
        setting = re.sub(r"^noise ", "", setting).replace("one draw", "one\u00a0draw")  # kept whole
    if setting == "augmented":  # the article's augmentation, as against crop+flip or weather
        setting = "the article's set"
    return f"{experiment.replace('_', ' ')}: {setting}"


def overview(frame: pd.DataFrame, baseline_label: str = "baseline"):
    """Every experiment's test-accuracy difference from the baseline (``report.overview``),
    with its 95% confidence interval over seeds as error bars; hollow markers have one seed
    and no interval yet."""
    frame = frame[frame["experiment"] != baseline_label].reset_index(drop=True)
    # long names wrap onto two lines, so the labels on both sides leave the panel its width
    labels = [textwrap.fill(_overview_label(e, s), 34, break_on_hyphens=False)
              for e, s in zip(frame["experiment"], frame["setting"])]
    fig, ax = plt.subplots(figsize=(BOOK_WIDTH, 0.38 * len(frame) + 1.4), layout="constrained")
    y = np.arange(len(frame))
    change = 100 * frame["change"]
    has_ci = frame["change low"].notna()
    low = (change - 100 * frame["change low"]).where(has_ci, 0)
    high = (100 * frame["change high"] - change).where(has_ci, 0)
    ax.errorbar(change[has_ci], y[has_ci], xerr=[low[has_ci], high[has_ci]], fmt="o", capsize=4,
                label="mean difference, 95% CI")
    if (~has_ci).any():  # no legend entry for a marker the figure does not show
        ax.plot(change[~has_ci], y[~has_ci], "o", markerfacecolor="none", color="C0",
                label="one seed: no interval yet")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(frame) - 0.5, -0.5)
    ax.set(xlabel="test accuracy minus the baseline's (points)",
           title="Every recorded experiment against the baseline")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09 - 1.2 / (len(frame) + 3)),
              ncol=2, fontsize=9, frameon=False)  # under the axis, never over a point
    if "article" in frame:  # the article's claim for the same experiment, on the right
        claims = ax.twinx()
        claims.grid(False)
        claims.set_ylim(ax.get_ylim())
        claims.set_yticks(y, [textwrap.fill(f"article: {a}", 26) if a else ""
                              for a in frame["article"]], fontsize=9)
    return fig


def recipe_curves(runs: dict, title: str = "The same seed under each recipe"):
    """Validation accuracy and learning rate per epoch for named runs (``{label: Record}``),
    e.g. seed 0 of the baseline under each recipe: the legacy recipe's early learning-rate
    cuts show up as steps in the right panel while its validation accuracy is still low."""
    fig, axes = plt.subplots(1, 2, figsize=(BOOK_WIDTH, 3.6), layout="constrained")
    for n, (label, record) in enumerate(runs.items()):
        history = record.history
        epochs = np.arange(1, len(history["val_accuracy"]) + 1)
        color = f"C{n}"
        axes[0].plot(epochs, 100 * np.asarray(history["val_accuracy"]), color=color, label=label)
        axes[0].plot(epochs, 100 * np.asarray(history["accuracy"]), color=color, linestyle=":",
                     alpha=0.7)
        axes[1].step(epochs, history["learning_rate"], where="post", color=color, label=label)
    axes[0].set(xlabel="epoch", ylabel="accuracy (%)",
                title="Validation (solid) and training (dotted) accuracy")
    axes[1].set(xlabel="epoch", ylabel="learning rate", yscale="log",
                title="Learning rate after each epoch")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.suptitle(title)
    return fig


# --- Deployment shift -------------------------------------------------------------------------


def corruption_grid(images, corruptions=None, severities=None, seed: int = 0,
                    title: str | None = None):
    """The same few images under each corruption (rows) and severity (columns), with the clean
    images in the first column. ``images``: uint8 (k, 32, 32, 3), k small (2-4 read well);
    ``corruptions`` / ``severities`` default to all of ``helpers.corruptions``; ``seed`` as in
    ``helpers.corruptions.corrupt`` (the figure shows exactly what the shifted test sets hold)."""
    from helpers import corruptions as shift

    corruptions = tuple(shift.CORRUPTIONS if corruptions is None else corruptions)
    severities = tuple(shift.SEVERITIES if severities is None else severities)
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (k, 32, 32, 3), got {images.shape}")

    def strip(batch):  # k images side by side, 2 white pixels apart
        gap = np.full((batch.shape[1], 2, 3), 255, dtype=np.uint8)
        return np.concatenate([part for image in batch for part in (image, gap)][:-1], axis=1)

    columns = 1 + len(severities)
    cell = BOOK_WIDTH / columns
    height = cell * images.shape[1] / strip(images).shape[1]
    fig, axes = plt.subplots(len(corruptions), columns, squeeze=False, layout="constrained",
                             figsize=(BOOK_WIDTH, height * len(corruptions) + 0.6))
    for row, corruption in zip(axes, corruptions):
        cells = [images] + [shift.corrupt(images, corruption, s, seed) for s in severities]
        for ax, batch in zip(row, cells):
            ax.imshow(strip(batch), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        row[0].set_ylabel(corruption.replace("_", " "), rotation=0, ha="right", va="center",
                          fontsize=9)
    for ax, label in zip(axes[0], ["clean"] + [f"severity {s}" for s in severities]):
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def severity_curves(table: pd.DataFrame, title: str = "Test accuracy as the shift gets stronger"):
    """Small multiples, one panel per corruption: accuracy (%) against corruption severity
    (0 = the clean test set), one line per configuration, with the 95% confidence interval of
    the mean over seeds as a band (none for a single seed). ``table``: ``shift.severity_table``."""
    corruptions = list(dict.fromkeys(table["corruption"]))
    columns = 5
    rows = -(-len(corruptions) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(BOOK_WIDTH + 1, 2.3 * rows + 0.8),
                             sharex=True, sharey=True, layout="constrained")
    axes = np.atleast_1d(axes).ravel()
    palette = dict(zip(dict.fromkeys(table["configuration"]), sns.color_palette()))
    for ax, corruption in zip(axes, corruptions):
        part = table[table["corruption"] == corruption]
        for label, color in palette.items():
            line = part[part["configuration"] == label].sort_values("severity")
            ax.plot(line["severity"], 100 * line["accuracy"], marker="o", ms=3, color=color,
                    label=label)
            if line["low"].notna().all():
                ax.fill_between(line["severity"], 100 * line["low"], 100 * line["high"],
                                color=color, alpha=0.15)
        ax.set_title(corruption.replace("_", " "), fontsize=10)
        ax.set_xticks(range(0, 6))
    for ax in axes[len(corruptions):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("accuracy (%)")
    for ax in axes[-columns:]:
        ax.set_xlabel("severity")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(title)
    return fig

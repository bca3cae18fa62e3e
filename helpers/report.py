"""Sentences and tables built from recorded results, so no number on a page is typed by hand.

Every comparison is judged against the seed-to-seed spread of the baseline: a difference is
called real only when it exceeds twice the standard deviation over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.display import Markdown

from helpers import CLASS_NAMES, results
from helpers.evaluate import distinguishable, seed_spread, top_confusions
from helpers.profiles import get_profile
from helpers.results import Record, is_full_model
from helpers.sources import APPROX_WEIGHTS_NOTE, JPEG_COPY_NOTE

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def points(value: float) -> str:
    return f"{100 * value:+.1f} points"


def provenance_note(records: list[Record]) -> Markdown:
    """Where the numbers on this page come from."""
    if not records:
        return Markdown("*No recorded runs for this profile yet: run the chapters first.*")
    # a page may list one run twice (chapter 5's 50% point is the baseline): count it once
    records = list({(r["name"], r["key"]): r for r in records}.values())
    first = records[0].provenance
    machines = sorted({r.provenance["hardware"] for r in records})
    resumed = [r for r in records if r.provenance.get("resumed_at_epochs")]
    seeds = sorted({r.provenance["seed"] for r in records if r.provenance.get("seed") is not None})
    dates = sorted(r.provenance["date"][:10] for r in records)
    packages = first.get("packages", {})
    offline = first["data_source"].startswith(JPEG_COPY_NOTE) or APPROX_WEIGHTS_NOTE in first[
        "weights_source"]
    lines = [
        f"**Provenance.** Profile `{first['profile']}`; seeds {', '.join(map(str, seeds)) or '-'}; "
        f"recorded {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "") + ".",
        f"Data: {first['data_source']}. Weights: {first['weights_source']}.",
        f"Hardware: {'; '.join(machines)}. TensorFlow {packages.get('tensorflow')}, "
        f"Keras {packages.get('keras')}, helpers {packages.get('helpers')}.",
    ]
    if resumed:
        one = len(resumed) == 1
        lines.append(f"{len(resumed)} of these runs {'was' if one else 'were'} interrupted and "
                     f"resumed from {'its' if one else 'their'} last finished epoch (weights, "
                     "optimizer, early-stopping and learning-rate counters restored; the data "
                     "order restarts at the resume).")
    if offline:
        lines.append(f"*{JPEG_COPY_NOTE} + {APPROX_WEIGHTS_NOTE}: neither is the article's source, "
                     "and both are documented to lower accuracy against the original images and "
                     "the official weights.*")
    if first["profile"] == "smoke":
        lines.append("*Smoke profile: a few hundred images and one epoch, so these numbers only "
                     "show that the code runs; they mean nothing about the data.*")
    return Markdown("  \n".join(lines))


def spread(records: list[Record], split: str = "test", metric: str = "accuracy"):
    return seed_spread(r.metric(split, metric) for r in records)


def scores_table(groups: dict[str, list[Record]]) -> pd.DataFrame:
    """Mean ± std over seeds of validation/test accuracy and macro-F1 per group."""
    rows = {}
    for label, records in groups.items():
        row = {"seeds": len(records), "training images": records[0]["train"]["size"]}
        for split in ("validation", "test"):
            for metric, name in METRIC_NAMES.items():
                mean, std = spread(records, split, metric)
                row[f"{split} {name}"] = pct(mean) + (f" ± {100 * std:.1f}" if len(records) > 1 else "")
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def compare(label: str, records: list[Record], baseline: list[Record], split: str = "test",
            metric: str = "accuracy") -> str:
    """One sentence: how ``records`` compare with the baseline, judged against seed spread."""
    value, _ = spread(records, split, metric)
    base, base_std = spread(baseline, split, metric)
    difference = value - base
    name = f"{split} {METRIC_NAMES[metric]}"
    base_text = (f"{pct(base)} ± {100 * base_std:.1f} ({len(baseline)} seeds)"
                 if len(baseline) > 1 else f"{pct(base)} (1 seed)")
    text = (f"{label}: {name} {pct(value)} vs the baseline's {base_text}, "
            f"a difference of {points(difference)}")
    if len(baseline) < 2:
        return text + "; with a single baseline seed there is no spread to judge it against."
    if distinguishable(difference, base_std):
        kind = "gain" if difference > 0 else "loss"
        caveat = "" if len(records) > 1 else " (from a single run: more seeds would confirm it)"
        return text + f", more than twice the seed-to-seed spread: likely a real {kind}{caveat}."
    return text + ", within twice the seed-to-seed spread: not distinguishable from noise."


def comparisons(label: str, records: list[Record], baseline: list[Record]) -> Markdown:
    sentences = [compare(label, records, baseline, split, metric)
                 for split in ("validation", "test") for metric in METRIC_NAMES]
    return Markdown("\n".join(f"- {s}" for s in sentences))


def per_class_table(record: Record, split: str = "validation") -> pd.DataFrame:
    frame = pd.DataFrame(record.metrics[split]["per_class"]).T
    frame["support"] = frame["support"].astype(int)
    return frame.round(3)


def per_class_change(record: Record, baseline: list[Record], split: str = "test",
                     metric: str = "f1") -> np.ndarray:
    """Per-class change of a metric vs the baseline's mean over seeds."""
    base = np.mean([[b.metrics[split]["per_class"][c][metric] for c in CLASS_NAMES]
                    for b in baseline], axis=0)
    return np.array([record.metrics[split]["per_class"][c][metric] for c in CLASS_NAMES]) - base


def predicted_counts(record: Record, split: str = "validation") -> np.ndarray:
    return np.asarray(record.metrics[split]["confusion_matrix"]).sum(axis=0)


def class_findings(record: Record, split: str = "validation") -> Markdown:
    """Which classes struggle, where the confusions go, and which class is over-predicted."""
    per_class = record.metrics[split]["per_class"]
    ranked = sorted(CLASS_NAMES, key=lambda c: per_class[c]["f1"])
    confusions = top_confusions(record.metrics[split]["confusion_matrix"], k=4)
    predicted = predicted_counts(record, split)
    support = np.array([per_class[c]["support"] for c in CLASS_NAMES])
    ratio = predicted / support
    over = CLASS_NAMES[int(ratio.argmax())]
    lines = [
        f"- Hardest classes by {split} F1: " + ", ".join(
            f"{c} ({per_class[c]['f1']:.2f})" for c in ranked[:3])
        + "; easiest: " + ", ".join(f"{c} ({per_class[c]['f1']:.2f})" for c in ranked[-2:]) + ".",
        "- Most frequent confusions (true → predicted): " + ", ".join(
            f"{t} → {p} ({n})" for t, p, n in confusions) + ".",
        f"- Most over-predicted class: {over}, predicted {int(predicted[CLASS_NAMES.index(over)])} "
        f"times for {int(support[CLASS_NAMES.index(over)])} true examples "
        f"({ratio.max():.2f}×).",
    ]
    return Markdown("\n".join(lines))


def sweep(points: dict, baseline: list[Record], x_name: str) -> pd.DataFrame:
    """One row per value of a varied quantity (noise rate, pool fraction…): mean and std over
    its runs of each split's accuracy and macro-F1, the change in test accuracy relative to
    the baseline, and whether that change exceeds twice the baseline's seed spread."""
    base_mean, base_std = spread(baseline, "test", "accuracy")
    rows = []
    for x, records in points.items():
        row = {x_name: x, "training images": records[0]["train"]["size"], "runs": len(records)}
        for split in ("validation", "test"):
            for metric in METRIC_NAMES:
                mean, std = spread(records, split, metric)
                row[f"{split}_{metric}"], row[f"{split}_{metric}_std"] = mean, std
        change = row["test_accuracy"] - base_mean
        row["test accuracy change (points)"] = round(100 * change, 1)
        row["beyond seed spread"] = bool(distinguishable(change, base_std)) if len(baseline) > 1 else None
        rows.append(row)
    return pd.DataFrame(rows)


def split_view(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """The columns of ``sweep`` for one split, renamed for ``plots.metric_vs_x``."""
    return frame.rename(columns={f"{split}_{m}{s}": f"{m}{s}" for m in METRIC_NAMES
                                 for s in ("", "_std")})


def sweep_table(frame: pd.DataFrame, x_name: str) -> pd.DataFrame:
    """``sweep`` formatted for reading: percentages, mean ± std where there are several runs."""
    shown = pd.DataFrame({x_name: frame[x_name], "training images": frame["training images"]})
    for split in ("validation", "test"):
        for metric, name in METRIC_NAMES.items():
            mean, std = frame[f"{split}_{metric}"], frame[f"{split}_{metric}_std"]
            shown[f"{split} {name}"] = [pct(m) + (f" ± {100 * s:.1f}" if s else "")
                                        for m, s in zip(mean, std)]
    shown["test accuracy change (points)"] = frame["test accuracy change (points)"]
    shown["beyond seed spread"] = frame["beyond seed spread"]
    return shown.set_index(x_name)


# What the article reported (its own runs on the original data and weights), for comparison.
ARTICLE_REFERENCE = {
    ("baseline", "50% of pool"): "≈67-68% accuracy",
    ("label_noise", "50% of pool, noise 1%"): "≈2 points below baseline",
    ("label_noise", "50% of pool, noise 10%"): "≈10 points below baseline",
    ("augmentation", "50% of pool, augmented"): "no gain over baseline",
    ("more_data", "100% of pool"): "≈80% accuracy, ≈81% macro-F1",
    ("more_cats_and_dogs", None): "no gain over baseline",
}


def article_reference(name: str, summary: str) -> str:
    return ARTICLE_REFERENCE.get((name, summary), ARTICLE_REFERENCE.get((name, None), ""))


def _groups(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """Training runs on their whole training set, grouped by (experiment, setting) over seeds."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        if is_full_model(record):
            groups.setdefault((record.name, record.get("summary", "")), []).append(record)
    return groups


def overview(records: list[Record]) -> pd.DataFrame:
    """Every recorded training run of the article's chapters, grouped over seeds."""
    rows = []
    for (name, summary), members in _groups(records).items():
        row = {"experiment": name, "setting": summary, "seeds": len(members),
               "training images": members[0]["train"]["size"],
               "noise rate": members[0].config.get("noise_rate", 0.0)}
        for metric, label in METRIC_NAMES.items():
            mean, std = spread(members, "test", metric)
            row[f"test {label}"] = mean
            row[f"test {label} std"] = std
        row["article"] = article_reference(name, summary)
        rows.append(row)
    columns = ["experiment", "setting", "seeds", "training images", "noise rate", "test accuracy",
               "test accuracy std", "test macro-F1", "test macro-F1 std", "article"]
    frame = pd.DataFrame(rows, columns=columns)
    order = ["experiment", "noise rate", "training images"]
    return frame.sort_values(order).drop(columns="noise rate").reset_index(drop=True)


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame[["experiment", "setting", "seeds", "training images"]].copy()
    for label in METRIC_NAMES.values():
        shown[f"test {label}"] = [pct(m) + (f" ± {100 * s:.1f}" if s else "")
                                  for m, s in zip(frame[f"test {label}"], frame[f"test {label} std"])]
    shown["article"] = frame["article"]
    return shown


def article_comparison(records: list[Record]) -> Markdown:
    """For each recorded experiment the article reports on: its number next to ours. Absolute
    scores for the baseline and the 40K run; for data changes, our difference from the baseline
    judged against the baseline's seed spread (``compare``)."""
    groups = _groups(records)
    baseline = groups.get(("baseline", "50% of pool"), [])
    lines = []
    chapter_order = ["baseline", "label_noise", "augmentation", "more_cats_and_dogs", "more_data"]
    ordered = sorted(groups.items(), key=lambda item: (
        chapter_order.index(item[0][0]) if item[0][0] in chapter_order else len(chapter_order),
        item[1][0]["train"]["size"], item[1][0].config.get("noise_rate", 0.0)))
    for (name, summary), members in ordered:
        reference = article_reference(name, summary)
        if not reference:
            continue
        if name in ("baseline", "more_data"):
            accuracy, accuracy_std = spread(members, "test", "accuracy")
            f1, _ = spread(members, "test", "macro_f1")
            several = len(members) > 1
            ours = (f"ours: {pct(accuracy)}" + (f" ± {100 * accuracy_std:.1f}" if several else "")
                    + f" test accuracy, {pct(f1)} macro-F1 ({len(members)} seed"
                    + ("s)." if several else ")."))
            if name == "more_data" and baseline:  # the article's question: does more data help?
                ours += " " + compare("Compared with the baseline", members, baseline)
        elif baseline:
            ours = compare("ours", members, baseline)
        else:
            ours = "ours: no baseline recorded yet to compare with."
        lines.append(f"- **{name.replace('_', ' ')}, {summary}**: the article reports {reference}; "
                     f"{ours}")
    if not lines:
        return Markdown("*None of the runs the article reports on is recorded yet.*")
    return Markdown("\n".join(lines))


def grid_progress(grid) -> pd.DataFrame:
    """One row per planned run of ``grid`` (a list of Experiments): recorded yet or not, and
    for recorded runs their epochs, when the learning rate was first cut, training time, test
    scores and the machines that trained them."""
    return training_table({f"{exp.name.replace('_', ' ')}: {exp.summary()}, seed {exp.seed}":
                           results.load(exp.record_dir()) for exp in grid})


def training_table(runs: dict) -> pd.DataFrame:
    """One row per named run (a Record, or None for a run not recorded yet): how its training
    went next to its test scores. Two runs on different data are only a comparison of the data
    when their schedules went alike; an early learning-rate cut shows up here."""
    rows = {}
    for name, record in runs.items():
        row = {"status": "recorded" if record else "not run yet", "epochs": "",
               "first LR cut": "", "training minutes": "", "test accuracy": "",
               "test macro-F1": "", "trained on": ""}
        if record:
            provenance = record.provenance
            resumed = provenance.get("resumed_at_epochs")
            row.update({
                "epochs": record["epochs"],
                "first LR cut": _first_cut(record.history),
                "training minutes": round(record.history.get("seconds", 0) / 60),
                "test accuracy": pct(record.metric("test", "accuracy")),
                "test macro-F1": pct(record.metric("test", "macro_f1")),
                "trained on": provenance["hardware"]
                + (f" (resumed at epoch {', '.join(map(str, resumed))})" if resumed else ""),
            })
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def chapter_status(profile: str = "full") -> pd.DataFrame:
    """One row per chapter: which profile its committed page was executed with (papermill
    records the parameters in the notebook) and how many of the records it needs exist in
    ``profile``."""
    import nbformat

    from helpers import catalog
    from helpers.run import NOTEBOOK_DIR

    rows = {}
    for chapter in catalog.CHAPTERS:
        notebook = nbformat.read(NOTEBOOK_DIR / f"{chapter}.ipynb", as_version=4)
        shown = notebook.metadata.get("papermill", {}).get("parameters", {}).get("profile", "")
        recorded, needed = catalog.chapter_progress(chapter, profile)
        rows[chapter] = {"page executed with": shown or "not executed",
                         f"{profile} records needed": needed,
                         "recorded": recorded, "missing": needed - recorded}
    return pd.DataFrame.from_dict(rows, orient="index")


def _lr_cuts(history: dict) -> list[int]:
    """0-based indices of the epochs trained at a lower learning rate than the one before."""
    rates = history.get("learning_rate", [])
    return [e for e in range(1, len(rates)) if rates[e] < rates[e - 1] * 0.999]


def first_lr_cut(history: dict) -> int | None:
    """The first epoch (1-based) trained at a lowered learning rate; None if it was never cut."""
    cuts = _lr_cuts(history)
    return cuts[0] + 1 if cuts else None


def _first_cut(history: dict) -> str:
    epoch = first_lr_cut(history)
    if epoch is None:
        return "none"
    return f"epoch {epoch} (train acc {pct(history['accuracy'][epoch - 2])})"


def training_story(record: Record) -> Markdown:
    """How a run's training went, from its history: when it peaked and when the plateau
    callback cut the learning rate (a cut made before the model has learned much leaves it
    crawling for the rest of the run, whatever the data)."""
    history = record.history
    val_loss = history.get("val_loss", [])
    rates = history.get("learning_rate", [])
    epochs = len(val_loss)
    if not epochs:
        return Markdown("*This run has no recorded learning curves.*")
    best = int(np.argmin(val_loss)) + 1
    lines = [f"- {epochs} epochs in {history.get('seconds', 0) / 60:.0f} minutes; the lowest "
             f"validation loss came at epoch {best}, and those weights were kept."]
    profile = get_profile(record["profile"])
    if epochs >= profile.max_epochs and epochs - best < profile.early_stopping_patience:
        # early stopping never fired: the epoch cap ended a run that was still improving
        lines.append(f"- The {epochs}-epoch cap ended the run while the validation loss was "
                     "still falling: early stopping never fired.")
    cuts = _lr_cuts(history)
    if not cuts:
        lines.append(f"- The learning rate stayed at {rates[0]:.0e} throughout." if rates else
                     "- The learning rate was not recorded.")
    else:
        first = cuts[0]  # 0-based index of the first epoch trained at the lower rate
        lines.append(
            f"- The learning rate started at {rates[0]:.0e} and was cut {len(cuts)} time"
            f"{'s' if len(cuts) > 1 else ''}, first for epoch {first + 1}, when training accuracy "
            f"was {pct(history['accuracy'][first - 1])} and validation accuracy "
            f"{pct(history['val_accuracy'][first - 1])}; it ended at {rates[-1]:.0e}.")
    return Markdown("\n".join(lines))

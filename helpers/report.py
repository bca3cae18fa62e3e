"""Sentences and tables built from recorded results, so no number on a page is typed by hand.

Every comparison goes through ``comparison`` (``helpers.evaluate.compare_over_seeds``): seed s
of an experiment is paired with seed s of the baseline, and a difference is called real only
when its 95% confidence interval over seeds excludes zero.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
from IPython.display import Markdown

from helpers import CLASS_NAMES, results
from helpers.evaluate import (Comparison, compare_over_seeds, mean_interval, seed_spread,
                              top_confusions)
from helpers.profiles import get_profile
from helpers.results import Record, is_full_model
from helpers.sources import APPROX_WEIGHTS_NOTE, JPEG_COPY_NOTE

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}

# The book's tables hold sentences (a rule's name, a run's configuration): pandas' default cut
# at 50 characters would end them in "..." on the page. Every chapter imports this module.
pd.set_option("display.max_colwidth", None)


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def join_and(words: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: a list for prose."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def mean_ci(values) -> str:
    """``74.1% [73.0, 75.2]``: the mean of fractions over seeds with its 95% Student-t
    interval in points (no interval with one value)."""
    mean, low, high = mean_interval(list(values))
    return pct(mean) + ("" if np.isnan(low) else f" [{100 * low:.1f}, {100 * high:.1f}]")


def points(value: float) -> str:
    """``+1.2 points`` for a difference of fractions (0.012); two decimals where one would
    print a nonzero difference as ``+0.0``/``-0.0``."""
    return f"{_bound(value)} points"


def source_name(text: str) -> str:
    """The short name of a recorded data or weights source, without machine paths (records
    keep the full text): "JPEG copy of CIFAR-10", "approximate ImageNet weights", …"""
    if text.startswith(JPEG_COPY_NOTE):
        return JPEG_COPY_NOTE
    if text.startswith(APPROX_WEIGHTS_NOTE):
        return APPROX_WEIGHTS_NOTE
    if text.startswith("official Keras ImageNet weights"):
        return "official Keras ImageNet weights"
    if text.startswith("tfds cifar10 (downloaded"):
        return "tfds download of CIFAR-10"
    if text.startswith("tfds cifar10 from"):
        return "CIFAR-10 from a local tfds folder"
    if text.startswith("weights file "):
        return "weights file " + text.rstrip("/").rsplit("/", 1)[-1]
    return text


def provenance_note(records: list[Record]) -> Markdown:
    """Where the numbers on this page come from: profile, seeds, dates, data and weights
    sources (by name; the records keep the paths), recipe, hardware and package versions."""
    from helpers.recipe import LEGACY, get_recipe

    if not records:
        return Markdown("*No recorded runs for this profile yet: run the chapters first.*")
    # a page may list one run twice (chapter 5's 50% point is the baseline): count it once
    records = list({(r["name"], r["key"]): r for r in records}.values())
    first = records[0].provenance
    machines = sorted({r.provenance["hardware"] for r in records})
    resumed = [r for r in records if r.provenance.get("resumed_at_epochs")]
    seeds = sorted({r.provenance["seed"] for r in records if r.provenance.get("seed") is not None})
    # configurations are training runs grouped as the comparisons do (an analysis is none;
    # cross-validation folds train once per setting by design)
    per_config = seed_groups([r for r in records if results.is_full_model(r)
                              and r.provenance.get("seed") is not None])
    uneven = len({frozenset(r["seed"] for r in runs) for runs in per_config.values()}) > 1
    folds = any(r.config.get("cv_folds") for r in records if r.get("kind") == "experiment")
    dates = sorted(r.provenance["date"][:10] for r in records)
    recipes = sorted({results.record_recipe(r) for r in records})
    packages = first.get("packages", {})
    data_name, weights_name = source_name(first["data_source"]), source_name(first["weights_source"])
    offline = data_name == JPEG_COPY_NOTE or weights_name == APPROX_WEIGHTS_NOTE
    lines = [
        f"**Provenance.** Profile `{first['profile']}`; seeds {', '.join(map(str, seeds)) or '-'}"
        + (" (not every configuration has all of them)" if uneven else "")
        + ("; cross-validation fold runs train once per setting" if folds else "") + "; "
        f"recorded {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "") + ".",
        f"Data: {data_name}. Weights: {weights_name}. Recipe: "
        + "; ".join(f"`{r}`, {get_recipe(r).description}" for r in recipes) + ".",
        f"Hardware: {'; '.join(machines)}. TensorFlow {packages.get('tensorflow')}, "
        f"Keras {packages.get('keras')}, helpers {packages.get('helpers')}.",
    ]
    if resumed:
        one = len(resumed) == 1
        lines.append(f"{len(resumed)} of these runs {'was' if one else 'were'} interrupted and "
                     f"resumed from {'its' if one else 'their'} last finished epoch.")
    if recipes == [LEGACY]:  # a page of legacy runs (not a page that compares recipes)
        lines.append(f"*Runs of the legacy recipe `{LEGACY}`: its early learning-rate cuts "
                     "(see *Experimental setup*) make single runs unreliable. They are being "
                     "re-run with the book's recipe and several seeds; this page will show those "
                     "runs once they are recorded.*")
    if offline:
        lines.append(f"*{JPEG_COPY_NOTE} + {APPROX_WEIGHTS_NOTE}: neither is the article's source, "
                     "and both are documented to lower accuracy against the original images and "
                     "the official weights.*")
    if first["profile"] == "smoke":
        lines.append("*Smoke profile: a few hundred images and one epoch, so these numbers only "
                     "show that the code runs; they mean nothing about the data.*")
    return Markdown("  \n".join(lines))


def plus_minus(std: float) -> str:
    """`` ± 0.4`` for a standard deviation of 0.004 (in points, one decimal); `` ± <0.05``
    when it rounds to zero, so that a small spread does not read as none."""
    return f" ± {100 * std:.1f}" if round(100 * std, 1) > 0 else " ± <0.05"


def spread(records: list[Record], split: str = "test", metric: str = "accuracy"):
    return seed_spread(r.metric(split, metric) for r in records)


def scores_table(groups: dict[str, list[Record]]) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of validation/test accuracy and macro-F1 per group
    (the columns with a ± say so in their names)."""
    rows = {}
    for label, records in groups.items():
        row = {"seeds": len(records), "training images": f"{records[0]['train']['size']:,}"}
        for split in ("validation", "test"):
            for metric, name in METRIC_NAMES.items():
                mean, std = spread(records, split, metric)
                row[f"{split} {name}"] = pct(mean) + (plus_minus(std) if len(records) > 1 else "")
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return _label_spread(frame) if any(len(r) > 1 for r in groups.values()) else frame


def _label_spread(frame: pd.DataFrame) -> pd.DataFrame:
    """Name what the ``±`` in a table's score columns is: the standard deviation over seeds
    (the 95% confidence intervals are in the comparisons, not here)."""
    return frame.rename(columns={c: f"{c} (mean ± SD over seeds)" for c in frame.columns
                                 if any(isinstance(v, str) and " ± " in v for v in frame[c])})


def by_seed(records: list[Record], split: str = "test", metric: str = "accuracy") -> dict:
    """{seed: metric} of a group of runs of one configuration."""
    return {r["seed"]: r.metric(split, metric) for r in records}


def comparison(records: list[Record], baseline: list[Record], split: str = "test",
               metric: str = "accuracy") -> Comparison:
    """``records`` minus ``baseline`` over seeds, the book's one rule for "real".

    Paired by seed when both train on the same number of images (same head initialisation
    and data order per seed: noise rates, augmentation, repairs); unpaired (Welch) when the
    training sets differ in size (more data, extra cats and dogs), whose data orders differ.
    """
    sizes = {r["train"]["size"] for r in [*records, *baseline]}
    return compare_over_seeds(by_seed(records, split, metric), by_seed(baseline, split, metric),
                              paired=len(sizes) == 1)


def interval(c: Comparison) -> str:
    """``+1.2 points [+0.3, +2.1]`` (95% CI), or the difference alone when there is none."""
    if not c.has_interval:
        return points(c.difference)
    return f"{points(c.difference)} [{_bound(c.low)}, {_bound(c.high)}]"


def _bound(value: float) -> str:
    """A confidence bound in points: one decimal, or two where one would print a nonzero bound
    as ``+0.0``/``-0.0`` and hide which side of zero it lies on (the verdict depends on it)."""
    shown = f"{100 * value:+.1f}"
    return f"{100 * value:+.2f}" if value and float(shown) == 0 else shown


def _seed_count(c: Comparison) -> str:
    if isinstance(c.n, tuple):
        return f"{c.n[0]} vs {c.n[1]} seeds, {c.test}"
    return f"{c.n} paired seed{'s' if c.n != 1 else ''}, {c.test}"


def verdict_text(c: Comparison) -> str:
    """The verdict of a comparison in words, with the reason."""
    if not c.has_interval:
        return "not enough seeds for a confidence interval yet, so no verdict"
    if not c.real:
        return f"the {c.confidence:.0%} confidence interval includes zero: no detectable difference"
    return f"the {c.confidence:.0%} confidence interval excludes zero: a real {c.verdict}"


def compare(label: str, records: list[Record], baseline: list[Record], split: str = "test",
            metric: str = "accuracy", against: str = "the baseline") -> str:
    """One sentence: how ``records`` compare with the baseline (``comparison``), which the
    sentence calls ``against``. When the comparison is paired, both means are over the seeds
    the two have in common, so the difference quoted is the difference of the numbers quoted."""
    c = comparison(records, baseline, split, metric)
    ours, base = by_seed(records, split, metric), by_seed(baseline, split, metric)
    name = f"{split} {METRIC_NAMES[metric]}"
    if isinstance(c.n, tuple):  # unpaired: all runs on both sides
        value, base_value = np.mean(list(ours.values())), np.mean(list(base.values()))
        versus = f"{against}'s {pct(base_value)} ({len(base)} seeds)"
    else:
        common = sorted(set(ours) & set(base))
        value = np.mean([ours[s] for s in common])
        base_value = np.mean([base[s] for s in common])
        seeds = ", ".join(map(str, common))
        versus = (f"{against}'s {pct(base_value)} on the same seed{'s' if len(common) > 1 else ''}"
                  f" ({seeds})")
    return (f"{label}: {name} {pct(value)} vs {versus}; difference {interval(c)} "
            f"({_seed_count(c)}): {verdict_text(c)}.")


def comparisons(label: str, records: list[Record], baseline: list[Record],
                against: str = "the baseline") -> Markdown:
    """``compare`` on validation and test, accuracy and macro-F1, as a bulleted list."""
    sentences = [compare(label, records, baseline, split, metric, against)
                 for split in ("validation", "test") for metric in METRIC_NAMES]
    return Markdown("\n".join(f"- {s}" for s in sentences))


def per_class_table(record: Record, split: str = "validation") -> pd.DataFrame:
    """Precision, recall and F1 per class (three decimals) and the class's images."""
    frame = pd.DataFrame(record.metrics[split]["per_class"]).T
    for column in ("precision", "recall", "f1"):
        frame[column] = [f"{v:.3f}" for v in frame[column]]
    frame["support"] = [f"{int(v):,}" for v in frame["support"]]
    return frame.rename_axis("class")


def per_class_change(records: Record | list[Record], baseline: list[Record],
                     split: str = "test", metric: str = "f1") -> np.ndarray:
    """Per-class change of a metric, shape (10,) in ``CLASS_NAMES`` order: the mean over
    ``records`` (one run, or several seeds of one configuration) minus the baseline's mean
    over its seeds."""
    def mean(runs):
        return np.mean([[r.metrics[split]["per_class"][c][metric] for c in CLASS_NAMES]
                        for r in runs], axis=0)

    return mean([records] if isinstance(records, Record) else records) - mean(baseline)


def predicted_counts(record: Record, split: str = "validation") -> np.ndarray:
    return np.asarray(record.metrics[split]["confusion_matrix"]).sum(axis=0)


def class_summary(record: Record, split: str = "validation", prefix: str = "classes"
                  ) -> dict[str, str]:
    """Which classes struggle, where the confusions go, and which class is over-predicted, as
    values for a chapter's markdown (``glue``): ``{prefix}_split``, ``{prefix}_hardest`` (the
    three lowest F1, e.g. "cat (0.51), dog (0.58), bird (0.67)"), ``{prefix}_easiest`` (the two
    highest, highest first), ``{prefix}_confusions`` (the four most frequent, "dog → cat (342),
    …", counts of images), ``{prefix}_over`` (the class predicted most often relative to its
    support), ``{prefix}_over_predicted`` and ``{prefix}_over_true`` (image counts) and
    ``{prefix}_over_ratio`` ("1.58×")."""
    per_class = record.metrics[split]["per_class"]
    ranked = sorted(CLASS_NAMES, key=lambda c: per_class[c]["f1"])
    confusions = top_confusions(record.metrics[split]["confusion_matrix"], k=4)
    predicted = predicted_counts(record, split)
    support = np.array([per_class[c]["support"] for c in CLASS_NAMES])
    ratio = predicted / support
    over = int(ratio.argmax())

    def listed(classes):
        return ", ".join(f"{c} ({per_class[c]['f1']:.2f})" for c in classes)

    return {f"{prefix}_split": split, f"{prefix}_hardest": listed(ranked[:3]),
            f"{prefix}_easiest": listed(ranked[::-1][:2]),
            f"{prefix}_confusions": ", ".join(f"{t} → {p} ({n})" for t, p, n in confusions),
            f"{prefix}_over": CLASS_NAMES[over],
            f"{prefix}_over_predicted": f"{int(predicted[over]):,}",
            f"{prefix}_over_true": f"{int(support[over]):,}",
            f"{prefix}_over_ratio": f"{ratio.max():.2f}×"}


def sweep(points: dict, baseline: list[Record], x_name: str) -> pd.DataFrame:
    """One row per value of a varied quantity (noise rate, pool fraction…): mean and std over
    its runs of each split's accuracy and macro-F1, and the change in test accuracy relative
    to the baseline with its 95% confidence interval and verdict (``comparison``)."""
    rows = []
    for x, records in points.items():
        row = {x_name: x, "training images": records[0]["train"]["size"], "runs": len(records)}
        for split in ("validation", "test"):
            for metric in METRIC_NAMES:
                mean, std = spread(records, split, metric)
                row[f"{split}_{metric}"], row[f"{split}_{metric}_std"] = mean, std
                _, low, high = mean_interval(r.metric(split, metric) for r in records)
                row[f"{split}_{metric}_ci"] = (high - low) / 2  # NaN with a single run
        if {r.key for r in records} == {r.key for r in baseline}:  # the reference point itself
            row["test accuracy change (points)"] = 0.0
            row["change_low"] = row["change_high"] = np.nan
            row["test accuracy change, 95% CI"], row["verdict"] = "(baseline)", ""
        else:
            c = comparison(records, baseline)
            row["test accuracy change (points)"] = round(100 * c.difference, 1)
            row["change_low"], row["change_high"] = c.low, c.high
            row["test accuracy change, 95% CI"] = interval(c)
            row["verdict"] = c.verdict
        rows.append(row)
    return pd.DataFrame(rows)


def split_view(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """The columns of ``sweep`` for one split, renamed for ``plots.metric_vs_x``."""
    return frame.rename(columns={f"{split}_{m}{s}": f"{m}{s}" for m in METRIC_NAMES
                                 for s in ("", "_std", "_ci")})


def baseline_band(baseline: list[Record], split: str = "test") -> dict:
    """{metric: (low, high)}: the 95% confidence interval of the baseline's mean, for the
    shaded band of ``plots.metric_vs_x`` (empty with fewer than two seeds)."""
    band = {}
    for metric in METRIC_NAMES:
        _, low, high = mean_interval(r.metric(split, metric) for r in baseline)
        if not np.isnan(low):
            band[metric] = (low, high)
    return band


def sweep_table(frame: pd.DataFrame, x_name: str) -> pd.DataFrame:
    """``sweep`` formatted for reading: percentages, mean ± std where there are several runs."""
    if x_name == "noise rate":  # the chapter passes rates in percent, for the figure's axis
        x_values = [f"{v:g}%" for v in frame[x_name]]
    elif "fraction" in x_name:
        x_values = [f"{v:.0%}" for v in frame[x_name]]
    else:
        x_values = list(frame[x_name])
    shown = pd.DataFrame({x_name: x_values,
                          "training images": [f"{n:,}" for n in frame["training images"]]})
    for split in ("validation", "test"):
        for metric, name in METRIC_NAMES.items():
            mean, std = frame[f"{split}_{metric}"], frame[f"{split}_{metric}_std"]
            shown[f"{split} {name}"] = [pct(m) + (plus_minus(s) if s else "")
                                        for m, s in zip(mean, std)]
    # paired with the baseline's runs of the same seeds (Welch when the sizes differ)
    shown["test accuracy change vs baseline, 95% CI"] = frame["test accuracy change, 95% CI"]
    shown["verdict"] = frame["verdict"]
    return _label_spread(shown.set_index(x_name))


def article_reference(name: str, summary: str) -> str:
    """What the article reported for an experiment and setting (``ARTICLE_CLAIMS``), or ""."""
    return "; ".join(words for _, _, n, setting, _, _, words in ARTICLE_CLAIMS
                     if n == name and setting in (None, summary))


def repairs_noisy_labels(record: Record) -> bool:
    """A run trained on a noisy set that it repairs (drops, relabels or down-weights some of
    its images: confident learning's repairs). Its reference is the noisy run of the same seed
    (Chapter 6), not the clean baseline."""
    config = record.config
    return bool(config.get("noise_rate")) and any(
        config.get(key) for key in ("drop_ids", "relabel", "sample_weights"))


_UNSET = {"noise_kind": "symmetric", "sample_weights": [], "noise_seed": None}  # older records


def _without_seeds(config: dict) -> str:
    """A run's configuration without its training seed and noise seed (and profile), as a
    comparable string: two runs with the same one differ only in those seeds."""
    keys = (set(config) | set(_UNSET)) - {"seed", "noise_seed", "profile"}
    return json.dumps({k: config.get(k, _UNSET.get(k)) for k in sorted(keys)}, sort_keys=True)


def _groups(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """Training runs on their whole training set, grouped over seeds by ``seed_groups``;
    repairs of noisy labels (``repairs_noisy_labels``) left out."""
    return seed_groups([r for r in records if is_full_model(r) and not repairs_noisy_labels(r)])


def seed_groups(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """Training runs grouped by (experiment, setting) over their training seeds:
    ``{(name, summary): [records]}``.

    Label noise comes two ways: drawn anew for each training seed (no noise seed in the
    setting: chapter 2), or one draw shared by every training seed (``noise seed N``: chapter
    6). The run of training seed N with its own draw has the very labels of noise seed N, so it
    also joins that fixed-draw group (which is then sorted by seed); a group of own draws left
    with no run of its own is dropped."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        groups.setdefault((record.name, record.get("summary", "")), []).append(record)
    fixed = {(_without_seeds(r.config), r.config["noise_seed"]): key
             for key, members in groups.items() for r in members
             if r.config.get("noise_rate") and r.config.get("noise_seed") is not None}
    joins = {key: [r for r in members if r.config.get("noise_rate")
                   and r.config.get("noise_seed") is None
                   and (_without_seeds(r.config), r["seed"]) in fixed]
             for key, members in groups.items()}
    for key, joined in joins.items():
        for r in joined:
            target = fixed[(_without_seeds(r.config), r["seed"])]
            groups[target] = sorted([*groups[target], r], key=lambda run: run["seed"])
        if joined and len(joined) == len(groups[key]):
            del groups[key]
    return groups


def overview(records: list[Record]) -> pd.DataFrame:
    """Every recorded training run, grouped over seeds, except fold runs and the repairs of
    noisy labels (``_groups``), which chapter 6 compares with their noisy runs."""
    rows = []
    groups = _groups(records)
    for (name, summary), members in groups.items():
        row = {"experiment": name, "setting": summary, "seeds": len(members),
               "training images": members[0]["train"]["size"],
               "noise rate": members[0].config.get("noise_rate", 0.0)}
        for metric, label in METRIC_NAMES.items():
            mean, std = spread(members, "test", metric)
            row[f"test {label}"] = mean
            row[f"test {label} std"] = std
        base = groups.get(("baseline", "50% of pool"), [])
        c = comparison(members, base) if base and name != "baseline" else None
        row["change"] = c.difference if c else np.nan
        row["change low"], row["change high"] = (c.low, c.high) if c else (np.nan, np.nan)
        row["verdict"] = c.verdict if c else ""
        row["article"] = article_reference(name, summary)
        rows.append(row)
    columns = ["experiment", "setting", "seeds", "training images", "noise rate", "test accuracy",
               "test accuracy std", "test macro-F1", "test macro-F1 std", "change", "change low",
               "change high", "verdict", "article"]
    frame = pd.DataFrame(rows, columns=columns)
    order = ["experiment", "noise rate", "training images"]
    return frame.sort_values(order).drop(columns="noise rate").reset_index(drop=True)


def setting_label(summary: str, noise_seed: bool = True) -> str:
    """A record's setting (``Experiment.summary``) as the overview shows it: label noise drawn
    once for every seed says so and names its kind, ``noise 40%, noise seed 0`` ->
    ``noise 40% symmetric, one draw, noise seed 0``, ``noise 40% class-conditional (per
    pair), noise seed 0`` -> ``noise 40% class-conditional (pairs), one draw, noise seed 0``
    (without ``, noise seed 0`` when ``noise_seed`` is False)."""
    label = summary.replace(" class-conditional (per pair)", " class-conditional (pairs)")
    one_draw = re.search(r"(noise \d+%)((?: class-conditional \(pairs\))?), noise seed (\d+)",
                         label)
    if one_draw:
        kind = one_draw.group(2) or " symmetric"
        seed = f", noise seed {one_draw.group(3)}" if noise_seed else ""
        label = label.replace(one_draw.group(0), f"{one_draw.group(1)}{kind}, one draw{seed}")
    return label


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame[["experiment", "setting", "seeds"]].copy()  # sizes: in the setting's share
    shown["setting"] = [setting_label(s) for s in shown["setting"]]
    shown["experiment"] = [e.replace("_", " ") for e in shown["experiment"]]
    for label in METRIC_NAMES.values():
        shown[f"test {label}"] = [pct(m) + (plus_minus(s) if s else "")
                                  for m, s in zip(frame[f"test {label}"], frame[f"test {label} std"])]
    shown["test accuracy change vs baseline, 95% CI"] = [
        "" if np.isnan(d) else interval(Comparison(d, lo, hi, 0, ""))
        for d, lo, hi in zip(frame["change"], frame["change low"], frame["change high"])]
    shown["verdict"] = frame["verdict"]
    shown["article"] = frame["article"]
    return _label_spread(shown.set_index("experiment"))


# The article's claims, one row each: (label, experiment, setting, what it measures, the
# article's value as a fraction or a difference in accuracy, the article's words). "absolute":
# our mean test accuracy over seeds; "change": our test accuracy minus the baseline's
# (``comparison``: paired by seed where the training sets have one size, Welch otherwise).
ARTICLE_CLAIMS = [
    ("baseline", "baseline (half the pool)", "baseline", "50% of pool", "absolute", 0.675,
     "≈67–68% accuracy"),
    ("whole_accuracy", "whole pool: accuracy", "more_data", "100% of pool", "absolute", 0.80,
     "≈80% accuracy"),
    ("whole_f1", "whole pool: macro-F1", "more_data", "100% of pool", "absolute F1", 0.81,
     "≈81% macro-F1"),
    ("noise1", "1% label noise", "label_noise", "50% of pool, noise 1%", "change", -0.02,
     "≈2 points below the baseline"),
    ("noise10", "10% label noise", "label_noise", "50% of pool, noise 10%", "change", -0.10,
     "≈10 points below the baseline"),
    ("augmentation", "the article's augmentation", "augmentation", "50% of pool, augmented",
     "change", 0.0, "no gain"),
    ("cats_dogs", "+1,000 cats and +1,000 dogs", "more_cats_and_dogs", None, "change", 0.0,
     "no gain"),
    ("doubling", "doubling the data (whole pool)", "more_data", "100% of pool", "change", 0.13,
     "≈+13 points"),
]


def article_table(records: list[Record]) -> pd.DataFrame:
    """The article's claims (``ARTICLE_CLAIMS``) next to the book's recorded runs, one row per
    claim: the article's number, ours (mean test accuracy or macro-F1 with the 95% CI of the
    mean, or the change in points against the baseline with its 95% CI), the seeds behind it,
    the verdict of a change (``comparison``), and whether the article's value lies inside our
    95% interval ("yes"/"no"; "no interval yet" with a single seed; "not recorded yet" where
    the runs are missing)."""
    groups = _groups(records)
    baseline = groups.get(("baseline", "50% of pool"), [])
    rows = {}
    for _, label, name, setting, kind, value, words in ARTICLE_CLAIMS:
        members = next((runs for (n, summary), runs in groups.items()
                        if n == name and (setting is None or summary == setting)), [])
        row = {"the article": words, "ours": "not recorded yet", "seeds": len(members),
               "verdict": "", "article's value inside our 95% CI": "not recorded yet"}
        if members and kind.startswith("absolute"):
            metric = "macro_f1" if kind == "absolute F1" else "accuracy"
            mean, low, high = mean_interval(r.metric("test", metric) for r in members)
            has = not np.isnan(low)
            row["ours"] = pct(mean) + (f" [{pct(low)}, {pct(high)}]" if has else "")
            row["article's value inside our 95% CI"] = (
                ("yes" if low <= value <= high else "no") if has else "no interval yet")
        elif members and baseline:
            c = comparison(members, baseline)
            row["ours"], row["verdict"] = interval(c), c.verdict
            row["article's value inside our 95% CI"] = (
                ("yes" if c.low <= value <= c.high else "no") if c.has_interval
                else "no interval yet")
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "claim"
    return table


def article_summary(table: pd.DataFrame) -> dict[str, str]:
    """``article_table``'s cells as values for a page's markdown (``glue``), per claim key of
    ``ARTICLE_CLAIMS``: ``article_{key}`` (ours), ``article_{key}_seeds``,
    ``article_{key}_verdict`` (``verdict_phrase`` of a change; "" for absolute scores, "no run
    yet" without runs) and
    ``article_{key}_inside`` (whether the article's value lies inside our 95% CI)."""
    out = {}
    for key, label, *_ in ARTICLE_CLAIMS:
        row = table.loc[label]
        out[f"article_{key}"] = row["ours"]
        out[f"article_{key}_seeds"] = str(row["seeds"])
        out[f"article_{key}_verdict"] = (VERDICT_PHRASES.get(row["verdict"], "")
                                         if row["seeds"] else "no run yet")
        out[f"article_{key}_inside"] = row["article's value inside our 95% CI"]
    return out


def grid_progress(grid) -> pd.DataFrame:
    """One row per planned run of ``grid`` (a list of Experiments): recorded yet or not, and
    for recorded runs their epochs, when the learning rate was first cut, training time, test
    scores and the machines that trained them."""
    return training_table({f"{exp.name.replace('_', ' ')}: {exp.summary()}, seed {exp.seed}":
                           results.load(exp.record_dir()) for exp in grid})


def training_table(runs: dict) -> pd.DataFrame:
    """One row per named run (a Record, or None for a run not recorded yet): how its training
    went next to its test scores. A "status" column appears only while some run is not
    recorded; the hardware is in the page's provenance note, and minutes depend on how busy the
    machine was. Two runs on different data are only a comparison of the data when their
    schedules went alike; an early learning-rate cut shows up here."""
    rows = {}
    for name, record in runs.items():
        row = {"status": "recorded" if record else "not run yet", "epochs": "",
               "first LR cut": "", "training minutes": "", "test accuracy": "",
               "test macro-F1": "", "resumed at epoch": ""}
        if record:
            provenance = record.provenance
            resumed = provenance.get("resumed_at_epochs")
            row.update({
                "epochs": record["epochs"],
                "first LR cut": _first_cut(record.history),
                "training minutes": round(results.wall_seconds(record) / 60),
                "test accuracy": pct(record.metric("test", "accuracy")),
                "test macro-F1": pct(record.metric("test", "macro_f1")),
                "resumed at epoch": ", ".join(map(str, resumed)) if resumed else "",
            })
        rows[name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    if len(frame) and (frame["status"] == "recorded").all():
        frame = frame.drop(columns="status")  # says nothing when every run is recorded
    return frame


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
    # the last epoch trained at the full rate, and its training accuracy (what the callback saw)
    return f"after epoch {epoch - 1} (train acc {pct(history['accuracy'][epoch - 2])})"


def training_summary(record: Record, prefix: str = "training") -> dict[str, str]:
    """How a run's training went, from its history, as values for a chapter's markdown
    (``glue``): ``{prefix}_epochs``, ``{prefix}_minutes`` (wall time of training and
    validation), ``{prefix}_best_epoch`` (lowest validation loss, whose weights were kept),
    ``{prefix}_end`` (what ended the run: early stopping, or the profile's epoch cap while the
    validation loss was still falling), ``{prefix}_lr_start`` and ``{prefix}_lr_end`` (learning
    rates, "1e-04"), and ``{prefix}_lr_cuts``: how often the plateau callback cut the learning
    rate and, for the first cut, the last epoch trained at the higher rate with its training and
    validation accuracy ("not once" without a cut). A cut made before the model has learned much
    leaves it crawling for the rest of the run, whatever the data. Raises ValueError for a run
    without learning curves."""
    history = record.history
    val_loss = history.get("val_loss", [])
    rates = history.get("learning_rate", [])
    epochs = len(val_loss)
    if not epochs:
        raise ValueError(f"{record.path.name} has no recorded learning curves: retrain it "
                         "(delete its record folder and run the experiment again)")
    best = int(np.argmin(val_loss)) + 1
    profile = get_profile(record["profile"])
    if epochs >= profile.max_epochs and epochs - best < profile.early_stopping_patience:
        end = (f"the profile's {epochs}-epoch cap ended it while the validation loss was still "
               "falling: early stopping never fired")
    else:
        end = (f"early stopping ended it after {epochs - best} epochs without a lower "
               "validation loss")
    cuts = _lr_cuts(history)
    if not cuts:
        cut_text = "not once"
    else:
        first = cuts[0]  # 0-based index of the first epoch trained at the lower rate
        cut_text = (f"{len(cuts)} time{'s' if len(cuts) > 1 else ''}, first after epoch "
                    f"{first}, when training accuracy was {pct(history['accuracy'][first - 1])}"
                    f" and validation accuracy {pct(history['val_accuracy'][first - 1])}")
    return {f"{prefix}_epochs": str(epochs),
            f"{prefix}_minutes": f"{results.wall_seconds(record) / 60:.0f}",
            f"{prefix}_best_epoch": str(best), f"{prefix}_end": end,
            f"{prefix}_lr_start": f"{rates[0]:.0e}" if rates else "not recorded",
            f"{prefix}_lr_end": f"{rates[-1]:.0e}" if rates else "not recorded",
            f"{prefix}_lr_cuts": cut_text}


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` where myst-nb is installed (the book build), else nothing: a notebook
    opened in Colab still runs. Markdown cells show the value with ``{glue:text}`name```."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # pragma: no cover - Colab without the book's build tools
        myst_glue = None
    if myst_glue is not None:
        myst_glue(name, value, display=display)
    if hasattr(value, "savefig"):  # a figure: shown once, by glue, not again by the backend
        import matplotlib.pyplot as plt

        if myst_glue is None and display:
            from IPython.display import display as show

            show(value)
        plt.close(value)


def _per_seed(values, fmt) -> str:
    return " / ".join(fmt(v) for v in values)


def _by_recipe(runs: list[Record]) -> dict[str, list[Record]]:
    """{recipe: its runs, by seed}, recipes in the order they first appear."""
    groups: dict[str, list[Record]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        groups.setdefault(results.record_recipe(run), []).append(run)
    return groups


def recipe_table(runs: list[Record]) -> pd.DataFrame:
    """One row per recipe of the seed study (``catalog.recipe_study``): per seed its epochs,
    first learning-rate cut and test accuracy; the mean ± std of test accuracy over seeds with
    the 95% confidence interval of the mean; minutes per run (training steps + validation,
    on a machine that may have been shared with other work); trainable parameters."""
    rows = {}
    for name, members in _by_recipe(runs).items():
        accuracy = [r.metric("test", "accuracy") for r in members]
        mean, std = seed_spread(accuracy)
        _, low, high = mean_interval(accuracy)
        minutes = [results.wall_seconds(r) / 60 for r in members]
        rows[name] = {
            "seeds": _per_seed([r["seed"] for r in members], str),
            "epochs": _per_seed([r["epochs"] for r in members], str),
            "first epoch at a lower LR": _per_seed([first_lr_cut(r.history) for r in members],
                                             lambda e: "none" if e is None else str(e)),
            "test accuracy": _per_seed(accuracy, pct),
            "mean ± std": pct(mean) + (f" ± {100 * std:.2f}" if len(members) > 1 else ""),
            "95% CI": "" if np.isnan(low) else f"{pct(low)} to {pct(high)}",
            "minutes": _per_seed(minutes, lambda m: f"{m:.0f}"),
            "trainable parameters": f"{members[0]['train']['trainable_params']:,}",
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "recipe"
    return frame


_RECIPE_SHORT = {"v1-bn0.999": "legacy", "v2-bn0.99": "bn099", "v2-frozen-bn": "frozen",
                 "probe-bn0.99-reset": "bn099_reset", "probe-frozen-bn-reset": "frozen_reset"}


def recipe_runs(study: list[Record], seed: int = 0) -> dict[str, Record]:
    """{recipe name: run} of one seed of the seed study's compared recipes (no probes)."""
    from helpers.recipe import STUDY

    runs = {results.record_recipe(r): r for r in study if r["seed"] == seed}
    return {name: runs[name] for name in STUDY if name in runs}


def recipe_findings(study: list[Record], early: int = 10) -> dict[str, str]:
    """The numbers the recipe choice rests on, formatted for ``glue``: per recipe (short
    names ``legacy``, ``bn099``, ``frozen``) the mean and std of test accuracy over seeds, the
    mean minutes per run, the slowest run's epochs, how many seeds had their learning rate
    cut before epoch ``early``; per probe the change of seed 0's test accuracy when the
    pretrained batch-norm statistics are reset; and the Welch comparison of the two candidate
    recipes. Keys end in ``_mean``, ``_std``, ``_minutes``, ``_epochs``, ``_early_cuts``,
    ``_reset_change`` and ``candidates_difference``."""
    from helpers.recipe import CURRENT

    groups = _by_recipe(study)
    out = {"chosen": CURRENT, "early_epoch": str(early)}
    for name, members in groups.items():
        short = _RECIPE_SHORT.get(name, name)
        accuracy = [r.metric("test", "accuracy") for r in members]
        mean, std = seed_spread(accuracy)
        minutes = np.mean([results.wall_seconds(r) / 60 for r in members])
        cuts = [first_lr_cut(r.history) for r in members]
        out |= {f"{short}_mean": pct(mean), f"{short}_std": f"{100 * std:.2f}",
                f"{short}_seeds": str(len(members)), f"{short}_minutes": f"{minutes:.0f}",
                f"{short}_epochs": str(max(r["epochs"] for r in members)),
                f"{short}_early_cuts": str(sum(c is not None and c < early for c in cuts))}
    first_seed = min(r["seed"] for r in study)
    seed0 = {name: members[0] for name, members in _by_recipe(
        [r for r in study if r["seed"] == first_seed]).items()}
    for probe, base in (("probe-bn0.99-reset", "v2-bn0.99"),
                        ("probe-frozen-bn-reset", "v2-frozen-bn")):
        if probe in seed0 and base in seed0:
            change = (seed0[probe].metric("test", "accuracy")
                      - seed0[base].metric("test", "accuracy"))
            out[f"{_RECIPE_SHORT[base]}_reset_change"] = points(change)
    if "v2-bn0.99" in groups and "v2-frozen-bn" in groups:
        c = compare_over_seeds(by_seed(groups["v2-bn0.99"]), by_seed(groups["v2-frozen-bn"]),
                               paired=False)
        out["candidates_difference"] = interval(c)
        out["candidates_verdict"] = c.verdict
    return out


def findings(frame: pd.DataFrame) -> dict[str, str]:
    """What the recorded experiments found so far, from ``overview``'s frame, for ``glue``:
    ``configurations`` (experiments compared with the baseline), ``with_interval`` (those with
    enough seeds for a confidence interval), and ``gains``, ``losses``, ``no_difference`` and
    ``no_verdict_yet``: comma-separated experiment labels with their difference and interval
    (``none`` when empty)."""
    compared = frame[frame["experiment"] != "baseline"]
    label = lambda row: f"{row['experiment'].replace('_', ' ')} ({setting_label(row['setting'])})"  # noqa: E731
    groups = {"gains": [], "losses": [], "no_difference": [], "no_verdict_yet": []}
    names = {"gain": "gains", "loss": "losses", "no detectable difference": "no_difference",
             "not enough seeds": "no_verdict_yet"}
    for _, row in compared.iterrows():
        c = Comparison(row["change"], row["change low"], row["change high"], 0, "")
        groups[names[row["verdict"]]].append(f"{label(row)}: {interval(c)}")
    out = {"configurations": str(len(compared)),
           "with_interval": str(int(compared["change low"].notna().sum()))}
    return out | {key: "; ".join(items) if items else "none" for key, items in groups.items()}


def recorded(profile: str | None = None, recipe: str | None = None) -> list[Record]:
    """Every complete record of ``profile`` made with ``recipe`` (default: ``$DCAI_RECIPE`` or
    the book's recipe), so that one page never mixes recipe versions."""
    from helpers.recipe import get_recipe

    wanted = get_recipe(recipe).name
    profile = get_profile(profile).name
    return [r for r in results.iter_records(profile) if results.record_recipe(r) == wanted]


# --- "In short": the values each chapter's closing summary pastes with glue ----------------

VERDICT_PHRASES = {"gain": "a real gain", "loss": "a real loss",
                   "no detectable difference": "no detectable difference",
                   "not enough seeds": "a single seed so far, so no verdict yet"}


def verdict_phrase(c: Comparison) -> str:
    """A comparison's verdict as a phrase for a sentence."""
    return VERDICT_PHRASES[c.verdict]


def change_summary(prefix: str, records: list[Record], baseline: list[Record]) -> dict[str, str]:
    """``{prefix}_change`` (difference in test accuracy with its 95% CI) and
    ``{prefix}_verdict`` of ``records`` against the baseline (``comparison``)."""
    c = comparison(records, baseline)
    return {f"{prefix}_change": interval(c), f"{prefix}_verdict": verdict_phrase(c)}


def baseline_summary(runs: list[Record]) -> dict[str, str]:
    """The baseline's test accuracy over seeds (mean, 95% CI of the mean), and its hardest
    class by mean test F1."""
    mean, low, high = mean_interval(r.metric("test", "accuracy") for r in runs)
    f1 = {c: np.mean([r.metrics["test"]["per_class"][c]["f1"] for r in runs])
          for c in CLASS_NAMES}
    hardest = sorted(f1, key=f1.get)[:2]
    return {"baseline_seeds": str(len(runs)), "baseline_mean": pct(mean),
            "baseline_ci": "not available" if np.isnan(low) else f"{pct(low)} to {pct(high)}",
            "baseline_hardest": " and ".join(hardest)}


def _mean_steps(by_x: dict, split: str = "test") -> list[tuple]:
    """``(x, next x, change of mean accuracy)`` between neighbouring points of a sweep
    (``by_x``: ``{x: runs}``), in the order of x."""
    xs = sorted(by_x)
    means = [np.mean([r.metric(split, "accuracy") for r in by_x[x]]) for x in xs]
    return list(zip(xs, xs[1:], np.diff(means)))


def trend_summary(prefix: str, by_x: dict, label, split: str = "test") -> dict[str, str]:
    """``{prefix}_trend``: whether the mean test accuracy of a sweep (``by_x``: ``{x: runs}``,
    in the order of x) falls at every step, rises at every step, or neither, naming the steps
    that go the other way (``label(x)`` names a point): e.g. "falls at every step" or "falls
    overall but rises from 2% to 3% (+0.4 points)"."""
    steps = _mean_steps(by_x, split)
    if not steps:
        return {f"{prefix}_trend": "has a single point"}
    if all(d < 0 for *_, d in steps):
        return {f"{prefix}_trend": "falls at every step"}
    if all(d > 0 for *_, d in steps):
        return {f"{prefix}_trend": "rises at every step"}
    falls = sum(d for *_, d in steps) < 0  # last mean below the first
    overall = "falls overall" if falls else "rises overall"
    against = [(a, b, d) for a, b, d in steps if (d > 0) == falls]
    turns = ", ".join(f"{'rises' if d > 0 else 'falls'} from {label(a)} to {label(b)} "
                      f"({points(d)})" for a, b, d in against)
    return {f"{prefix}_trend": f"{overall} but {turns}"}


def step_summary(prefix: str, by_x: dict, label, split: str = "test") -> dict[str, str]:
    """``{prefix}_steps``: the change of mean test accuracy between neighbouring points of a
    sweep (``by_x``: ``{x: runs}``; ``label(x)`` names a point), in the order of x, e.g.
    "10,000 → 20,000 images: +4.6 points; 20,000 → 30,000 images: +2.1 points". Means only:
    no interval, so no verdict ("a single point" when there is nothing to step)."""
    steps = [f"{label(a)} → {label(b)}: {points(d)}" for a, b, d in _mean_steps(by_x, split)]
    return {f"{prefix}_steps": "; ".join(steps) if steps else "a single point"}


def sweep_summary(prefix: str, points: dict, baseline: list[Record], label) -> dict[str, str]:
    """``{prefix}_changes``: for each point of a sweep (``{x: runs}``), ``label(x)``, its
    change in test accuracy with the 95% CI and the verdict, separated by semicolons. Points
    without an interval (a single seed) carry no verdict each; one closing remark says so
    ("1%: +0.1 points; 10%: -3.9 points [-5.0, -2.8] (a real loss); 1% has a single seed so
    far, so no verdict yet")."""
    parts, single = [], []
    for x, records in points.items():
        c = comparison(records, baseline)
        if c.has_interval:
            parts.append(f"{label(x)}: {interval(c)} ({verdict_phrase(c)})")
        else:
            parts.append(f"{label(x)}: {interval(c)}")
            single.append(label(x))
    text = "; ".join(parts)
    if single:
        names = ", ".join(single[:-1]) + " and " + single[-1] if len(single) > 1 else single[0]
        subject, verb = (("every point", "has") if len(single) == len(parts)
                         else (names, "has" if len(single) == 1 else "have"))
        text += f"; {subject} {verb} a single seed so far, so no verdict yet"
    return {f"{prefix}_changes": text}

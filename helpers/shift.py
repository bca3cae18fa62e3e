"""The deployment-shift chapter's analysis: how the recorded runs score on the shifted test
sets (``helpers.corruptions``), and whether the augmentation that mimics the deployment
condition pays for itself.

Every run's record holds ``record["shift"]["per_corruption"][corruption][severity]`` (accuracy
and macro-F1 on a fixed stratified subset of the test set, made when the run was recorded);
this module only reads them (``with_shift_metrics`` adds them to records made before records
carried them, from the run's cached model).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers import CLASS_NAMES, data, results
from helpers.corruptions import CORRUPTIONS, FAMILIES, SEVERITIES
from helpers.evaluate import Comparison, compare_over_seeds, mean_interval
from helpers.report import interval, join_and, mean_ci, pct, verdict_phrase

MIMICKED_FAMILY = "weather"  # what the deployment-mimicking augmentation trains on
MIMICKED = FAMILIES[MIMICKED_FAMILY]  # snow, frost, fog
HELD_OUT = tuple(c for c in CORRUPTIONS if c not in MIMICKED)  # never seen in training
HARD = (3, 4, 5)  # the severities the chapter's targets average over
FAMILY_OF = {c: family for family, names in FAMILIES.items() for c in names}  # snow -> weather

SCOPES = {  # name -> (corruptions, severities) averaged by ``shifted_accuracy``
    "mimicked shift (snow, frost, fog; severity 3-5)": (MIMICKED, HARD),
    "held-out shifts (blur, noise, digital; severity 3-5)": (HELD_OUT, HARD),
    "all 50 shifted sets": (CORRUPTIONS, SEVERITIES),
}


class MissingShiftMetricsError(ValueError):
    """A record has no shifted-set metrics (made before records carried them)."""


def _cells(record: results.Record) -> dict:
    shift = record.get("shift")
    if not shift:
        raise MissingShiftMetricsError(
            f"{record.path.name} has no shifted-set metrics: it was recorded before records "
            "carried them. Add them from the cached model with "
            "helpers.experiments.add_shift_metrics(experiment)")
    return shift["per_corruption"]


def shifted_accuracy(record: results.Record, corruptions=CORRUPTIONS, severities=SEVERITIES,
                     metric: str = "accuracy") -> float:
    """Mean ``metric`` (a fraction) of one run over the chosen shifted test sets. Raises
    MissingShiftMetricsError for a record without them."""
    cells = _cells(record)
    return float(np.mean([cells[c][str(s)][metric] for c in corruptions for s in severities]))


def by_seed(records: list[results.Record], scope: str | tuple | None = None) -> dict:
    """{seed: accuracy}: on the clean test set when ``scope`` is None, else averaged over the
    shifted sets of ``scope``: a name of ``SCOPES`` or a (corruptions, severities) pair."""
    if scope is None:
        return {r["seed"]: r.metric("test", "accuracy") for r in records}
    corruptions, severities = SCOPES[scope] if isinstance(scope, str) else scope
    return {r["seed"]: shifted_accuracy(r, corruptions, severities) for r in records}


def compare(records: list[results.Record], baseline: list[results.Record],
            scope: str | tuple | None = None) -> Comparison:
    """``records`` minus ``baseline`` (paired by seed: same training images, same head
    initialisation and data order per seed) in clean test accuracy (``scope`` None) or in the
    shifted accuracy of ``scope`` (as in ``by_seed``)."""
    return compare_over_seeds(by_seed(records, scope), by_seed(baseline, scope), paired=True)


def severity_table(groups: dict[str, list[results.Record]]) -> pd.DataFrame:
    """Long table, one row per (configuration, corruption, severity): mean test accuracy over
    seeds with its 95% CI (``low``/``high``; NaN with one seed), fractions. Severity 0 is the
    clean test set."""
    rows = []
    for label, records in groups.items():
        clean = mean_interval(r.metric("test", "accuracy") for r in records)
        for corruption in CORRUPTIONS:
            rows.append((label, corruption, 0, *clean, len(records)))
            for severity in SEVERITIES:
                values = [_cells(r)[corruption][str(severity)]["accuracy"] for r in records]
                rows.append((label, corruption, severity, *mean_interval(values), len(records)))
    return pd.DataFrame(rows, columns=["configuration", "corruption", "severity", "accuracy",
                                       "low", "high", "seeds"])


def per_corruption_table(records: list[results.Record]) -> pd.DataFrame:
    """One configuration's mean test accuracy (%) over seeds: one row per corruption, one
    column per severity and their mean; the first row is the clean test set (its accuracy in
    the ``mean`` column only)."""
    table = severity_table({"runs": records})
    wide = table[table.severity > 0].pivot(index="corruption", columns="severity",
                                           values="accuracy").loc[list(CORRUPTIONS)]
    wide.columns = [f"severity {s}" for s in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    wide = (100 * wide).round(1).map(lambda v: f"{v:.1f}")
    wide.insert(0, "family", [FAMILY_OF[c] for c in wide.index])
    wide.index = [corruption_name(c) for c in wide.index]
    clean = 100 * np.mean([r.metric("test", "accuracy") for r in records])
    top = pd.DataFrame([["", *[""] * (len(wide.columns) - 2), f"{clean:.1f}"]],
                       index=["clean test set"], columns=wide.columns)
    out = pd.concat([top, wide])
    out.index.name = f"test accuracy (%), mean of {len(records)} seeds"
    return out


def comparison_table(groups: dict[str, list[results.Record]],
                     baseline: list[results.Record]) -> pd.DataFrame:
    """Each configuration minus the baseline (paired over seeds), on the clean test set and on
    each scope of ``SCOPES``: the difference in points with its 95% CI, and the verdict."""
    rows = {}
    for label, records in groups.items():
        row = {"seeds": len(records)}
        for scope in (None, *SCOPES):
            c = compare(records, baseline, scope)
            name = "clean test set" if scope is None else scope
            row[name] = f"{interval(c)}: {verdict_phrase(c)}"
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "change vs the baseline (points, 95% CI)"
    return frame


def accuracy_table(groups: dict[str, list[results.Record]]) -> pd.DataFrame:
    """Mean accuracy over seeds (%, with its 95% Student-t interval) of each configuration on
    the clean test set and on each scope of ``SCOPES``: where each one ends up, next to
    ``comparison_table``'s paired changes."""
    rows = {}
    for label, records in groups.items():
        row = {"seeds": len(records)}
        for scope in (None, *SCOPES):
            row["clean test set" if scope is None else scope] = mean_ci(
                by_seed(records, scope).values())
        rows[label] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "test accuracy (%, mean over seeds, 95% CI)"
    return frame


def corruption_name(corruption: str) -> str:
    """``gaussian_noise`` -> ``Gaussian noise``: a corruption's name for prose."""
    return corruption.replace("_", " ").replace("gaussian", "Gaussian")


def gain_by_corruption(groups: dict[str, list[results.Record]], baseline: list[results.Record],
                       severities=HARD) -> pd.DataFrame:
    """Each configuration minus the baseline on every corruption alone (accuracy averaged over
    ``severities``), paired over seeds: one row per corruption (its family and whether the
    deployment-mimicking augmentation imitates it), one column per configuration with the
    difference in points, its 95% CI and the verdict."""
    rows = {}
    for corruption in CORRUPTIONS:
        row = {"family": FAMILY_OF[corruption],
               "imitated": "yes" if corruption in MIMICKED else "held out"}
        for label, records in groups.items():
            c = compare(records, baseline, ((corruption,), severities))
            row[label] = f"{interval(c)}: {verdict_phrase(c)}"
        rows[corruption_name(corruption)] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = (f"change vs the baseline, severity {min(severities)}-{max(severities)} "
                        "(points, 95% CI)")
    return frame


def worst_sets(records: list[results.Record], k: int = 3) -> list[tuple[str, int, float]]:
    """The k shifted sets (corruption, severity, mean accuracy) on which ``records`` score
    lowest."""
    table = severity_table({"runs": records})
    table = table[table.severity > 0].nsmallest(k, "accuracy")
    return [(row.corruption, int(row.severity), float(row.accuracy)) for row in table.itertuples()]


def _rates(matrices) -> np.ndarray:
    """Summed confusion matrices, each row divided by its total: the share of each true class
    given each prediction."""
    total = np.sum([np.asarray(m, dtype=float) for m in matrices], axis=0)
    return total / np.maximum(total.sum(axis=1, keepdims=True), 1)


def shift_confusions(records: list[results.Record], corruption: str, severity: int,
                     k: int = 5) -> pd.DataFrame:
    """What a shift turns images into: the ``k`` mistakes (true class -> predicted class) whose
    share of the true class grows most from the clean test set to ``corruption`` at
    ``severity``, pooled over the seeds of ``records``; shares in %. The clean shares come from
    the whole test set, the shifted ones from the scoring subset (the same images for every
    run)."""
    clean = _rates(r.metrics["test"]["confusion_matrix"] for r in records)
    shifted = _rates(_cells(r)[corruption][str(severity)]["confusion_matrix"] for r in records)
    growth = shifted - clean
    np.fill_diagonal(growth, -np.inf)
    order = np.argsort(growth, axis=None)[::-1][:k]
    rows = [(CLASS_NAMES[i], CLASS_NAMES[j], 100 * clean[i, j], 100 * shifted[i, j])
            for i, j in zip(*np.unravel_index(order, growth.shape))]
    name = f"{corruption_name(corruption)}, severity {severity} (%)"
    frame = pd.DataFrame(rows, columns=["true class", "predicted as", "clean (%)", name]).round(1)
    frame.index = range(1, len(frame) + 1)
    frame.index.name = f"pooled over {len(records)} seed(s)"
    return frame


def scoring_cost(records: list[results.Record]) -> dict[str, float]:
    """Seconds spent generating and scoring the shifted sets per run, against the run's wall
    time (training steps + validation + scoring): mean seconds and mean percentage added."""
    added = [sum(r["shift"]["seconds"].values()) for r in records if r.get("shift")]
    share = [sum(r["shift"]["seconds"].values()) / results.wall_seconds(r) for r in records
             if r.get("shift") and results.wall_seconds(r) > 0]
    return {"seconds": float(np.mean(added)) if added else math.nan,
            "share": float(np.mean(share)) if share else math.nan}


def summary(baseline: list[results.Record], mimic: list[results.Record],
            crop: list[results.Record]) -> dict[str, str]:
    """The values the chapter's closing sentences glue in (names ``shift_*``)."""
    scope_mimic, scope_held, everything = SCOPES
    def mean(records, scope=None) -> str:  # mean accuracy over seeds, as a percentage
        return pct(float(np.mean(list(by_seed(records, scope).values()))))

    worst = worst_sets(baseline, 1)[0]
    out = {
        "shift_clean": mean(baseline), "shift_mimic_base": mean(baseline, scope_mimic),
        "shift_held_base": mean(baseline, scope_held),
        "shift_worst": f"{corruption_name(worst[0])} at severity {worst[1]} ({pct(worst[2])})",
        # where the weather augmentation leaves the model, in accuracy (not change)
        "shift_mimic_abs_clean": mean(mimic), "shift_mimic_abs_mimic": mean(mimic, scope_mimic),
    }
    for prefix, records in (("shift_mimic", mimic), ("shift_crop", crop)):
        for name, scope in (("clean", None), ("on_mimic", scope_mimic), ("on_held", scope_held),
                            ("all", everything)):
            c = compare(records, baseline, scope)
            out[f"{prefix}_{name}"] = interval(c)
            out[f"{prefix}_{name}_verdict"] = verdict_phrase(c)
    held_gains = {c: compare(mimic, baseline, ((c,), HARD)).difference for c in HELD_OUT}
    top = sorted(held_gains, key=held_gains.get, reverse=True)[:3]
    out["shift_mimic_top_held"] = join_and(
        [f"{corruption_name(c)} ({100 * held_gains[c]:+.1f} points)" for c in top])
    from helpers.profiles import SHIFT_SCORING_IMAGES

    profile = baseline[0].profile
    out["shift_profile"] = profile
    out["shift_images_per_set"] = f"{SHIFT_SCORING_IMAGES[profile]:,}"
    out["shift_train_size"] = f"{baseline[0]['train']['size']:,}"
    cost = scoring_cost(baseline + mimic + crop)
    out["shift_cost_seconds"] = f"{cost['seconds']:.0f} s"
    out["shift_cost_share"] = f"{100 * cost['share']:.1f}%"
    return out


def with_shift_metrics(experiments) -> list[results.Record]:
    """The records of ``experiments`` (in order), each with its shifted-set metrics: missing
    runs are trained through the registry, and records made before records carried the metrics
    get them from the run's cached model (``helpers.experiments.add_shift_metrics``)."""
    from helpers.experiments import add_shift_metrics

    out = []
    for n, exp in enumerate(experiments, 1):
        print(f"[{n}/{len(experiments)}] {exp.name} ({exp.summary()}, seed {exp.seed})", flush=True)
        out.append(add_shift_metrics(exp))
    return out


def example_images(profile: str | None = None, classes=("cat", "truck", "horse")) -> np.ndarray:
    """The first test image of each of ``classes`` in ``profile`` (uint8, (k, 32, 32, 3)),
    for pictures."""
    from helpers import class_id
    from helpers.profiles import get_profile

    test = data.make_split(get_profile(profile)).test
    return test.images[[int(np.flatnonzero(test.labels == class_id(c))[0]) for c in classes]]

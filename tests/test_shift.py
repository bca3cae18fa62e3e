"""The deployment-shift chapter's analysis, from hand-made records (no training)."""

import math

import numpy as np
import pytest

from helpers import catalog, corruptions, results, shift
from helpers.experiments import provenance


def record(exp, clean, shifted, seconds=10.0):
    """A record whose every shifted set scores ``shifted(corruption, severity)``."""
    cells = {c: {str(s): {"accuracy": shifted(c, s), "macro_f1": shifted(c, s)}
                 for s in corruptions.SEVERITIES} for c in corruptions.CORRUPTIONS}
    return results.write(exp.record_dir(), {
        "name": exp.name, "key": exp.key(), "profile": exp.profile, "seed": exp.seed,
        "kind": "experiment", "summary": exp.summary(), "config": exp.config(),
        "history": {"loss": [1.0], "seconds": 90.0, "validation_seconds": 10.0}, "epochs": 1,
        "train": {"size": 200},
        "metrics": {"test": {"accuracy": clean, "macro_f1": clean}},
        "shift": {"per_corruption": cells, "corruption_accuracy": 0.0,
                  "images_per_set": 50, "seconds": {"generate": seconds / 2, "predict": seconds / 2}},
        "provenance": provenance(exp.seed, exp.profile, "2 CPU cores")},
        {"test_probs": np.eye(10, dtype=np.float16)})


def _groups():
    seeds = (0, 1, 2)
    base = [record(catalog.baseline("smoke", s), 0.70 + 0.01 * s,
                   lambda c, sev, s=s: 0.70 - 0.08 * sev + 0.01 * s) for s in seeds]
    # imitates the weather: +15 points there, +1 elsewhere, clean unchanged +-0.1
    mimic = [record(catalog.deployment_augmentation("smoke", s), 0.70 + 0.01 * s + 0.001 * (s - 1),
                    lambda c, sev, s=s: 0.70 - 0.08 * sev + 0.01 * s
                    + (0.15 + 0.002 * s if c in shift.MIMICKED else 0.01 + 0.001 * s)) for s in seeds]
    return base, mimic


def test_scoped_accuracy_and_paired_comparisons(results_dir):
    base, mimic = _groups()
    mimic_scope, held_scope, everything = shift.SCOPES
    assert shift.shifted_accuracy(base[0], ["snow"], [1]) == pytest.approx(0.62)
    assert shift.shifted_accuracy(base[0]) == pytest.approx(0.70 - 0.08 * 3)
    gain = shift.compare(mimic, base, mimic_scope)
    assert gain.verdict == "gain" and gain.difference == pytest.approx(0.152)
    assert shift.compare(mimic, base, held_scope).verdict == "gain"
    assert shift.compare(mimic, base).verdict == "no detectable difference"  # clean test set
    table = shift.comparison_table({"weather": mimic}, base)
    assert table.loc["weather", mimic_scope].startswith("+15.2 points [")
    assert table.loc["weather", "clean test set"].endswith("no detectable difference")
    # where each configuration ends up: mean over seeds 0.70, 0.71, 0.72 with its interval
    accuracy = shift.accuracy_table({"baseline": base, "weather": mimic})
    assert accuracy.loc["baseline", "clean test set"].startswith("71.0% [")
    # severities 3-5 of snow, frost and fog: 0.70 - 0.08 * 4 + 0.01 * seed, +15 (+0.2 * seed)
    assert accuracy.loc["weather", mimic_scope].startswith("54.2% [")
    assert list(accuracy["seeds"]) == [3, 3]
    assert shift.corruption_name("gaussian_noise") == "Gaussian noise"
    assert shift.corruption_name("motion_blur") == "motion blur"


def test_tables_of_the_baseline(results_dir):
    base, mimic = _groups()
    wide = shift.per_corruption_table(base)
    assert list(wide.index) == ["clean test set", *[shift.corruption_name(c) for c in corruptions.CORRUPTIONS]]
    assert wide.loc["snow", "severity 1"] == "63.0"  # mean of 62, 63, 64
    assert wide.loc["snow", "family"] == "weather" and wide.loc["fog", "mean"] == "47.0"
    assert wide.loc["clean test set", "mean"] == "71.0" and wide.loc["clean test set", "severity 1"] == ""
    long = shift.severity_table({"baseline": base})
    row = long[(long.corruption == "fog") & (long.severity == 2)].iloc[0]
    assert row.accuracy == pytest.approx(0.55) and row.low < row.accuracy < row.high
    assert shift.worst_sets(base, 1)[0][:2] in [(c, 5) for c in corruptions.CORRUPTIONS]
    summary = shift.summary(base, mimic, mimic)
    assert summary["shift_mimic_on_mimic_verdict"] == "a real gain"
    assert summary["shift_crop_clean_verdict"] == "no detectable difference"
    assert summary["shift_cost_seconds"] == "10 s" and summary["shift_cost_share"] == "10.0%"
    assert summary["shift_profile"] == "smoke" and summary["shift_images_per_set"] == "50"
    assert summary["shift_mimic_abs_mimic"] == "54.2%"  # 0.70 - 0.08 * 4 + 0.01 + 0.152
    assert summary["shift_mimic_all_verdict"] == "a real gain"


def test_gain_by_corruption_pairs_seeds_per_corruption(results_dir):
    base, mimic = _groups()
    table = shift.gain_by_corruption({"weather": mimic}, base)
    assert list(table.index) == [shift.corruption_name(c) for c in corruptions.CORRUPTIONS]
    assert table.loc["snow", "imitated"] == "yes" and table.loc["contrast", "imitated"] == "held out"
    assert table.loc["fog", "weather"].startswith("+15.2 points [")
    assert table.loc["pixelate", "weather"] == "+1.1 points [+0.9, +1.3]: a real gain"
    assert shift.summary(base, mimic, mimic)["shift_mimic_top_held"].count("(+1.1 points)") == 3


def test_a_record_without_shift_metrics_names_the_fix(results_dir):
    exp = catalog.baseline("smoke", 0)
    plain = record(exp, 0.7, lambda c, s: 0.5)
    del plain.data["shift"]
    with pytest.raises(shift.MissingShiftMetricsError, match="add_shift_metrics"):
        shift.shifted_accuracy(plain)
    assert math.isnan(shift.scoring_cost([plain])["seconds"])


def test_shift_confusions_rank_the_mistakes_that_grow(results_dir):
    exp = catalog.baseline("smoke", 0)
    clean_matrix = (np.eye(10, dtype=int) * 10).tolist()
    snowy = np.eye(10, dtype=int) * 10
    snowy[9, 9], snowy[9, 1] = 4, 6  # trucks become automobiles under snow
    rec = record(exp, 0.7, lambda c, s: 0.5)
    rec.data["metrics"]["test"]["confusion_matrix"] = clean_matrix
    rec.data["shift"]["per_corruption"]["snow"]["5"]["confusion_matrix"] = snowy.tolist()
    table = shift.shift_confusions([rec], "snow", 5, k=2)
    first = table.iloc[0]
    assert (first["true class"], first["predicted as"]) == ("truck", "automobile")
    assert first["clean (%)"] == 0 and first["snow, severity 5 (%)"] == 60

"""The ensemble audit of the test labels, on hand-made probabilities (no training)."""

import numpy as np
import pandas as pd
import pytest

from helpers import audit


class FakeRecord:
    def __init__(self, name, probs, ids):
        self.name = name
        self.arrays = {"test_probs": np.asarray(probs, dtype=np.float16), "test_ids": ids}


def test_ensemble_averages_normalised_probabilities_and_checks_the_test_images():
    ids = np.array(["test_00000", "test_00001"])
    a = FakeRecord("a", [[0.9, 0.1], [0.2, 0.8]], ids)
    b = FakeRecord("b", [[0.5, 0.5], [0.4, 0.6]], ids)
    assert np.allclose(audit.ensemble_probs([a, b]), [[0.7, 0.3], [0.3, 0.7]], atol=1e-3)
    with pytest.raises(ValueError):
        audit.ensemble_probs([a, FakeRecord("c", [[1, 0], [0, 1]], ids[::-1])])


def _problem(n=300, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n // classes)
    probs = np.full((len(labels), classes), 0.05)
    probs[np.arange(len(labels)), labels] = 0.9
    wrong = rng.choice(len(labels), 12, replace=False)
    labels = labels.copy()
    labels[wrong] = (labels[wrong] + 1) % classes  # 12 given labels disagree with the models
    probs = probs / probs.sum(axis=1, keepdims=True)
    return labels, probs, wrong


def test_rank_labels_flags_the_disagreements_lowest_quality_first():
    labels, probs, wrong = _problem()
    probs[wrong[0]] = [0.98, 0.01, 0.01] if labels[wrong[0]] != 0 else [0.01, 0.98, 0.01]
    indices = np.arange(len(labels)) + 1000
    flagged = audit.rank_labels(labels, probs, indices)
    assert list(flagged.columns) == ["test_index", "given_label", "suggested_label",
                                     "label_quality"]
    assert set(flagged["test_index"]) == set(wrong + 1000)
    assert flagged["label_quality"].is_monotonic_increasing
    assert flagged["test_index"].iloc[0] == wrong[0] + 1000  # the most certain disagreement


def test_overlap_with_the_published_list_counts_only_scored_images():
    published = pd.DataFrame({"test_index": [1, 2, 3, 50], "validated": [True, False, True, True]})
    counts = audit.overlap([1, 2, 7], evaluated=range(10), published=published)
    assert counts["published_candidates_in_test_set"] == 3  # 50 is not scored
    assert counts["published_validated_in_test_set"] == 2
    assert counts["flagged_in_candidates"] == 2 and counts["flagged_in_validated"] == 1
    assert counts["validated_recall"] == 0.5


def test_ranking_precision_of_the_validated_errors():
    published = pd.DataFrame({"test_index": [4, 9], "validated": [True, True]})
    assert audit.ranking_precision([4, 9, 0, 1], published, range(10)) == pytest.approx(1.0)
    assert audit.ranking_precision([0, 1, 4, 9], published, range(10)) < 1.0
    assert audit.ranking_precision([0, 1], published, [0, 1]) is None


class FakeRun:
    """A member with held-out validation probabilities (what ``choose_auditor`` reads)."""

    def __init__(self, name, val_probs, val_labels):
        self.name = name
        ids = np.array([f"train_{i:05d}" for i in range(len(val_labels))])
        self.arrays = {"validation_probs": np.asarray(val_probs, dtype=np.float16),
                       "validation_labels": val_labels, "validation_ids": ids}

    def get(self, key):
        return {"summary": "fake"}[key]

    def __getitem__(self, key):
        return {"seed": 0}[key]


def test_choose_auditor_prefers_the_auditor_that_finds_planted_errors():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 60)
    sharp = np.full((len(labels), 10), 0.01)
    sharp[np.arange(len(labels)), labels] = 0.91  # knows every true class
    noise = rng.dirichlet(np.ones(10), size=len(labels))  # knows nothing
    runs = [FakeRun("guesser", noise, labels), FakeRun("expert", sharp, labels)]
    choice = audit.choose_auditor(runs)
    table = pd.DataFrame(choice["table"])
    assert len(table) == 3 * len(audit.confident.RULES)  # ensemble + two members, every rule
    assert not choice["auditor"].startswith("guesser")
    best = table.loc[(table["auditor"] == choice["auditor"]) & (table["rule"] == choice["rule"])]
    assert float(best["f1"].iloc[0]) == table["f1"].max() > 0.8
    guesser = table[table["auditor"].str.startswith("guesser")]
    assert guesser["f1"].max() < 0.5  # random probabilities cannot find the planted errors


def test_correction_text_counts_relabelled_and_left_out_validated_errors():
    published = pd.DataFrame({"validated": [True, True, True, False],
                              "human_label": [3, -1, 0, 5]})
    assert audit.correction_text(published) == (
        "3 validated errors: 2 relabelled with the workers' agreed label, 1 left out "
        "(no agreed label)")
    labels, keep = audit.corrected_test_labels(
        np.arange(4), np.array([1, 1, 1, 1]),
        published.assign(test_index=[0, 1, 2, 3]))
    assert list(labels) == [3, 1, 0, 1] and list(keep) == [True, False, True, True]


def test_the_ensemble_has_every_seed_of_each_clean_label_configuration():
    members = audit.ensemble_experiments("smoke")
    assert len(members) == 8 * 3 and len({e.key() for e in members}) == 24
    by_name = {}
    for e in members:
        by_name.setdefault((e.name, e.summary()), []).append(e.seed)
    assert len(by_name) == 8 and all(seeds == [0, 1, 2] for seeds in by_name.values())
    assert {"crop_flip", "crop_only", "flip_only"} <= {name for name, _ in by_name}
    assert not any(e.config().get("noise_rate") for e in members)  # clean labels only
    assert [e.seed for e in audit.ensemble_experiments("smoke", seeds=(0,))] == [0] * 8


def test_rescore_table_can_show_only_the_models_that_change_rank():
    scores = pd.DataFrame({"experiment": ["a_b", "c", "d"], "setting": ["x", "y", "z"],
                           "seed": [0, 0, 1], "original": [0.80, 0.79, 0.70],
                           "corrected": [0.79, 0.795, 0.70],
                           "rank (original)": [1, 2, 3], "rank (corrected)": [2, 1, 3]})
    full = audit.rescore_table(scores)
    assert list(full.index) == ["a b", "c", "d"]
    assert full["accuracy (original labels)"].iloc[0] == "80.00%"
    changed = audit.rescore_table(scores, changed_only=True)
    assert list(changed.index) == ["a b", "c"]
    assert audit.rescore_table(scores.iloc[2:], changed_only=True).empty
    # a broken tie: e shared rank 1 with f and drops to 2; f keeps its rank but is shown
    tie = pd.DataFrame({"experiment": ["f", "e", "g"], "setting": ["x", "y", "z"],
                        "seed": [0, 0, 0], "original": [0.80, 0.80, 0.70],
                        "corrected": [0.80, 0.79, 0.70],
                        "rank (original)": [1, 1, 3], "rank (corrected)": [1, 2, 3]})
    broken = audit.rescore_table(tie, changed_only=True)
    assert list(broken.index) == ["f", "e"]
    assert list(broken["rank (original)"] != broken["rank (corrected)"]) == [False, True]

"""Grading, rule choice and repair arithmetic of the confident-learning chapter, on hand-made
arrays (no training)."""

import math

import numpy as np
import pytest

from helpers import confident, report

#                 0  1  2  3  4  5
TRUE = np.array([0, 1, 2, 3, 4, 5])
GIVEN = np.array([0, 1, 2, 3, 9, 8])  # the last two labels are wrong
NOISE = GIVEN != TRUE


def test_grade_against_the_injected_mask():
    flagged = np.array([True, True, False, False, True, False])
    g = confident.grade(flagged, NOISE)
    assert g["caught"] == 1 and g["flagged"] == 3 and g["injected"] == 2
    assert g["precision"] == pytest.approx(1 / 3) and g["recall"] == pytest.approx(1 / 2)
    assert g["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert confident.grade(np.zeros(6, bool), NOISE)["precision"] == 0.0


def test_expected_detection_equals_grading_when_probabilities_are_certain():
    flagged = np.array([True, True, False, False, True, False])
    expected = confident.expected_detection(flagged, NOISE.astype(float))
    graded = confident.grade(flagged, NOISE)
    for key in ("precision", "recall", "f1"):
        assert expected[key] == pytest.approx(graded[key])
    assert expected["expected_errors"] == 2


def test_choose_rule_never_needs_the_mask_and_prefers_the_higher_expected_f1():
    p_wrong = np.array([0.9, 0.8, 0.1, 0.1, 0.05, 0.05])
    rules = {"few": np.array([1, 0, 0, 0, 0, 0], bool), "right": np.array([1, 1, 0, 0, 0, 0], bool),
             "many": np.ones(6, bool)}
    assert confident.choose_rule(rules, p_wrong) == "right"
    # ties go to the first rule listed
    assert confident.choose_rule({"a": rules["right"], "b": rules["right"]}, p_wrong) == "a"


def test_average_precision_of_a_perfect_and_a_reversed_ranking():
    quality = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2])  # the two wrong labels lowest
    assert confident.ranking_quality(quality, NOISE)["average_precision"] == pytest.approx(1.0)
    assert confident.ranking_quality(-quality, NOISE)["average_precision"] < 0.5
    assert math.isnan(confident.ranking_quality(quality, np.zeros(6, bool))["average_precision"])
    assert confident.ranking_quality(quality, NOISE)["best_f1"] == pytest.approx(1.0)
    # reversed, the best cut flags everything: precision 2/6, recall 1, F1 0.5
    assert confident.ranking_quality(-quality, NOISE)["best_f1"] == pytest.approx(0.5)


def test_temperature_sharpens_probabilities_that_are_too_flat():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (4000, 10))
    sharp = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in sharp])  # calibrated by construction
    flat = confident.calibrate(sharp, 3.0)  # the same ranking, far less confident
    t = confident.fit_temperature(flat, labels)
    assert t == pytest.approx(1 / 3, rel=0.15)
    assert np.allclose(confident.calibrate(flat, t).sum(axis=1), 1)


def test_relabel_threshold_is_chosen_on_validation_precision():
    # confidence 0.9 .. 0.5; the two least confident guesses are wrong
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 0, 0, 1, 1])
    assert confident.relabel_threshold(probs, labels, target=0.9) == pytest.approx(0.7)
    assert confident.relabel_threshold(probs, labels, target=0.6) == pytest.approx(0.55)
    assert confident.relabel_threshold(probs, 1 - labels, target=0.9) is None  # none good enough


def test_repair_plans_and_their_label_accounting():
    ids = np.array([f"train_{i}" for i in range(6)])
    calibrated = np.full((6, 10), 0.01)
    calibrated[np.arange(6), TRUE] = 0.91  # the models are right, confidently...
    calibrated[1] = 0.1  # ...except on image 1: flat, so not confident enough to relabel
    flags = np.array([False, True, False, False, True, True])
    plans = confident.repair_plans(ids, GIVEN, flags, calibrated, threshold=0.5)
    assert plans["drop_ids"] == ("train_1", "train_4", "train_5")
    assert plans["relabel"] == (("train_4", 4), ("train_5", 5))
    assert dict(plans["weights"]) == {"train_1": 0.1, "train_4": 0.01, "train_5": 0.01}

    pruned = confident.label_accounting(GIVEN, TRUE, drop=flags)
    assert pruned["size"] == 3 and pruned["right_after"] == 1.0
    assert pruned["dropped_wrong"] == 2 and pruned["dropped_right"] == 1
    relabelled = confident.label_accounting(GIVEN, TRUE, new_labels=np.array([0, 7, 2, 3, 4, 5]))
    assert relabelled["fixed"] == 2 and relabelled["broken"] == 1
    assert relabelled["right_before"] == pytest.approx(4 / 6)
    assert relabelled["right_after"] == pytest.approx(5 / 6)
    weighted = confident.label_accounting(GIVEN, TRUE, weights=np.array([1, 1, 1, 1, 0, 0.5]))
    assert weighted["right_after"] == pytest.approx(4 / 4.5)
    assert weighted["weight_off_wrong"] == pytest.approx(1.5)


def test_recovered_fraction_with_its_interval_over_seeds():
    clean = {0: 0.80, 1: 0.81, 2: 0.79}
    noisy = {0: 0.60, 1: 0.61, 2: 0.59}
    repaired = {0: 0.70, 1: 0.72, 2: 0.68}  # per seed: 0.5, 0.55, 0.45
    r = confident.recovered_fraction(clean, noisy, repaired)
    assert r["mean"] == pytest.approx(0.5)
    assert r["low"] < 0.5 < r["high"]
    assert confident.recovered_fraction(clean, {0: 0.81, 1: 0.6, 2: 0.5}, repaired) is None
    one = confident.recovered_fraction({0: 0.8}, {0: 0.6}, {0: 0.7})
    assert one["mean"] == pytest.approx(0.5) and math.isnan(one["low"])


def test_choose_repair_by_mean_validation_accuracy():
    validation = {"noisy": {0: 0.6, 1: 0.62}, "pruned": {0: 0.65, 1: 0.61},
                  "relabelled": {0: 0.7, 1: 0.5}}
    assert confident.choose_repair(validation) == "pruned"


def test_settings_cover_the_issue():
    names = {s.name for s in confident.SETTINGS}
    assert {"symmetric10", "symmetric40", "pairs40"} <= names
    assert len(confident.seeds("full")) >= 3 and len(confident.seeds("quick")) >= 3
    assert confident.folds("full") >= 4 and confident.folds("smoke") >= 2
    assert confident.setting("pairs40").kind == "pairs"
    with pytest.raises(ValueError):
        confident.setting("nope")


def test_a_page_can_plan_the_training_seeds_recorded_so_far(results_dir):
    """``training_seeds`` narrows the clean baselines and noisy runs to those seeds, the
    default plans all of ``seeds(profile)``, and a seed outside them is refused by name."""
    s = confident.setting("pairs40")
    k = confident.folds("smoke")
    every = confident.planned(s, "smoke")
    first = confident.planned(s, "smoke", training_seeds=[0])
    n = len(confident.seeds("smoke"))
    # per seed: a clean baseline, a noisy run and three repairs not configured yet
    assert len(every) == n * 5 + k + 1 and len(first) == 5 + k + 1
    assert {label for label, _ in first} - {label for label, _ in every} == set()
    assert [label for label, _ in first if ", seed 1" in label] == []
    with pytest.raises(ValueError, match="choose one or more of 0, 1"):
        confident.planned(s, "smoke", training_seeds=[7])
    with pytest.raises(ValueError, match="choose one or more"):
        confident.clean_up(s, "smoke", training_seeds=[])
    for wrong in ("[0]", [True], [0.0], True):
        with pytest.raises(ValueError, match="a list of integers"):
            confident.clean_up(s, "smoke", training_seeds=wrong)
    assert confident.planned(s, "smoke", training_seeds=0) == first
    # per setting: a dict looked up by the setting's name; a repairing setting needs its entry
    per_setting = {"pairs40": [0], "symmetric10": [0, 1]}
    assert confident.planned(s, "smoke", training_seeds=per_setting) == first
    assert len(confident.planned("symmetric10", "smoke", per_setting)) == 2 * 5 + k + 1
    with pytest.raises(ValueError, match="no entry for 'symmetric40'"):
        confident.clean_up("symmetric40", "smoke", training_seeds=per_setting)
    with pytest.raises(ValueError, match="choose one or more"):
        confident.planned(s, "smoke", training_seeds={"pairs40": [7]})
    detection_only = confident.planned("symmetric02", "smoke", training_seeds=per_setting)
    assert len(detection_only) == k + 1  # it trains no seeds, so it needs no entry
    table = confident.progress("smoke", [confident.setting(n) for n in per_setting], per_setting)
    assert list(table["records needed"]) == [5 + k + 1, 2 * 5 + k + 1]
    assert not results_dir.exists()  # planning and refusing train nothing


@pytest.mark.needs_data
def test_smoke_end_to_end_detection_setting_is_planned_recorded_and_idempotent(results_dir):
    """The detection-only setting in smoke, from an empty registry: ``planned`` lists the fold
    runs and the analysis as missing, ``clean_up`` trains and records them, ``planned`` then
    finds all of them, and a second call reads the same analysis record back."""
    s = confident.setting("symmetric02")
    before = confident.planned(s, "smoke")
    assert len(before) == confident.folds("smoke") + 1 and not any(done for _, done in before)
    first = confident.clean_up(s, "smoke")
    assert all(done for _, done in confident.planned(s, "smoke"))
    again = confident.clean_up(s, "smoke")
    assert again.record.key == first.record.key
    detection = first.analysis["detection"]
    assert detection["rule"] in confident.RULES
    assert set(detection["rules"]) == set(confident.RULES)
    assert detection["injected"] == round(0.02 * detection["training_images"])
    assert first.record.arrays["flags"].sum() == detection["rules"][detection["rule"]][
        "graded"]["flagged"]
    table = confident.fold_training_table([first])  # the fold runs clean_up kept
    assert list(table.columns) == [f"{s.label}: fold runs"]
    assert table.loc["runs"].iloc[0] == str(confident.folds("smoke"))
    assert set(confident.fold_training_summary([first])) == {
        "symmetric02_fold_full_rate", "symmetric02_fold_accuracy_then", "symmetric02_fold_kept"}


def test_fold_training_table_ranges_over_runs():
    class Run(dict):
        def __init__(self, rates, val_accuracy, val_loss):
            super().__init__()
            self.history = {"loss": [1.0] * len(rates), "learning_rate": rates,
                            "val_accuracy": val_accuracy, "val_loss": val_loss}

    folds = [Run([1e-4, 1e-4, 1e-5, 1e-5], [0.40, 0.50, 0.52, 0.51], [2, 1.5, 1.4, 1.45]),
             Run([1e-4, 1e-4, 1e-4, 1e-5], [0.45, 0.55, 0.56, 0.56], [2, 1.5, 1.3, 1.31])]
    clean = [Run([1e-4] * 3, [0.7, 0.75, 0.76], [1, 0.9, 0.8])]  # never cut: full rate to the end
    cleanup = confident.Cleanup(confident.setting("symmetric40"), None, clean, {},
                                {"analysis": {}, "profile": "smoke"}, folds)
    table = confident.fold_training_table([cleanup])
    fold_column = table["40% symmetric: fold runs"]
    assert fold_column["full learning rate until epoch"] == "2–3"
    assert fold_column["validation accuracy then"] == "50.0–56.0%"
    assert fold_column["validation accuracy of the kept weights"] == "52.0–56.0%"
    assert table["clean baseline (no noise)"]["full learning rate until epoch"] == "3"
    glued = confident.fold_training_summary([cleanup])
    assert glued["symmetric40_fold_full_rate"] == "2–3" and glued["clean_kept"] == "76.0%"


class FakeRecord(dict):
    """Just enough of a results.Record for the analysis: arrays, a seed, metrics."""

    def __init__(self, seed=0, arrays=None, accuracy=None):
        super().__init__(seed=seed, name="fake", epochs=20 + seed)
        self.arrays = arrays or {}
        self.accuracy = accuracy or {}
        self.key = f"fake-{id(self)}"

    def metric(self, split, name):
        return self.accuracy[split]


def _fold_records(seed, n=400, folds=4, noise=0.3):
    """K fake fold runs on a noisy training set whose models mostly know the true class."""
    rng = np.random.default_rng(seed)
    true = np.tile(np.arange(10), n // 10)
    mask = rng.random(n) < noise
    given = np.where(mask, (true + rng.integers(1, 10, n)) % 10, true)
    probs = np.full((n, 10), 0.02)
    probs[np.arange(n), true] += 0.6 + 0.2 * rng.random(n)
    probs /= probs.sum(axis=1, keepdims=True)
    val_labels = np.tile(np.arange(10), 20)
    val = np.full((200, 10), 0.03)
    guess = np.where(rng.random(200) < 0.85, val_labels, (val_labels + 1) % 10)
    val[np.arange(200), guess] += 0.2 + 0.6 * rng.random(200)
    val /= val.sum(axis=1, keepdims=True)
    parts = np.array_split(rng.permutation(n), folds)
    common = {"train_ids": np.array([f"train_{i:05d}" for i in range(n)]),
              "train_given_labels": given, "train_true_labels": true, "train_noise_mask": mask,
              "validation_probs": val, "validation_labels": val_labels}
    return [FakeRecord(seed, {**common, "holdout_index": idx, "holdout_probs": probs[idx]})
            for idx in parts]


def test_analysis_from_fake_fold_runs_to_the_page_tables():
    s = confident.setting("pairs40")
    first = confident.analyse_folds(_fold_records(0))
    graded = confident.grade(first.flags, first.oof.noise_mask)
    assert graded["f1"] > 0.8  # the fake models know the true class: flags are good
    assert first.threshold is not None and first.plans["relabel"]
    assert first.accounting()["relabelled"]["fixed"] > first.accounting()["relabelled"]["broken"]

    def runs(offset):
        return [FakeRecord(seed, accuracy={"test": 0.6 + offset + 0.01 * seed,
                                           "validation": 0.6 + offset + 0.005 * seed})
                for seed in (0, 1, 2)]
    clean = runs(0.2)
    candidates = {"noisy": runs(0.0), "pruned": runs(0.1), "relabelled": runs(0.05),
                  "weighted": runs(-0.01)}
    candidates["pruned"][0].accuracy["test"] += 0.005  # so the differences vary over seeds
    clean[1].accuracy["test"] += 0.004
    analysis = confident._summarise(s, first, clean, candidates, k=4)
    assert analysis["recommended"] == "pruned"
    assert analysis["noise_cost"]["verdict"] == "loss"
    assert analysis["repairs"]["pruned"]["recovered"]["mean"] == pytest.approx(0.5, abs=0.02)
    import json

    analysis = json.loads(json.dumps(analysis))  # as the record stores it
    cleanup = confident.Cleanup(s, first, clean, candidates, {"analysis": analysis})
    table = confident.repairs_table(cleanup)
    assert table.loc["flags dropped", "recommended (best validation)"] == "yes"
    assert table.loc["flags down-weighted", "recommended (best validation)"] == ""
    assert table.loc["flags dropped", "verdict"] in ("gain", "no detectable difference")
    assert table.loc["flags down-weighted", "labels right"].endswith("(weighted)")
    assert table.loc["flags dropped", "validation accuracy"] == "70.50%"  # 0.70 + 0.005 * mean seed
    # a repair that changed no label reuses the noisy runs: the table says so, with no verdict
    same = confident.Cleanup(s, first, clean, {**candidates, "relabelled": candidates["noisy"]},
                             {"analysis": analysis})
    row = confident.repairs_table(same).loc["confident flags relabelled"]
    assert row["test vs noisy, 95% CI"] == "identical to no repair" and row["verdict"] == ""
    assert confident.detection_table([cleanup]).shape[1] == 1
    assert len(confident.rules_table(cleanup)) == len(confident.RULES)
    glued = confident.summary([cleanup])
    assert glued["pairs40_recommended"] == "flags dropped"
    assert glued["pairs40_best_recovered"].startswith(("49%", "50%", "51%"))
    assert glued["seeds_shown"] == "training seeds 0, 1 and 2"
    acc = first.accounting()
    assert glued["pairs40_relabel_fixed"] == f"{acc['relabelled']['fixed']:,}"
    assert glued["pairs40_pruned_images"] == f"{acc['pruned']['size']:,}"
    assert glued["pairs40_pruned_verdict"] in ("a real gain", "no detectable difference")
    assert glued["pairs40_weighted_change"].startswith("-1.0 points")  # 0.59 vs 0.60 each seed
    sep = confident.separation(first.quality, first.oof.noise_mask)
    assert glued["pairs40_top_share"] == report.pct(sep["top_precision"])
    assert confident.summary([same])["pairs40_relabelled_verdict"] == "identical to no repair"
    assert confident.seeds_text([0]) == "training seed 0"
    assert glued["pairs40_seeds"] == "training seeds 0, 1 and 2"
    assert confident.repairs_heading(cleanup).startswith(
        "**40% class-conditional (pairs)**, training seeds 0, 1 and 2: the noise changed")
    assert confident.repairs_heading(cleanup).endswith("runs of the same seeds.")
    # settings recorded to different seeds say so, most seeds first
    fewer = confident.Cleanup(confident.setting("symmetric10"), first, clean, candidates,
                              {"analysis": {**analysis, "seeds": [0]}})
    assert (confident.seeds_shown([fewer, cleanup]) ==
            "training seeds 0, 1 and 2 for 40% class-conditional (pairs), and training seed 0 "
            "for 10% symmetric")
    assert confident.seeds_shown([cleanup, same]) == "training seeds 0, 1 and 2"
    assert glued["pairs40_noisy_epochs"] == "21"  # seeds 0, 1, 2: 20, 21, 22 epochs
    rules = confident.rules_table(cleanup)
    best = rules["F1 (mask)"].astype(float).max()
    assert glued["pairs40_hindsight_f1"] == f"{best:.2f}"
    assert glued["pairs40_hindsight_rule"] in confident.RULES.values()
    assert glued["pairs40_rule"] == confident.RULES[first.rule]


def test_recovered_share_says_why_it_is_missing():
    one_seed = {"difference": -0.05, "low": math.nan, "high": math.nan, "n": 1,
                "verdict": "not enough seeds"}
    within = {"difference": -0.004, "low": -0.01, "high": 0.002, "n": 3,
              "verdict": "no detectable difference"}
    assert confident.recovered_text(None, one_seed).startswith("not computed yet, as one seed")
    # two seeds whose differences do not vary also get no CI, but not for want of seeds
    flat = {"difference": -0.05, "low": math.nan, "high": math.nan, "n": 2,
            "verdict": "not enough seeds"}
    assert confident.recovered_text(None, flat).startswith("not computed, as the noise's cost has no CI")
    assert confident.recovered_text(None, within) == (
        "not computed, as the noise's cost has a CI that includes zero")
    assert confident.recovered_text({"mean": 0.5, "low": 0.2, "high": 0.8}) == "50% [20%, 80%]"


def test_separation_grades_the_ranking_against_the_mask():
    quality = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95])
    mask = np.array([True, False, True, False, False, False, False, False, False, False])
    sep = confident.separation(quality, mask, share=0.2)
    assert sep["top_precision"] == 0.5 and sep["base_rate"] == 0.2  # lowest two: 0.1 (wrong), 0.2
    assert confident.separation(quality, mask, share=0.3)["top_precision"] == pytest.approx(2 / 3)
    assert math.isnan(confident.separation(quality, mask, share=0.0)["top_precision"])


def test_the_detector_is_chosen_on_clean_validation_and_graded_on_the_mask(results_dir):
    s = confident.setting("symmetric40")
    history = {"loss": [1.0] * 3, "learning_rate": [1e-4, 1e-4, 1e-5],
               "val_accuracy": [0.4, 0.5, 0.5], "val_loss": [2.0, 1.5, 1.6]}
    plain, sharp = _fold_records(0), _fold_records(0)
    labels = plain[0].arrays["validation_labels"]
    better = np.full((len(labels), 10), 0.01)
    better[np.arange(len(labels)), labels] = 0.91  # every fold model right on validation
    for record in sharp:
        record.arrays = {**record.arrays, "validation_probs": better}
    for record in plain + sharp:
        record.history = history
    trials = [confident.DetectorTrial(s, False, plain, confident.analyse_folds(plain)),
              confident.DetectorTrial(s, "crop_flip", sharp, confident.analyse_folds(sharp))]
    assert trials[1].validation_log_loss < trials[0].validation_log_loss
    assert trials[1].validation_accuracy == 1.0 > trials[0].validation_accuracy
    assert confident.choose_detector(trials) is trials[1]
    assert confident.choose_detector(trials[:1]) is trials[0]
    table = confident.detectors_table([trials])
    assert list(table.columns) == ["40% symmetric: no augmentation", "40% symmetric: crop + flip"]
    assert list(table.loc["detector chosen (lowest validation log loss; no mask)"]) == ["no", "yes"]
    assert table.loc["full learning rate until epoch"].tolist() == ["2", "2"]
    glued = confident.detectors_summary([trials])
    assert glued["symmetric40_detector_chosen"] == "crop + flip"
    graded = confident.grade(trials[1].detection.flags, trials[1].detection.oof.noise_mask)
    assert glued["symmetric40_crop_flip_f1"] == f"{graded['f1']:.2f}"
    assert glued["symmetric40_plain_val_accuracy"] == report.pct(trials[0].validation_accuracy)
    assert float(glued["symmetric40_crop_flip_hindsight_f1"]) >= graded["f1"] - 0.005
    rule = next(r for r, name in confident.RULES.items()
                if name == glued["symmetric40_crop_flip_hindsight_rule"])
    d = trials[1].detection
    assert glued["symmetric40_crop_flip_hindsight_f1"] == \
        f"{confident.grade(d.flags_by_rule[rule], d.oof.noise_mask)['f1']:.2f}"
    acc = trials[1].detection.accounting()
    assert glued["symmetric40_crop_flip_relabel_fixed"] == f"{acc['relabelled']['fixed']:,}"
    assert table.loc["flags dropped: images kept (labels right)", "40% symmetric: crop + flip"] \
        == f"{acc['pruned']['size']:,} ({report.pct(acc['pruned']['right_after'])})"
    assert confident.detector_runs([trials]) == sharp  # the chapter's own folds are listed elsewhere
    # planning lists the K fold runs of every other detector and trains nothing
    planned = confident.planned_detectors("pairs40", "smoke")
    assert len(planned) == confident.folds("smoke") and not any(done for _, done in planned)
    assert all("crop+flip" in label and "class-conditional" in label for label, _ in planned)
    with pytest.raises(ValueError, match="choose from False, 'crop_flip'"):
        confident._detector(s, "weather", "smoke")
    assert not results_dir.exists()

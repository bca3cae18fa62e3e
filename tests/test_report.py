"""Sentences and tables of the results overview, from hand-made records (no training)."""

import numpy as np
import pytest

from helpers import CLASS_NAMES, catalog, confident, report, results, scheduler
from helpers.experiments import provenance


def record(exp, accuracy, hardware="2 CPU cores", resumed=None):
    prov = provenance(exp.seed, exp.profile, hardware)
    if resumed:
        prov["resumed_at_epochs"] = resumed
    metrics = {split: {"accuracy": accuracy, "macro_f1": accuracy - 0.01}
               for split in ("validation", "test")}
    return results.write(exp.record_dir(), {
        "name": exp.name, "key": exp.key(), "profile": exp.profile, "seed": exp.seed,
        "kind": "experiment", "summary": exp.summary(), "config": exp.config(),
        "history": {"loss": [1.0, 0.9], "seconds": 600.0}, "epochs": 2,
        "train": {"size": 200}, "metrics": metrics, "provenance": prov},
        {"test_probs": np.eye(10, dtype=np.float16)})


def test_grid_progress_marks_recorded_and_missing_runs(results_dir):
    grid = catalog.article_grid("smoke")
    record(grid[0], 0.70, resumed=[46])
    table = report.grid_progress(grid)
    assert len(table) == len(grid)
    assert list(table["status"]).count("recorded") == 1
    first, second = table.iloc[0], table.iloc[1]
    assert table.index[0] == "baseline: 50% of pool, seed 0"
    assert first["test accuracy"] == "70.0%" and first["training minutes"] == 10
    assert first["resumed at epoch"] == "46" and "trained on" not in table.columns
    assert first["first LR cut"] == "none"  # the hand-made history has no learning rates
    assert second["status"] == "not run yet" and second["test accuracy"] == ""


def test_training_table_names_each_run_and_its_schedule(results_dir):
    noisy = record(catalog.label_noise(0.02, "smoke"), 0.65)
    noisy.data["history"] |= {"accuracy": [0.4, 0.5, 0.55], "learning_rate": [1e-4, 1e-4, 1e-5]}
    table = report.training_table({"noisy 2%": noisy, "pruned 2%": None})
    assert list(table.index) == ["noisy 2%", "pruned 2%"]
    assert table.loc["noisy 2%", "first LR cut"] == "after epoch 2 (train acc 50.0%)"
    assert table.loc["noisy 2%", "test accuracy"] == "65.0%"
    assert table.loc["pruned 2%", "status"] == "not run yet"


def test_article_table_needs_a_spread_before_judging(results_dir):
    noisy = record(catalog.label_noise(0.10, "smoke"), 0.60)
    one_seed = [record(catalog.baseline("smoke", 0), 0.70)]
    table = report.article_table([*one_seed, noisy])
    row = table.loc["10% label noise"]
    assert row["the article"] == "≈10 points below the baseline" and row["ours"] == "-10.0 points"
    assert row["verdict"] == "not enough seeds"
    assert row["article's value inside our 95% CI"] == "no interval yet"
    assert table.loc["baseline (half the pool)", "ours"] == "70.0%"  # one seed: no interval
    assert table.loc["1% label noise", "ours"] == "not recorded yet"

    seeds = one_seed + [record(catalog.baseline("smoke", s), 0.70 + 0.01 * s) for s in (1, 2)]
    noisy_seeds = [noisy] + [record(catalog.label_noise(0.10, "smoke", s), 0.60 + 0.012 * s)
                             for s in (1, 2)]
    table = report.article_table([*seeds, *noisy_seeds])
    row = table.loc["10% label noise"]
    assert row["verdict"] == "loss" and row["seeds"] == 3
    assert row["ours"].startswith("-9.8 points [")
    # the article's -10 points: inside our interval or not, by the interval's own bounds
    c = report.comparison(noisy_seeds, seeds)
    assert row["article's value inside our 95% CI"] == ("yes" if c.low <= -0.10 <= c.high else "no")
    baseline = table.loc["baseline (half the pool)"]
    assert baseline["ours"].startswith("71.0% [") and baseline["article's value inside our 95% CI"] == "no"

    bigger = [record(catalog.more_data(1.0, "smoke", s), 0.78 + 0.002 * s) for s in (0, 1, 2)]
    for run in bigger:  # a bigger training set: its seeds are not paired with the baseline's
        run.data["train"]["size"] = 400
    table = report.article_table([*seeds, *bigger])
    assert table.loc["whole pool: accuracy", "ours"].startswith("78.2% [")
    assert table.loc["doubling the data (whole pool)", "verdict"] == "gain"
    values = report.article_summary(table)
    assert values["article_doubling_verdict"] == "a real gain"
    assert values["article_noise1"] == "not recorded yet" and values["article_baseline_seeds"] == "3"
    assert report.article_reference("more_data", "100% of pool") == (
        "≈80% accuracy; ≈81% macro-F1; ≈+13 points")


def test_provenance_names_every_machine_and_resumed_runs(results_dir):
    runs = [record(catalog.baseline("smoke", 0), 0.7, hardware="2 CPU cores", resumed=[46]),
            record(catalog.baseline("smoke", 1), 0.7, hardware="1 GPU")]
    note = report.provenance_note(runs).data
    assert "1 GPU; 2 CPU cores" in note
    assert "1 of these runs was interrupted and resumed" in note
    # the same run listed twice (chapter 5's 50% point is the baseline) is one run
    assert "1 of these runs was interrupted" in report.provenance_note([runs[0], *runs]).data
    # every configuration with the same seeds; a seedless analysis record does not make it uneven
    assert "not every configuration" not in note
    analysis = results.write(results.record_dir("smoke", "test_set_audit", "0123456789ab"), {
        "name": "test_set_audit", "key": "0123456789ab", "profile": "smoke", "seed": None,
        "kind": "analysis", "summary": "audit", "provenance": provenance(None, "smoke")})
    assert "not every configuration" not in report.provenance_note([*runs, analysis]).data
    other = record(catalog.augmentation("smoke", 0), 0.7)
    assert "(not every configuration has all of them)" in report.provenance_note(
        [*runs, other]).data


def test_chapter_progress_counts_the_records_each_page_needs(results_dir):
    for seed in catalog.BASELINE_SEEDS:
        record(catalog.baseline("smoke", seed), 0.7)
    assert scheduler.chapter_progress("01_baseline", "smoke") == (3, 3)
    recorded, needed = scheduler.chapter_progress("02_label_noise", "smoke")
    assert (recorded, needed) == (3, 3 + 3 * len(catalog.NOISE_RATES))  # three seeds per rate
    assert scheduler.chapter_progress("04_more_cats_and_dogs", "smoke") == (3, 6)

    # Chapter 6: the baseline's seeds, then per setting the fold runs, per training seed the
    # noisy run and the three repairs (whose configs only exist once the folds have flagged
    # something), and the analysis; the detection-only setting has folds and analysis only;
    # last, the fold runs of the other detectors (crop + flip) of the settings that try them.
    recorded, needed = scheduler.chapter_progress("06_confident_learning", "smoke")
    seeds, k = len(confident.seeds("smoke")), confident.folds("smoke")
    with_repairs = sum(s.repairs for s in confident.SETTINGS)
    detection_only = len(confident.SETTINGS) - with_repairs
    other_detectors = len(confident.DETECTOR_SETTINGS) * (len(confident.DETECTORS) - 1)
    assert (recorded, needed) == (seeds, seeds + detection_only * (k + 1)
                                  + with_repairs * (k + seeds * 4 + 1) + other_detectors * k)
    record(confident.fold_experiments(confident.setting("pairs40"), "smoke")[0], 0.6)
    assert scheduler.chapter_progress("06_confident_learning", "smoke")[0] == seeds + 1

    table = scheduler.chapter_status("smoke")
    assert list(table.index) == list(scheduler.CHAPTERS)
    assert table.loc["01_baseline", "missing"] == 0
    # the test-set audit's ensemble: the baseline's seeds and 7 other clean models with each
    # of their 3 seeds, then the audit
    assert tuple(table.loc["07_test_set_audit", ["recorded", "missing"]]) == (3, 7 * 3 + 1)
    with pytest.raises(ValueError, match="choose from 01_baseline"):
        scheduler.chapter_progress("99_nothing", "smoke")
    assert "recipe on the page" in table.columns


def test_page_recipe_reads_the_provenance_note_of_an_executed_notebook():
    import nbformat

    def page(*notes):
        cell = nbformat.v4.new_code_cell("report.provenance_note(runs)")
        cell.outputs = [nbformat.v4.new_output("display_data", {"text/markdown": note})
                        for note in notes]
        return nbformat.v4.new_notebook(cells=[cell])

    assert scheduler.page_recipe(page("Data: x. Recipe: `v2-bn0.99`, momentum 0.99.")) == "v2-bn0.99"
    assert scheduler.page_recipe(page("Recipe: `v1-bn0.999`", "Recipe: `v2-bn0.99`")) == "several"
    assert scheduler.page_recipe(page()) == ""


def test_training_summary_says_when_the_learning_rate_was_cut(results_dir):
    run = record(catalog.augmentation("smoke"), 0.55)
    run.data["history"] = {"val_loss": [2.0, 1.9, 2.1, 2.2, 1.8, 1.7], "seconds": 360.0,
                      "accuracy": [0.25, 0.37, 0.46, 0.51, 0.54, 0.55],
                      "val_accuracy": [0.29, 0.35, 0.35, 0.31, 0.34, 0.36],
                      "learning_rate": [1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5]}
    values = report.training_summary(run, "t")
    assert (values["t_epochs"], values["t_minutes"], values["t_best_epoch"]) == ("6", "6", "6")
    assert values["t_lr_cuts"] == ("1 time, first after epoch 4, when training accuracy was 51.0% "
                                   "and validation accuracy 31.0%")
    assert (values["t_lr_start"], values["t_lr_end"]) == ("1e-04", "1e-05")
    assert report._first_cut(run.history) == "after epoch 4 (train acc 51.0%)"
    assert report.first_lr_cut(run.history) == 5

    # the smoke profile's cap is 1 epoch, and the loss was still falling at the last one
    assert values["t_end"].startswith("the profile's 6-epoch cap ended it while the validation loss")

    run.data["history"]["learning_rate"] = [1e-4] * 6
    run.data["history"]["val_loss"] = [1.0, 1.9, 2.1, 2.2, 1.8, 1.7]  # early stopping's pattern
    values = report.training_summary(run, "t")
    assert values["t_lr_cuts"] == "not once" and "cap" not in values["t_end"]
    assert values["t_end"] == "early stopping ended it after 5 epochs without a lower validation loss"
    assert report.first_lr_cut(run.history) is None

    run.data["history"] = {}
    with pytest.raises(ValueError, match="no recorded learning curves"):
        report.training_summary(run)


def test_class_summary_names_hard_classes_confusions_and_the_over_predicted_class(results_dir):
    run = record(catalog.baseline("smoke"), 0.6)
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 20, size=(10, 10)) + np.diag(rng.integers(40, 90, size=10))
    f1 = rng.uniform(0.3, 0.9, size=10)
    run.data["metrics"]["test"]["confusion_matrix"] = matrix.tolist()
    run.data["metrics"]["test"]["per_class"] = {
        c: {"f1": float(f), "support": int(n)} for c, f, n in zip(CLASS_NAMES, f1, matrix.sum(1))}
    values = report.class_summary(run, "test", "c")
    per_class = run.metrics["test"]["per_class"]
    worst = min(per_class, key=lambda c: per_class[c]["f1"])
    assert values["c_hardest"].startswith(f"{worst} ({per_class[worst]['f1']:.2f})")
    assert values["c_hardest"].count("(") == 3 and values["c_easiest"].count("(") == 2
    assert values["c_confusions"].count("→") == 4 and values["c_split"] == "test"
    ratio = matrix.sum(axis=0) / matrix.sum(axis=1)
    assert values["c_over"] == CLASS_NAMES[int(ratio.argmax())]
    assert values["c_over_ratio"] == f"{ratio.max():.2f}×"


def test_a_comparison_sentence_names_what_it_compares_against(results_dir):
    ours = [record(catalog.crop_flip("smoke", s), 0.78 + 0.01 * s) for s in (0, 1)]
    theirs = [record(catalog.augmentation("smoke", s), 0.70 + 0.005 * s) for s in (0, 1)]
    sentence = report.compare("Crop + flip", ours, theirs, against="the article's augmentation")
    assert "vs the article's augmentation's 70.2% on the same seeds (0, 1)" in sentence
    assert "the baseline" not in sentence
    assert "vs the baseline's 70.2%" in report.compare("Crop + flip", ours, theirs)


def test_interval_bounds_near_zero_keep_their_side():
    from helpers.evaluate import Comparison

    assert report.interval(Comparison(0.019, 0.00004, 0.035, 3, "paired t-test")) == \
        "+1.9 points [+0.00, +3.5]"
    assert report.interval(Comparison(0.019, -0.0004, 0.037, 3, "paired t-test")) == \
        "+1.9 points [-0.04, +3.7]"
    assert report.interval(Comparison(0.022, 0.009, 0.035, 3, "paired t-test")) == \
        "+2.2 points [+0.9, +3.5]"
    # a difference that one decimal would print as -0.0 keeps its sign and size
    assert report.interval(Comparison(-0.0004, -0.018, 0.017, (3, 3), "Welch's t-test")) == \
        "-0.04 points [-1.8, +1.7]"


def test_trend_summary_names_the_steps_against_the_trend(results_dir):
    def runs(rate, accuracies):
        return [record(catalog.label_noise(rate, "smoke", s) if rate else catalog.baseline("smoke", s), a)
                for s, a in enumerate(accuracies)]

    label = lambda r: f"{r:.0%}"  # noqa: E731
    falling = {0.0: runs(0.0, [0.80, 0.78]), 0.02: runs(0.02, [0.77, 0.77]),
               0.1: runs(0.1, [0.70, 0.72])}
    assert report.trend_summary("n", falling, label) == {"n_trend": "falls at every step"}
    bumpy = {**falling, 0.05: runs(0.05, [0.785, 0.785])}  # 77% at 2%, 78.5% at 5%
    assert report.trend_summary("n", bumpy, label) == {
        "n_trend": "falls overall but rises from 2% to 5% (+1.5 points)"}
    assert report.trend_summary("n", {0.0: falling[0.0]}, label) == {"n_trend": "has a single point"}
    # the steps between neighbouring points, from the means (79%, 77%, 78.5%, 71%)
    assert report.step_summary("n", bumpy, label) == {
        "n_steps": "0% → 2%: -2.0 points; 2% → 5%: +1.5 points; 5% → 10%: -7.5 points"}
    assert report.step_summary("n", {0.0: falling[0.0]}, label) == {"n_steps": "a single point"}


def test_sweep_summary_says_once_which_points_have_no_verdict(monkeypatch):
    from helpers.evaluate import Comparison

    def fake(records, baseline):
        one = records[0]
        return (Comparison(one, one - 0.01, one + 0.01, 3, "paired") if one < 0
                else Comparison(one, float("nan"), float("nan"), 1, "paired"))

    monkeypatch.setattr(report, "comparison", fake)
    text = report.sweep_summary("n", {1: [0.001], 10: [-0.04]}, [], lambda x: f"{x}%")["n_changes"]
    assert text.startswith("1%: +0.1 points; 10%: -4.0 points [-5.0, -3.0] (a real loss)")
    assert text.endswith("; 1% has a single seed so far, so no verdict yet")
    both = report.sweep_summary("n", {1: [0.001], 2: [0.002]}, [], lambda x: f"{x}%")["n_changes"]
    assert both == "1%: +0.1 points; 2%: +0.2 points; every point has a single seed so far, so no verdict yet"


def test_overview_leaves_the_repairs_of_noisy_labels_to_chapter_six():
    from types import SimpleNamespace

    def run(**config):
        return SimpleNamespace(config={"noise_rate": 0.0, "drop_ids": [], "relabel": [],
                                       "sample_weights": [], **config})

    assert report.repairs_noisy_labels(run(noise_rate=0.4, drop_ids=["3"]))
    assert report.repairs_noisy_labels(run(noise_rate=0.4, sample_weights=[["3", 0.2]]))
    assert not report.repairs_noisy_labels(run(noise_rate=0.4))  # the noisy run itself
    assert not report.repairs_noisy_labels(run(drop_ids=["3"]))  # chapter 9's deduplicated run


def test_per_class_change_averages_the_seeds_of_a_configuration(results_dir):
    def with_f1(exp, accuracy, f1):
        r = record(exp, accuracy)
        r.data["metrics"]["test"]["per_class"] = {c: {"f1": f1 + 0.01 * k}
                                                  for k, c in enumerate(CLASS_NAMES)}
        return r

    base = [with_f1(catalog.baseline("smoke", s), 0.7, 0.60 + 0.02 * s) for s in (0, 1, 2)]
    extra = [with_f1(catalog.more_cats_and_dogs("smoke", s), 0.7, 0.65 + 0.04 * s)
             for s in (0, 1)]
    change = report.per_class_change(extra, base)
    assert change.shape == (len(CLASS_NAMES),)
    assert np.allclose(change, 0.67 - 0.62)  # means over the seeds: 0.67 and 0.62
    one = report.per_class_change(extra[0], base)  # one run still works
    assert np.allclose(one, 0.65 - 0.62)


def test_overview_figure_names_the_articles_augmentation():
    from helpers import plots

    assert plots._overview_label("augmentation", "50% of pool, augmented") == \
        "augmentation: the article's set"
    assert plots._overview_label("crop_flip", "50% of pool, augmented: crop+flip") == \
        "crop flip: augmented: crop+flip"
    assert plots._overview_label("more_data", "100% of pool") == "more data: 100% of pool"
    assert plots._overview_label(
        "label_noise", "50% of pool, noise 40% class-conditional (per pair), noise seed 0") == \
        "label noise: 40% class-conditional (pairs), one\u00a0draw"
    assert plots._overview_label("label_noise", "50% of pool, noise 40%, noise seed 0") == \
        "label noise: 40% symmetric, one\u00a0draw"
    assert plots._overview_label("label_noise", "50% of pool, noise 10%") == \
        "label noise: 10%"
    assert report.setting_label("50% of pool, noise 40%, noise seed 0") == \
        "50% of pool, noise 40% symmetric, one draw, noise seed 0"


def test_plus_minus_never_reads_as_no_spread():
    assert report.plus_minus(0.004) == " ± 0.4"
    assert report.plus_minus(0.0004) == " ± <0.05"
    assert report.plus_minus(0.0) == " ± <0.05"


def test_overview_counts_a_shared_noise_draw_once_per_seed(results_dir):
    """Seed 0 drawn with its own seed has the labels of noise seed 0, so it joins the runs of
    seeds 1 and 2 trained on that one draw (chapter 6); the per-seed draws stay a group."""
    for s in (0, 1, 2):
        record(catalog.baseline("smoke", s), 0.70 + 0.01 * s)
    record(catalog.label_noise(0.4, "smoke", 0), 0.50)
    record(catalog.label_noise(0.4, "smoke", 1, noise_seed=0), 0.52)
    for s in (0, 1):
        record(catalog.label_noise(0.1, "smoke", s), 0.66)  # chapter 2: a new draw per seed
    record(catalog.label_noise(0.1, "smoke", 1, noise_seed=0), 0.64)
    frame = report.overview(report.recorded("smoke"))
    noise = frame[frame["experiment"] == "label_noise"].set_index("setting")["seeds"].to_dict()
    assert noise == {"50% of pool, noise 10%": 2, "50% of pool, noise 10%, noise seed 0": 2,
                     "50% of pool, noise 40%, noise seed 0": 2}
    shared = frame[frame["setting"] == "50% of pool, noise 40%, noise seed 0"].iloc[0]
    assert shared["change"] == pytest.approx(0.51 - 0.705)  # paired with baseline seeds 0 and 1


def test_provenance_counts_a_shared_noise_draw_as_one_configuration(results_dir):
    """Chapter 6's seed-0 runs are listed without "noise seed 0" (their own draw is that one),
    seeds 1 and 2 with it: one configuration with all three seeds, so the note does not call
    the page uneven; a fixed draw that lacks a seed still does."""
    runs = [record(catalog.label_noise(0.4, "smoke", 0), 0.50)]
    runs += [record(catalog.label_noise(0.4, "smoke", s, noise_seed=0), 0.52) for s in (1, 2)]
    assert runs[0]["summary"] != runs[1]["summary"]
    runs += [record(catalog.baseline("smoke", s), 0.70) for s in (0, 1, 2)]
    assert "not every configuration" not in report.provenance_note(runs).data
    assert "(not every configuration has all of them)" in report.provenance_note(runs[1:]).data
    # a fold run trains once per setting by design: said so, and not counted as uneven
    fold = record(confident.fold_experiments(confident.setting("pairs40"), "smoke")[0], 0.6)
    note = report.provenance_note([*runs, fold]).data
    assert "not every configuration" not in note and "fold runs train once per setting" in note
    assert "fold runs" not in report.provenance_note(runs).data

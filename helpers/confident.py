"""Confident learning on the book's noisy training sets, with cleanlab doing the finding.

Out-of-sample predicted probabilities come from K cross-validation runs of the frozen recipe
(each a cached experiment); ``cleanlab.filter.find_label_issues`` flags the labels; because the
noise was injected, the flags are graded against the truth; then two repairs are retrained.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from helpers import CLASS_NAMES, catalog, results
from helpers.recipe import LEGACY
from helpers.experiments import provenance, run_all
from helpers.report import change_summary as report_change
from helpers.report import comparison, first_lr_cut, interval, pct, verdict_text


@dataclasses.dataclass
class OutOfFold:
    ids: np.ndarray
    given_labels: np.ndarray
    true_labels: np.ndarray
    noise_mask: np.ndarray
    probs: np.ndarray  # (n, 10): each row from the run that did not train on that example


def out_of_fold(fold_records: list[results.Record]) -> OutOfFold:
    """Stitch the held-out predictions of K fold runs into one matrix for the training set."""
    first = fold_records[0].arrays
    n = len(first["train_ids"])
    probs = np.full((n, len(CLASS_NAMES)), np.nan, dtype=np.float32)
    for record in fold_records:
        arrays = record.arrays
        if not np.array_equal(arrays["train_ids"], first["train_ids"]):
            raise ValueError("fold runs disagree on the training set: they must share one config")
        probs[arrays["holdout_index"]] = arrays["holdout_probs"]
    if np.isnan(probs).any():
        raise ValueError("some training examples have no out-of-fold prediction: run every fold")
    probs /= probs.sum(axis=1, keepdims=True)  # float16 storage rounds; cleanlab wants rows = 1
    return OutOfFold(first["train_ids"], first["train_given_labels"], first["train_true_labels"],
                     first["train_noise_mask"], probs)


def find_issues(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Boolean mask of likely label errors (cleanlab's confident learning, default filter)."""
    from cleanlab.filter import find_label_issues

    return find_label_issues(labels=labels, pred_probs=probs)


def detection_scores(flagged: np.ndarray, noise_mask: np.ndarray, true_labels: np.ndarray) -> dict:
    """Precision, recall and F1 of the flags against the injected mask, overall and per class
    (grouped by each example's true class)."""
    def scores(f, m):
        if m.size == 0:  # a class absent from a tiny training set: nothing to grade
            return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "flagged": 0, "injected": 0,
                    "caught": 0}
        p, r, f1, _ = precision_recall_fscore_support(m, f, average="binary", zero_division=0)
        return {"precision": float(p), "recall": float(r), "f1": float(f1),
                "flagged": int(f.sum()), "injected": int(m.sum()), "caught": int((f & m).sum())}

    return {"overall": scores(flagged, noise_mask),
            "per_class": {c: scores(flagged[true_labels == k], noise_mask[true_labels == k])
                          for k, c in enumerate(CLASS_NAMES)}}


def label_accuracy_after_repair(given: np.ndarray, true: np.ndarray, flagged: np.ndarray,
                                suggested: np.ndarray) -> dict:
    """Share of correct labels in each training set the chapter compares: as given (noisy), with
    the flagged images dropped (pruned), and with them given the model's suggestion (relabelled).
    A false alarm costs nothing but an image when pruned, but can swap a right label for a wrong
    one when relabelled, so a weak model can make relabelling worse than doing nothing."""
    kept = ~flagged
    relabelled = np.where(flagged, suggested, given)
    return {"noisy": float(np.mean(given == true)),
            "pruned": float(np.mean(given[kept] == true[kept])) if kept.any() else float("nan"),
            "relabelled": float(np.mean(relabelled == true)),
            "pruned_size": int(kept.sum()), "size": int(len(given)),
            # relabelling: wrong labels made right, and right labels made wrong
            "fixed": int(np.sum(flagged & (given != true) & (suggested == true))),
            "broken": int(np.sum(flagged & (given == true) & (suggested != true)))}


def recovered_fraction(clean: float, noisy: float, repaired: float) -> float | None:
    """Share of the accuracy lost to noise that a repair wins back (None: nothing was lost)."""
    lost = clean - noisy
    return None if lost <= 0 else float((repaired - noisy) / lost)


@dataclasses.dataclass
class Cleanup:
    rate: float
    oof: OutOfFold
    flagged: np.ndarray
    suggested: np.ndarray
    clean: list[results.Record]
    noisy: results.Record
    pruned: results.Record
    relabelled: results.Record
    record: results.Record  # the analysis record: detection scores and recovered fractions

    @property
    def analysis(self) -> dict:
        return self.record["analysis"]

    @property
    def retrains(self) -> dict[str, results.Record]:
        """The three runs on this noise rate's training set, as given and after each repair."""
        return {"noisy": self.noisy, "pruned": self.pruned, "relabelled": self.relabelled}

    @property
    def noise_loss(self) -> float:
        """Test accuracy the noise cost: clean baseline mean minus the noisy run."""
        return self.analysis["clean_test_accuracy_mean"] - self.analysis["test"]["noisy"]["accuracy"]

    @property
    def noise_comparison(self):
        """The noisy run(s) against the clean baseline, paired by seed (``report.comparison``)."""
        return comparison([self.noisy], self.clean)

    @property
    def loss_is_measurable(self) -> bool:
        """Did the noise cost test accuracy, with a 95% confidence interval excluding zero?"""
        return self.noise_comparison.verdict == "loss"

    @property
    def label_accuracy(self) -> dict:
        return label_accuracy_after_repair(self.oof.given_labels, self.oof.true_labels,
                                           self.flagged, self.suggested)


def clean_up(rate: float, profile: str | None = None, seed: int = 0,
             folds: int = catalog.CV_FOLDS, baseline_seeds=catalog.BASELINE_SEEDS) -> Cleanup:
    """Cross-validate, flag with cleanlab, grade the flags, retrain both repairs, record it all."""
    fold_runs = run_all(catalog.cv_folds(rate, profile, seed, folds))
    oof = out_of_fold(fold_runs)
    flagged = find_issues(oof.given_labels, oof.probs)
    suggested = oof.probs.argmax(axis=1)
    flagged_ids = oof.ids[flagged]
    clean = run_all(catalog.baselines(profile, baseline_seeds))
    noisy, pruned, relabelled = run_all([
        catalog.label_noise(rate, profile, seed),
        catalog.pruned(rate, flagged_ids, profile, seed),
        catalog.relabelled(rate, zip(flagged_ids, suggested[flagged]), profile, seed),
    ])

    clean_accuracy = float(np.mean([r.metric("test", "accuracy") for r in clean]))
    clean_f1 = float(np.mean([r.metric("test", "macro_f1") for r in clean]))
    analysis = {
        "noise_rate": rate, "cv_folds": folds,
        "detection": detection_scores(flagged, oof.noise_mask, oof.true_labels),
        "test": {name: {"accuracy": rec.metric("test", "accuracy"),
                        "macro_f1": rec.metric("test", "macro_f1")}
                 for name, rec in (("noisy", noisy), ("pruned", pruned), ("relabelled", relabelled))},
        "clean_test_accuracy_mean": clean_accuracy, "clean_test_macro_f1_mean": clean_f1,
        "clean_test_accuracy_std": float(np.std([r.metric("test", "accuracy") for r in clean], ddof=1))
        if len(clean) > 1 else 0.0,
        "recovered_fraction": {
            name: recovered_fraction(clean_accuracy, noisy.metric("test", "accuracy"),
                                     rec.metric("test", "accuracy"))
            for name, rec in (("pruned", pruned), ("relabelled", relabelled))},
        "runs": {"folds": [r.key for r in fold_runs], "noisy": noisy.key, "pruned": pruned.key,
                 "relabelled": relabelled.key, "clean": [r.key for r in clean]},
    }
    name = "confident_learning"
    profile_name = noisy.profile
    key = results.config_key({"analysis": name, **analysis["runs"]})
    path = results.record_dir(profile_name, name, key)
    record = results.load(path) or results.write(path, {
        "name": name, "key": key, "profile": profile_name, "seed": seed, "kind": "analysis",
        "summary": f"cleanlab on {rate:.0%} noise, {folds}-fold CV, prune + relabel",
        "config": {"noise_rate": rate, "cv_folds": folds, "seed": seed,
                   "recipe": noisy.config.get("recipe", LEGACY)},
        "analysis": analysis, "provenance": provenance(seed, profile_name),
    }, {"flagged_ids": flagged_ids, "suggested_labels": suggested[flagged],
        "out_of_fold_probs": oof.probs.astype(np.float16), "train_ids": oof.ids})
    return Cleanup(rate, oof, flagged, suggested, clean, noisy, pruned, relabelled, record)


def summary_table(cleanups: list[Cleanup]) -> pd.DataFrame:
    """Detection quality, label quality after each repair, and test results: one column per
    noise rate, one row per quantity (two noise rates read better side by side than 15 columns
    wide)."""
    columns = {}
    for c in cleanups:
        a = c.analysis
        d = a["detection"]["overall"]
        recovered = a["recovered_fraction"]
        labels = c.label_accuracy
        columns[f"{c.rate:.0%} noise"] = {
            "injected errors": f"{d['injected']:,}",
            "flagged by cleanlab": f"{d['flagged']:,}",
            "precision / recall / F1": f"{d['precision']:.2f} / {d['recall']:.2f} / {d['f1']:.2f}",
            "labels right: noisy set": pct(labels["noisy"]),
            "labels right: pruned set": f"{pct(labels['pruned'])} of {labels['pruned_size']:,}",
            "labels right: relabelled set": pct(labels["relabelled"]),
            "test acc: clean baseline (mean of its seeds)": pct(a["clean_test_accuracy_mean"]),
            "test acc: clean baseline, the noisy run's seed": pct(
                next(r.metric("test", "accuracy") for r in c.clean
                     if r["seed"] == c.noisy["seed"])),
            "test acc: noisy": pct(a["test"]["noisy"]["accuracy"]),
            "test acc: pruned": pct(a["test"]["pruned"]["accuracy"]),
            "test acc: relabelled": pct(a["test"]["relabelled"]["accuracy"]),
        } | {
            # a share of a loss inside the seed band is a ratio of two noises: not shown
            f"loss recovered: {name}": pct(recovered[name]) if c.loss_is_measurable
            else "n/a (no loss with a CI that excludes zero)"
            for name in ("pruned", "relabelled")
        }
    return pd.DataFrame(columns)


def story(c: Cleanup) -> str:
    """Markdown sentences on one noise rate; every verdict comes from ``report.comparison``."""
    a = c.analysis
    d = a["detection"]["overall"]
    noisy = a["test"]["noisy"]["accuracy"]
    lines = [f"**{c.rate:.0%} noise.** cleanlab flagged {d['flagged']:,} of {len(c.flagged):,} "
             f"training labels; {d['caught']:,} of the {d['injected']:,} injected errors are among them "
             f"(precision {d['precision']:.2f}, recall {d['recall']:.2f}, F1 {d['f1']:.2f})."]
    labels = c.label_accuracy
    lines.append(f"Of the given labels {labels['noisy']:.1%} are right. Dropping the flagged images "
                 f"leaves {labels['pruned_size']:,} images, {labels['pruned']:.1%} of them correctly "
                 f"labelled. Relabelling keeps all {labels['size']:,}: it fixes {labels['fixed']:,} "
                 f"wrong labels but overwrites {labels['broken']:,} right ones with the model's guess, "
                 f"leaving {labels['relabelled']:.1%} right.")
    lost = c.noise_comparison
    same = "the clean baseline's run with the same seed" if lost.n == 1 else \
        f"the clean baseline's runs with the same {lost.n} seeds"
    lines.append(f"Noisy run vs {same}: {interval(lost)} of test accuracy; "
                 f"{verdict_text(lost)}."
                 + ("" if c.loss_is_measurable else " Without a measured loss there is "
                    "nothing to recover, so recovered fractions are not shown."))
    for name in ("pruned", "relabelled"):
        change = comparison([c.retrains[name]], [c.noisy])
        frac = a["recovered_fraction"][name]
        frac_text = ("" if not c.loss_is_measurable else ", recovering none of the loss"
                     if frac <= 0 else f", recovering {frac:.0%} of the loss")
        lines.append(f"- {name.capitalize()} vs noisy: {interval(change)}{frac_text}; "
                     f"{verdict_text(change)}.")
    # a cut in the first epochs leaves a run crawling whatever its labels (Chapter 3)
    cuts = {name: first_lr_cut(run.history) for name, run in c.retrains.items()}
    lines.append("\nFirst learning-rate cut: "
                 + ", ".join(f"{name} run {f'at epoch {cut}' if cut else 'never'}"
                             for name, cut in cuts.items())
                 + ". The training table below shows how each run went.")
    return "\n".join(lines)


def flag_gallery(c: Cleanup, per_group: int = 6):
    """Caught errors, then false alarms; captions read given → suggested (true)."""
    from helpers import data, plots

    caught = np.flatnonzero(c.flagged & c.oof.noise_mask)[:per_group]
    false_alarms = np.flatnonzero(c.flagged & ~c.oof.noise_mask)[:per_group]
    shown = np.concatenate([caught, false_alarms])
    images = data.load_split("train").by_ids(c.oof.ids[shown]).images
    captions = [f"{CLASS_NAMES[c.oof.given_labels[i]]} → {CLASS_NAMES[c.suggested[i]]}\n"
                f"({CLASS_NAMES[c.oof.true_labels[i]]})" for i in shown]
    return plots.image_gallery(
        images, captions, columns=per_group,
        title=f"Flagged at {c.rate:.0%} noise: {len(caught)} caught errors, then "
              f"{len(false_alarms)} false alarms")


def summary(c: Cleanup) -> dict[str, str]:
    """What chapter 6's closing summary pastes (glue) for one noise rate: the flags and their
    precision, and the noisy, pruned and relabelled runs' changes in test accuracy with their
    95% CIs and verdicts (``report.comparison``)."""
    d = c.analysis["detection"]["overall"]
    out = {"cl_rate": f"{c.rate:.0%}", "cl_flagged": f"{d['flagged']:,}",
           "cl_injected": f"{d['injected']:,}", "cl_precision": f"{d['precision']:.2f}",
           "cl_recall": f"{d['recall']:.2f}"}
    out |= report_change("cl_noise", [c.noisy], c.clean)
    for name in ("pruned", "relabelled"):
        out |= report_change(f"cl_{name}", [c.retrains[name]], [c.noisy])
    return out

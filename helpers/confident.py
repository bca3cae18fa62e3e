"""Confident learning that repairs: find injected label errors with cleanlab, grade the flags
against the injected mask, retrain repaired training sets over seeds, and pick the repair on
the validation set.

For each noise setting, the pipeline is:

1. **Out-of-fold probabilities**: K fold runs (``catalog.cv_folds``) on one noisy training set
   (noise seed ``NOISE_SEED``); each training image is predicted by the run that did not train
   on it. The folds run once per setting: every later step works on that one noisy set.
2. **Calibration** without the mask: one temperature fitted on the fold runs' predictions for
   the *validation* set, whose labels are clean (``fit_temperature``).
3. **Flag**: every candidate rule (``RULES``: cleanlab's filters and the ranked top-k with k
   from cleanlab's own estimate) flags labels; the rule the chapter uses is the one with the
   highest *expected* F1 (``expected_detection``) under each label's probability of being
   wrong: the calibrated probabilities times the likelihood of the given label under
   cleanlab's estimated noise matrix (``noise_posterior``). A mask-free criterion; only then
   are all rules graded against the injected mask.
4. **Repair** the flagged labels three ways (``repair_plans``), each retrained with every
   training seed of ``seeds(profile)``, as is the noisy set itself (same labels, same seeds):
   drop the flags; relabel the flags where the calibrated out-of-fold confidence in the
   suggested class reaches a threshold chosen on the validation set
   (``relabel_threshold``); keep every image but weight each flagged one by the estimated
   probability that its label is right (``sample_weights``).
5. **Choose** the recommended repair by mean validation accuracy over seeds; report it, and
   every other repair, on the test set against the noisy runs (paired by training seed).

The seed intervals therefore measure training variation on one draw of the noise, not the
variation between noise draws.

A second detector (``DETECTORS``: the same fold runs trained with crop + flip) is tried on the
settings of ``DETECTOR_SETTINGS`` (``try_detectors``); ``choose_detector`` picks between
detectors without the mask (the calibrated fold models' log loss on the clean validation set)
and ``detectors_table`` grades both. The repairs use the first detector's flags.

``clean_up(setting, profile)`` does all of it idempotently (training what is missing through
the registry) and records one analysis record per setting; ``planned(setting, profile)`` lists
every record it needs and whether it exists.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve

from helpers import CLASS_NAMES, catalog, results
from helpers.evaluate import compare_over_seeds, mean_interval
from helpers.experiments import Experiment, provenance, run_all
from helpers.profiles import CL_FOLDS, CL_SEEDS, get_profile
from helpers.report import first_lr_cut, interval, join_and, mean_ci, pct, verdict_phrase

NOISE_SEED = 0  # which labels the noise hits, and the fold split (one noisy set per setting)
RELABEL_PRECISION = 0.9  # relabel only where the guess is right >= 90% of the time (validation)
REPAIRS = ("pruned", "relabelled", "weighted")
CANDIDATES = ("noisy", *REPAIRS)  # "noisy": leave the labels as they are
ANALYSIS = "confident_learning"
METHOD = "posterior-expected-f1/folds-once/v4"  # in the analysis key: a change of method is a new record


@dataclasses.dataclass(frozen=True)
class Setting:
    """One noise setting of the chapter: ``symmetric`` (``rate`` of all labels moved to a
    uniformly chosen other class) or ``pairs`` (class-conditional: ``rate`` of each class of
    the pairs cat/dog, automobile/truck, deer/horse, airplane/ship flipped to its partner).
    ``repairs=False``: detection only (the fold runs, nothing retrained)."""

    kind: str
    rate: float
    repairs: bool = True

    @property
    def label(self) -> str:
        kind = "symmetric" if self.kind == "symmetric" else "class-conditional (pairs)"
        return f"{self.rate:.0%} {kind}"

    @property
    def name(self) -> str:
        """A short identifier for glue keys: ``symmetric10``, ``pairs40``."""
        return f"{self.kind}{round(100 * self.rate):02d}"



def folds(profile: str | None = None) -> int:
    """K, the number of fold runs per setting (``profiles.CL_FOLDS``: 4, smoke 2)."""
    return CL_FOLDS[get_profile(profile).name]


def seeds(profile: str | None = None) -> tuple[int, ...]:
    """The training seeds of the noisy run, every repair and the clean baseline
    (``profiles.CL_SEEDS``: 0, 1, 2; smoke 0, 1)."""
    return CL_SEEDS[get_profile(profile).name]


SETTINGS = (Setting("symmetric", 0.02, repairs=False), Setting("symmetric", 0.10),
            Setting("symmetric", 0.40), Setting("pairs", 0.40))


def setting(name) -> Setting:
    """A setting of ``SETTINGS`` by its ``name`` (``pairs40``); a Setting is returned as it
    is, and a bare rate (0.10, as the older schedule names steps) means symmetric noise."""
    if isinstance(name, Setting):
        return name
    for s in SETTINGS:
        if s.name == name or (not isinstance(name, str) and s.kind == "symmetric"
                              and math.isclose(s.rate, float(name))):
            return s
    raise ValueError(f"unknown setting {name!r}: choose from {', '.join(s.name for s in SETTINGS)}")


# --- the experiments of one setting --------------------------------------------------------

def fold_experiments(s: Setting, profile: str | None,
                     augment: bool | str = False) -> list[Experiment]:
    """The K fold runs of the setting's noisy set (trained with seed ``NOISE_SEED``).
    ``augment``: the fold runs' training augmentation (``DETECTORS``); the default, none, is
    the detector every flag and repair of the chapter comes from."""
    return catalog.cv_folds(s.rate, profile, NOISE_SEED, folds(profile), kind=s.kind,
                            augment=augment)


def noisy_experiment(s: Setting, profile: str | None, seed: int) -> Experiment:
    """The setting's noisy set (noise seed ``NOISE_SEED``) trained with ``seed``; for seed 0
    this is chapter 2's ``label_noise`` run itself."""
    return catalog.label_noise(s.rate, profile, seed, kind=s.kind, noise_seed=NOISE_SEED)


def repair_experiments(s: Setting, profile: str | None, seed: int, plans: dict) -> dict:
    """{repair: Experiment} from ``repair_plans``, trained with ``seed``."""
    common = dict(profile=profile, seed=seed, kind=s.kind, noise_seed=NOISE_SEED)
    out = {"pruned": catalog.pruned(s.rate, plans["drop_ids"], **common),
           "relabelled": catalog.relabelled(s.rate, plans["relabel"], **common),
           "weighted": catalog.reweighted(s.rate, plans["weights"], **common)}
    noisy = noisy_experiment(s, profile, seed)
    # a repair that changes nothing (no flag confident enough to relabel, say) is the noisy run
    empty = {"pruned": "drop_ids", "relabelled": "relabel", "weighted": "weights"}
    return {name: noisy if not plans[empty[name]] else e for name, e in out.items()}


# --- pure arithmetic (tested on hand-made arrays) -----------------------------------------

@dataclasses.dataclass
class OutOfFold:
    ids: np.ndarray
    given_labels: np.ndarray
    true_labels: np.ndarray
    noise_mask: np.ndarray
    probs: np.ndarray  # (n, 10): each row from the run that did not train on that example
    validation_probs: np.ndarray  # (K * n_val, 10): every fold run on the clean validation set
    validation_labels: np.ndarray

    @property
    def accuracy(self) -> float:
        """Share of training images whose out-of-fold prediction is the true class (mask)."""
        return float(np.mean(self.probs.argmax(axis=1) == self.true_labels))

    @property
    def validation_accuracy(self) -> float:
        """Share of the clean validation predictions, every fold run pooled, that are right."""
        return float(np.mean(self.validation_probs.argmax(axis=1) == self.validation_labels))


def out_of_fold(fold_records) -> OutOfFold:
    """Stitch the held-out predictions of K fold runs into one matrix for the training set."""
    first = fold_records[0].arrays
    n = len(first["train_ids"])
    probs = np.full((n, len(CLASS_NAMES)), np.nan, dtype=np.float64)
    for record in fold_records:
        arrays = record.arrays
        if not np.array_equal(arrays["train_ids"], first["train_ids"]):
            raise ValueError("fold runs disagree on the training set: they must share one config")
        probs[arrays["holdout_index"]] = arrays["holdout_probs"]
    if np.isnan(probs).any():
        raise ValueError("some training examples have no out-of-fold prediction: run every fold")
    val = np.concatenate([r.arrays["validation_probs"] for r in fold_records]).astype(np.float64)
    val_labels = np.concatenate([r.arrays["validation_labels"] for r in fold_records])
    return OutOfFold(first["train_ids"], first["train_given_labels"], first["train_true_labels"],
                     first["train_noise_mask"].astype(bool), _normalise(probs),
                     _normalise(val), val_labels)


def _normalise(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, None)  # float16 storage rounds
    return probs / probs.sum(axis=1, keepdims=True)


def calibrate(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling: softmax(log p / T)."""
    logits = np.log(_normalise(probs)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (nats per example) of ``labels`` ((n,) ints) under
    ``probs`` ((n, classes), rows summing to 1)."""
    labels = np.asarray(labels)
    return -float(np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12)))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` (clean
    validation labels) under ``calibrate(probs, T)``. Models trained on noisy labels learn the
    noisy label distribution, too flat for the truth; T < 1 sharpens it."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)

    def nll(log_t):
        return log_loss(calibrate(probs, math.exp(log_t)), labels)

    best = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(best.x))


def noise_posterior(labels: np.ndarray, probs: np.ndarray, calibrated: np.ndarray) -> np.ndarray:
    """P(true class | image, given label) for every training image: the calibrated models'
    belief about the true class times the likelihood of the given label under cleanlab's
    estimate of the noise matrix (``cleanlab.count.estimate_latent`` on the confident joint of
    the out-of-fold ``probs``: P(given = i | true = j)). The models alone ignore that most given
    labels are right; the noise matrix says how often each class's labels are wrong, and to
    what. No injected mask is used."""
    from cleanlab.count import compute_confident_joint, estimate_latent

    labels = np.asarray(labels)
    joint = compute_confident_joint(labels, probs)
    _, noise_matrix, _ = estimate_latent(joint, labels)
    posterior = calibrated * np.asarray(noise_matrix)[labels]
    total = posterior.sum(axis=1, keepdims=True)
    return np.where(total > 0, posterior / np.where(total > 0, total, 1), calibrated)


RULES = {  # rule -> how the page names it
    "prune_by_noise_rate": "cleanlab filter: prune by noise rate (default)",
    "prune_by_class": "cleanlab filter: prune by class",
    "both": "cleanlab filter: both",
    "confident_learning": "cleanlab filter: confident learning",
    "predicted_neq_given": "cleanlab filter: prediction differs from label",
    "ranked_top_k": "lowest label quality, top k (k = cleanlab's estimate)",
}


def label_quality(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's label-quality score of every label (self-confidence: low = suspicious)."""
    from cleanlab.rank import get_label_quality_scores

    return get_label_quality_scores(np.asarray(labels), probs, method="self_confidence")


def estimated_issues(labels: np.ndarray, probs: np.ndarray) -> int:
    """cleanlab's own estimate of how many labels are wrong (from the confident joint)."""
    from cleanlab.count import num_label_issues

    return int(num_label_issues(labels=np.asarray(labels), pred_probs=probs))


def flag_rules(labels: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    """{rule: boolean flags} for every rule of ``RULES`` on the same probabilities."""
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels)
    out = {rule: np.asarray(find_label_issues(labels=labels, pred_probs=probs, filter_by=rule))
           for rule in RULES if rule != "ranked_top_k"}
    k = estimated_issues(labels, probs)
    top = np.zeros(len(labels), dtype=bool)
    top[np.argsort(label_quality(labels, probs), kind="stable")[:k]] = True
    out["ranked_top_k"] = top
    return out


def expected_detection(flags: np.ndarray, p_wrong: np.ndarray) -> dict:
    """Precision, recall and F1 the flags should have if ``p_wrong`` (each label's calibrated
    probability of being wrong) were true: the mask-free stand-in for grading."""
    flags, p_wrong = np.asarray(flags, bool), np.asarray(p_wrong, float)
    tp, wrong = float(p_wrong[flags].sum()), float(p_wrong.sum())
    n = int(flags.sum())
    precision = tp / n if n else 0.0
    recall = tp / wrong if wrong else 0.0
    f1 = 2 * tp / (n + wrong) if n + wrong else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": n,
            "expected_errors": wrong}


def _first_best(scores: dict[str, float]) -> str:
    """The key with the highest score; the first in the dict's order on ties."""
    order = list(scores)
    return max(order, key=lambda key: (scores[key], -order.index(key)))


def choose_rule(flags_by_rule: dict[str, np.ndarray], p_wrong: np.ndarray) -> str:
    """The rule with the highest expected F1 (first in ``RULES`` order on ties). The injected
    mask is never looked at."""
    return _first_best({rule: expected_detection(f, p_wrong)["f1"]
                        for rule, f in flags_by_rule.items()})


def grade(flags: np.ndarray, noise_mask: np.ndarray) -> dict:
    """Precision, recall and F1 of the flags against the injected mask."""
    flags, mask = np.asarray(flags, bool), np.asarray(noise_mask, bool)
    caught, n, injected = int((flags & mask).sum()), int(flags.sum()), int(mask.sum())
    precision = caught / n if n else 0.0
    recall = caught / injected if injected else 0.0
    f1 = 2 * caught / (n + injected) if n + injected else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "flagged": n,
            "injected": injected, "caught": caught}


def ranking_quality(quality: np.ndarray, noise_mask: np.ndarray) -> dict:
    """Average precision of the label-quality ranking (lowest quality first) against the
    injected mask, ``best_f1``: the highest F1 of any cut of the ranking (a ceiling, chosen
    in hindsight, for every rule that flags the k lowest-quality labels), and the
    precision-recall curve (for the figure)."""
    mask = np.asarray(noise_mask, bool)
    if not mask.any() or mask.all():
        return {"average_precision": float("nan"), "best_f1": float("nan"),
                "precision": np.array([]), "recall": np.array([])}
    score = -np.asarray(quality, float)
    precision, recall, _ = precision_recall_curve(mask, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"average_precision": float(average_precision_score(mask, score)),
            "best_f1": float(f1.max()), "precision": precision, "recall": recall}


def separation(quality: np.ndarray, noise_mask: np.ndarray, share: float = 0.05) -> dict:
    """Does the label-quality ranking put wrong labels first? Graded against the injected mask
    (shapes (n,) each): ``top_precision``, the share of wrong labels among the ``share`` of labels
    with the lowest quality (NaN for an empty top), and ``base_rate``, the share of wrong labels
    overall, which a random pick (and a random ranking's average precision) would score."""
    quality, mask = np.asarray(quality, float), np.asarray(noise_mask, bool)
    k = int(round(share * len(quality)))
    top = np.argsort(quality, kind="stable")[:k]
    return {"top_precision": float(mask[top].mean()) if k else float("nan"),
            "base_rate": float(mask.mean()) if len(mask) else float("nan"), "share": share}


def relabel_threshold(probs: np.ndarray, labels: np.ndarray,
                      target: float = RELABEL_PRECISION) -> float | None:
    """The lowest confidence t such that, on the clean validation set, the fold models' guesses
    made with confidence >= t are right at least ``target`` of the time (None when no such t
    exists: then nothing is relabelled). ``probs`` are calibrated."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == np.asarray(labels)
    order = np.argsort(-confidence, kind="stable")
    precision_at = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precision_at >= target)
    if not len(ok):
        return None
    # the largest prefix whose precision still reaches the target, and everything tied with it
    return float(confidence[order][ok[-1]])


def repair_plans(oof_ids: np.ndarray, given: np.ndarray, flags: np.ndarray,
                 calibrated: np.ndarray, threshold: float | None,
                 posterior: np.ndarray | None = None) -> dict:
    """What each repair changes: ``drop_ids`` (every flag), ``relabel`` ((id, class) where a
    flag's suggested class differs from its label and has calibrated confidence >= threshold),
    ``weights`` ((id, weight) of every flag: the probability that its given label is right,
    from ``posterior`` (``noise_posterior``) when given, else from ``calibrated``; 3 decimals;
    unflagged images weigh 1)."""
    ids, given, flags = np.asarray(oof_ids).astype(str), np.asarray(given), np.asarray(flags, bool)
    suggested = calibrated.argmax(axis=1)
    confident = flags & (suggested != given) & (
        calibrated.max(axis=1) >= (np.inf if threshold is None else threshold))
    belief = calibrated if posterior is None else posterior
    p_given = belief[np.arange(len(given)), given]
    return {"drop_ids": tuple(str(i) for i in ids[flags]),
            "relabel": tuple((str(i), int(c)) for i, c in zip(ids[confident], suggested[confident])),
            "weights": tuple((str(i), round(float(w), 3))
                             for i, w in zip(ids[flags], p_given[flags]))}


def label_accounting(given: np.ndarray, true: np.ndarray, drop: np.ndarray | None = None,
                     new_labels: np.ndarray | None = None,
                     weights: np.ndarray | None = None) -> dict:
    """What a repair does to the training labels: images kept, share of right labels before
    and after (weighted by the loss weights when there are any), wrong labels fixed and right
    labels broken by relabelling, wrong and right labels dropped (or, weighted, the weight
    taken from wrong and from right labels)."""
    given, true = np.asarray(given), np.asarray(true)
    n = len(given)
    drop = np.zeros(n, bool) if drop is None else np.asarray(drop, bool)
    after = given if new_labels is None else np.asarray(new_labels)
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    right_before, right_after = given == true, after == true
    kept = ~drop
    return {
        "size": int(kept.sum()), "original_size": n,
        "right_before": float(right_before.mean()),
        "right_after": float((w[kept] * right_after[kept]).sum() / w[kept].sum())
        if kept.any() else float("nan"),
        "fixed": int((kept & ~right_before & right_after).sum()),
        "broken": int((kept & right_before & ~right_after).sum()),
        "dropped_wrong": int((drop & ~right_before).sum()),
        "dropped_right": int((drop & right_before).sum()),
        "weight_off_wrong": float((1 - w)[kept & ~right_after].sum()),
        "weight_off_right": float((1 - w)[kept & right_after].sum()),
    }


def recovered_fraction(clean: dict, noisy: dict, repaired: dict) -> dict | None:
    """Share of the accuracy lost to noise that a repair wins back, ``(repaired - noisy) /
    (clean - noisy)``, per seed (each a {seed: accuracy}; paired by seed), with its mean and
    the 95% Student-t interval over seeds (NaN bounds with one seed). None when the noise cost
    nothing on some seed (the ratio is then not a share of anything)."""
    seeds = sorted(set(clean) & set(noisy) & set(repaired))
    if not seeds or any(clean[s] - noisy[s] <= 0 for s in seeds):
        return None
    ratios = [(repaired[s] - noisy[s]) / (clean[s] - noisy[s]) for s in seeds]
    mean, low, high = mean_interval(ratios)
    return {"mean": mean, "low": low, "high": high, "per_seed": dict(zip(map(str, seeds), ratios))}


def choose_repair(validation: dict[str, dict]) -> str:
    """The candidate (``noisy`` = no repair, or a repair) with the highest mean validation
    accuracy over the seeds every candidate has."""
    seeds = set.intersection(*(set(v) for v in validation.values()))
    return max(validation, key=lambda name: np.mean([validation[name][s] for s in seeds]))


def _comparison_dict(c) -> dict:
    return {"difference": c.difference, "low": c.low, "high": c.high, "n": c.n,
            "verdict": c.verdict}


# --- detection: the fold runs of one setting ---------------------------------------------

@dataclasses.dataclass
class Detection:
    """Flags and repair plans of one setting, from its fold runs, without the injected mask."""

    oof: OutOfFold
    temperature: float
    calibrated: np.ndarray
    posterior: np.ndarray  # P(true class | image, given label): ``noise_posterior``
    flags_by_rule: dict[str, np.ndarray]
    rule: str
    quality: np.ndarray
    threshold: float
    plans: dict

    @property
    def flags(self) -> np.ndarray:
        return self.flags_by_rule[self.rule]

    @functools.cached_property
    def ranking(self) -> dict:
        """``ranking_quality`` of the label-quality ranking against the injected mask."""
        return ranking_quality(self.quality, self.oof.noise_mask)

    @functools.cached_property
    def separated(self) -> dict:
        """``separation`` of wrong labels among the 5% of lowest label quality."""
        return separation(self.quality, self.oof.noise_mask)

    @property
    def p_wrong(self) -> np.ndarray:
        o = self.oof
        return 1 - self.posterior[np.arange(len(o.given_labels)), o.given_labels]

    def accounting(self) -> dict[str, dict]:
        """``label_accounting`` of the noisy set and of each repair."""
        o = self.oof
        position = {i: n for n, i in enumerate(o.ids.astype(str))}
        relabelled = o.given_labels.copy()
        for i, c in self.plans["relabel"]:
            relabelled[position[i]] = c
        weights = np.ones(len(o.ids))
        for i, w in self.plans["weights"]:
            weights[position[i]] = w
        return {"noisy": label_accounting(o.given_labels, o.true_labels),
                "pruned": label_accounting(o.given_labels, o.true_labels, drop=self.flags),
                "relabelled": label_accounting(o.given_labels, o.true_labels,
                                               new_labels=relabelled),
                "weighted": label_accounting(o.given_labels, o.true_labels, weights=weights)}

    def summary(self) -> dict:
        """The detection part of the analysis record (JSON)."""
        o = self.oof
        rules = {rule: {"expected": expected_detection(f, self.p_wrong),
                        "graded": grade(f, o.noise_mask)}
                 for rule, f in self.flags_by_rule.items()}
        return {"temperature": self.temperature,
                "fold_validation_accuracy": o.validation_accuracy,
                "out_of_fold_accuracy": o.accuracy,
                "cleanlab_estimate": estimated_issues(o.given_labels, o.probs),
                "expected_errors": float(self.p_wrong.sum()),
                "injected": int(o.noise_mask.sum()), "training_images": int(len(o.ids)),
                "rule": self.rule, "rules": rules,
                "average_precision": self.ranking["average_precision"],
                "relabel_threshold": self.threshold, "labels": self.accounting()}


def analyse_folds(fold_records) -> Detection:
    """Everything that follows from the fold runs of one setting, without the injected mask:
    out-of-fold probabilities, calibration, the chosen rule's flags and the repair plans.
    Raises ValueError when the runs do not share one training set or a fold is missing."""
    oof = out_of_fold(fold_records)
    temperature = fit_temperature(oof.validation_probs, oof.validation_labels)
    calibrated = calibrate(oof.probs, temperature)
    posterior = noise_posterior(oof.given_labels, oof.probs, calibrated)
    flags_by_rule = flag_rules(oof.given_labels, oof.probs)
    p_wrong = 1 - posterior[np.arange(len(oof.given_labels)), oof.given_labels]
    rule = choose_rule(flags_by_rule, p_wrong)
    threshold = relabel_threshold(calibrate(oof.validation_probs, temperature),
                                  oof.validation_labels)
    plans = repair_plans(oof.ids, oof.given_labels, flags_by_rule[rule], calibrated, threshold,
                         posterior)
    return Detection(oof, temperature, calibrated, posterior, flags_by_rule, rule,
                       label_quality(oof.given_labels, oof.probs), threshold, plans)


# --- the whole setting ---------------------------------------------------------------------

@dataclasses.dataclass
class Cleanup:
    setting: Setting
    detection: Detection
    clean: list[results.Record]  # the clean baseline, one record per training seed
    runs: dict[str, list[results.Record]]  # "noisy" and each repair: one record per seed
    record: results.Record
    folds: list[results.Record] = dataclasses.field(default_factory=list)  # the K fold runs

    @property
    def analysis(self) -> dict:
        return self.record["analysis"]


def _accuracy(records, split: str = "test") -> dict:
    return {r["seed"]: r.metric(split, "accuracy") for r in records}


def _summarise(s: Setting, detection: Detection, clean, runs, k: int) -> dict:
    out = {"setting": {"kind": s.kind, "rate": s.rate, "label": s.label, "name": s.name,
                       "repairs": s.repairs},
           "noise_seed": NOISE_SEED, "folds": k, "relabel_precision": RELABEL_PRECISION,
           "detection": detection.summary(), "clean_test": _accuracy(clean)}
    if not runs:
        return out
    validation = {name: _accuracy(records, "validation") for name, records in runs.items()}
    test = {name: _accuracy(records) for name, records in runs.items()}
    noise = compare_over_seeds(test["noisy"], out["clean_test"])
    out |= {"seeds": sorted(test["noisy"]), "validation": validation, "test": test,
            "noise_cost": _comparison_dict(noise), "recommended": choose_repair(validation)}
    out["repairs"] = {}
    for name in REPAIRS:
        change = compare_over_seeds(test[name], test["noisy"])
        recovered = recovered_fraction(out["clean_test"], test["noisy"], test[name]) \
            if noise.verdict == "loss" else None
        out["repairs"][name] = {"vs_noisy": _comparison_dict(change), "recovered": recovered}
    return out


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _training_seeds(profile: str, training_seeds=None,
                    s: Setting | None = None) -> tuple[int, ...]:
    """``training_seeds`` (a list of ints, or one int) checked against ``seeds(profile)``;
    all of them when None. A dict maps setting names to such lists, so that each setting of a
    page can show the seeds recorded so far (``{"pairs40": [0, 1], "symmetric10": [0]}``); it
    is looked up by ``s.name`` and needs an entry for every setting that repairs (a setting
    that only grades detection trains no seeds). ValueError naming the fix otherwise."""
    allowed = seeds(profile)
    if isinstance(training_seeds, dict):
        if s is None:
            raise ValueError("training seeds given per setting (a dict) need the setting")
        if s.name in training_seeds:
            training_seeds = training_seeds[s.name]
        elif s.repairs:
            raise ValueError(f"training seeds {training_seeds!r} have no entry for {s.name!r}: "
                             f"add one such as '{s.name}': [0] (in chapter 6, the 'seeds' line "
                             f"of its parameters cell), or give one list for every setting")
        else:
            training_seeds = None
    if training_seeds is None:
        return allowed
    if _is_int(training_seeds):
        given = [training_seeds]
    elif isinstance(training_seeds, (list, tuple, set, range, np.ndarray)):
        given = list(training_seeds)
    else:
        given = None
    if given is None or not all(_is_int(seed) for seed in given):
        raise ValueError(f"training seeds {training_seeds!r}: give a list of integers such as "
                         f"[0], or a dict of such lists per setting (in chapter 6, the 'seeds' "
                         f"line of its parameters cell)")
    chosen = tuple(sorted({int(seed) for seed in given}))
    if not chosen or not set(chosen) <= set(allowed):
        raise ValueError(f"training seeds {given} of confident learning in "
                         f"{profile}: choose one or more of {', '.join(map(str, allowed))}")
    return chosen


def _experiment_plan(s: Setting, profile: str,
                     training_seeds=None) -> tuple[Detection | None, list, dict]:
    """(the Detection when every fold run is recorded, else None; the fold experiments;
    {seed: {run name: Experiment}} of the noisy runs and, once the folds are recorded, the
    repairs, for ``training_seeds`` (default: ``seeds(profile)``)) without training anything."""
    fold_runs = fold_experiments(s, profile)
    fold_records = [results.load(e.record_dir()) for e in fold_runs]
    detection = analyse_folds(fold_records) if all(fold_records) else None
    experiments = {}
    if s.repairs:
        for seed in _training_seeds(profile, training_seeds, s):
            experiments[seed] = {"noisy": noisy_experiment(s, profile, seed)}
            if detection is not None:
                experiments[seed] |= repair_experiments(s, profile, seed, detection.plans)
    return detection, fold_runs, experiments


def _analysis_key(s: Setting, profile: str, keys: dict) -> str:
    return results.config_key({"analysis": ANALYSIS, "method": METHOD,
                               "setting": dataclasses.asdict(s), "noise_seed": NOISE_SEED,
                               "folds": folds(profile), "relabel_precision": RELABEL_PRECISION,
                               **keys})


def _keys(clean, fold_runs, experiments) -> dict:
    return {"clean": [e.key() for e in clean], "folds": [e.key() for e in fold_runs],
            "runs": {str(seed): {n: e.key() for n, e in runs.items()}
                     for seed, runs in experiments.items()}}


def planned(s: Setting | str | float, profile: str | None = None,
            training_seeds=None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for every record ``clean_up(s, profile, training_seeds)`` needs:
    the clean baselines, the fold runs, per training seed the noisy run and the repairs (whose
    configs are known once the folds are recorded), and the analysis record."""
    s = setting(s)
    profile = get_profile(profile).name
    training_seeds = _training_seeds(profile, training_seeds, s)
    clean = catalog.baselines(profile, training_seeds) if s.repairs else []
    detection, fold_runs, experiments = _experiment_plan(s, profile, training_seeds)
    needed = [*clean, *fold_runs, *[e for runs in experiments.values() for e in runs.values()]]
    out = _labels(needed)
    for seed in experiments:
        if detection is None:
            out += _unconfigured(s, seed)
    recorded = all(done for _, done in out) and results.load(results.record_dir(
        profile, ANALYSIS, _analysis_key(s, profile, _keys(clean, fold_runs, experiments)))) \
        is not None
    return out + [(f"confident-learning analysis, {s.label}", recorded)]


def _labels(experiments) -> list[tuple[str, bool]]:
    # labelled as the scheduler labels single runs, so a run two steps need is counted once
    return [(f"{e.name}: {e.summary()}, seed {e.seed}", results.load(e.record_dir()) is not None)
            for e in dict.fromkeys(experiments)]


def _unconfigured(s: Setting, seed: int) -> list[tuple[str, bool]]:
    return [(f"{s.label}, seed {seed}: {name} (configured once the folds are recorded)", False)
            for name in REPAIRS]


def _check_seed(s: Setting, profile: str, seed: int) -> tuple[int]:
    """``(seed,)``, for a setting that repairs; ValueError otherwise (``_training_seeds``)."""
    if not s.repairs:
        raise ValueError(f"{s.name} only grades detection: it trains no repairs")
    return _training_seeds(profile, [seed])


def planned_seed(s: Setting | str | float, seed: int,
                 profile: str | None = None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for the runs ``train_seed(s, seed, profile)`` needs: the fold runs,
    the noisy run of training seed ``seed`` and its three repairs (labelled as in ``planned``).
    ValueError for a detection-only setting or a seed outside ``seeds(profile)``."""
    s = setting(s)
    profile = get_profile(profile).name
    detection, fold_runs, experiments = _experiment_plan(s, profile, _check_seed(s, profile, seed))
    out = _labels([*fold_runs, *experiments[seed].values()])
    return out + (_unconfigured(s, seed) if detection is None else [])


def train_seed(s: Setting | str | float, seed: int,
               profile: str | None = None) -> list[results.Record]:
    """Train what is missing of one training seed of setting ``s``: the fold runs (whose flags
    configure the repairs), then the noisy run and the three repairs with ``seed``; returns
    their records (idempotent). Lets the grid record one seed of every setting before the next
    (``clean_up`` then finds them and trains only the rest). ValueError as ``planned_seed``."""
    s = setting(s)
    profile = get_profile(profile).name
    only = _check_seed(s, profile, seed)
    run_all(fold_experiments(s, profile))
    _, _, experiments = _experiment_plan(s, profile, only)
    return run_all(list(dict.fromkeys(experiments[seed].values())))


def clean_up(s: Setting | str | float, profile: str | None = None,
             training_seeds=None) -> Cleanup:
    """Train what is missing (the fold runs, then per training seed the noisy run, the repairs
    and the clean baseline), analyse, and record the analysis (idempotent: a second call reads
    everything back). ``s``: a Setting, its name (``"pairs40"``) or a symmetric rate.
    ``training_seeds``: some of ``seeds(profile)`` (default: all), or a dict of them per
    setting name (``_training_seeds``), so that a page can show the seeds recorded so far while
    the grid trains the rest; the analysis key names them, so each choice is its own record.
    ValueError for a seed outside ``seeds(profile)``."""
    s = setting(s)
    profile = get_profile(profile).name
    training_seeds = _training_seeds(profile, training_seeds, s)
    folds = run_all(fold_experiments(s, profile))  # first: the repairs' configs follow from them
    detection, fold_runs, experiments = _experiment_plan(s, profile, training_seeds)
    clean = catalog.baselines(profile, training_seeds) if s.repairs else []
    clean_records = run_all(clean)
    runs: dict[str, list] = {}
    for name in CANDIDATES if s.repairs else ():
        runs[name] = run_all([experiments[seed][name] for seed in experiments])
    key = _analysis_key(s, profile, _keys(clean, fold_runs, experiments))
    path = results.record_dir(profile, ANALYSIS, key)
    record = results.load(path)
    if record is None:
        k = len(fold_runs)
        analysis = _summarise(s, detection, clean_records, runs, k) | {
            "runs": _keys(clean, fold_runs, experiments)}
        arrays = {"train_ids": detection.oof.ids.astype(str), "flags": detection.flags,
                  "noise_mask": detection.oof.noise_mask,
                  "label_quality": detection.quality.astype(np.float16),
                  "calibrated_probs": detection.calibrated.astype(np.float16)}
        first = results.load(fold_runs[0].record_dir())
        n_seeds = len(experiments)
        record = results.write(path, {
            "name": ANALYSIS, "key": key, "profile": profile, "seed": NOISE_SEED,
            "kind": "analysis",
            "summary": f"confident learning on {s.label} noise: {k}-fold CV"
                       + (f", three repairs, {n_seeds} training seeds" if s.repairs else ""),
            "config": {"setting": dataclasses.asdict(s), "noise_rate": s.rate,
                       "noise_kind": s.kind, "noise_seed": NOISE_SEED, "cv_folds": k,
                       "seeds": sorted(experiments), "recipe": first.get("recipe")},
            "analysis": analysis, "provenance": provenance(NOISE_SEED, profile),
        }, arrays)
    return Cleanup(s, detection, clean_records, runs, record, folds)


# --- a second detector: fold runs trained with crop + flip ---------------------------------

# The fold runs' training augmentation -> how the page names that detector. The first is the
# chapter's detector (its flags configure the repairs); the others are compared with it on the
# same noisy labels and the same fold split. Chapter 3's crop + flip is a change to the data,
# not to the recipe: the fold runs keep the book's one recipe.
DETECTORS = {False: "no augmentation", "crop_flip": "crop + flip"}
# The settings whose fold runs are also trained with every other detector (the grid's order)
DETECTOR_SETTINGS = ("symmetric40", "pairs40")


@dataclasses.dataclass
class DetectorTrial:
    """One detector of one setting: its K fold runs and what follows from them
    (``analyse_folds``), with two mask-free scores of the fold models on the clean validation
    set (every fold model predicts all of it): accuracy, and the log loss (nats per image) of
    the temperature-calibrated probabilities, the score the choice between detectors uses."""

    setting: Setting
    augment: bool | str
    folds: list[results.Record]
    detection: Detection

    @property
    def name(self) -> str:
        return DETECTORS[self.augment]

    @property
    def tag(self) -> str:
        """``plain`` or the augmentation's name: the glue keys' middle part."""
        return self.augment or "plain"

    @property
    def validation_accuracy(self) -> float:
        return self.detection.oof.validation_accuracy

    @functools.cached_property
    def validation_log_loss(self) -> float:
        o = self.detection.oof
        return log_loss(calibrate(o.validation_probs, self.detection.temperature),
                        o.validation_labels)


def _detector(s: Setting, augment, profile: str) -> list[Experiment]:
    if augment not in DETECTORS:
        raise ValueError(f"unknown detector augmentation {augment!r}: choose from "
                         f"{', '.join(map(repr, DETECTORS))}")
    return fold_experiments(s, profile, augment)


def try_detectors(s: Setting | str, profile: str | None = None,
                  chapter: Cleanup | None = None) -> list[DetectorTrial]:
    """One ``DetectorTrial`` per ``DETECTORS`` entry for setting ``s``, in that order, training
    the fold runs that are missing (K per detector, ``fold_experiments``). ``chapter``: the
    setting's ``clean_up`` result, whose fold runs and detection are reused for the first
    detector instead of being analysed again. Nothing here looks at the injected mask; the
    tables that grade the trials do."""
    s = setting(s)
    profile = get_profile(profile).name
    trials = []
    for augment in DETECTORS:
        if augment is False and chapter is not None and chapter.setting == s and chapter.folds:
            trials.append(DetectorTrial(s, augment, chapter.folds, chapter.detection))
            continue
        records = run_all(_detector(s, augment, profile))
        trials.append(DetectorTrial(s, augment, records, analyse_folds(records)))
    return trials


def compare_detectors(names, profile: str | None = None,
                      cleanups: list[Cleanup] = ()) -> list[list[DetectorTrial]]:
    """``try_detectors`` for each setting of ``names`` (e.g. ``DETECTOR_SETTINGS``), reusing
    the chapter's fold runs and detection from ``cleanups`` (``clean_up`` results) where one
    is that setting's."""
    by_name = {c.setting.name: c for c in cleanups}
    return [try_detectors(s, profile, by_name.get(setting(s).name)) for s in names]


def detector_runs(trials_by_setting: list[list[DetectorTrial]]) -> list[results.Record]:
    """The fold runs of every detector but the chapter's own, for ``report.provenance_note``."""
    return [r for trials in trials_by_setting for t in trials if t.augment for r in t.folds]


def choose_detector(trials: list[DetectorTrial]) -> DetectorTrial:
    """The trial whose calibrated fold models have the lowest log loss on the clean validation
    set (the first on ties): a mask-free choice, like the rule's."""
    return min(trials, key=lambda t: t.validation_log_loss)


def other_detector_experiments(s: Setting | str, profile: str | None = None) -> list[Experiment]:
    """The fold runs of every detector of ``DETECTORS`` but the chapter's own, for ``s``."""
    s = setting(s)
    return [e for augment in list(DETECTORS)[1:] for e in _detector(s, augment, profile)]


def planned_detectors(s: Setting | str, profile: str | None = None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for ``other_detector_experiments`` (the chapter's own fold runs
    are in ``planned``), labelled as the scheduler labels single runs."""
    return _labels(other_detector_experiments(s, get_profile(profile).name))


def _hindsight_rule(d: Detection) -> tuple[str, float]:
    """The rule whose flags grade best against the mask (first in ``RULES`` order on ties),
    and its F1."""
    f1 = {rule: grade(d.flags_by_rule[rule], d.oof.noise_mask)["f1"] for rule in RULES}
    best = _first_best(f1)
    return best, f1[best]


def _trial_figures(t: DetectorTrial) -> dict[str, str]:
    """Everything ``detectors_table`` and ``detectors_summary`` show of one trial, formatted,
    by glue suffix."""
    d, x = t.detection, _schedule(t.folds)
    graded = grade(d.flags, d.oof.noise_mask)
    hindsight, best_f1 = _hindsight_rule(d)
    labels = d.accounting()
    return {"runs": str(len(t.folds)), "epochs": _span(x["epochs"]),
            "full_rate": _span(x["full rate until"]),
            "val_accuracy": pct(t.validation_accuracy),
            "log_loss": f"{t.validation_log_loss:.3f}",
            "oof_accuracy": pct(d.oof.accuracy),
            "rule": RULES[d.rule], "flags": f"{graded['flagged']:,}",
            "precision": f"{graded['precision']:.2f}", "recall": f"{graded['recall']:.2f}",
            "f1": f"{graded['f1']:.2f}", "ap": f"{d.ranking['average_precision']:.2f}",
            "hindsight_rule": RULES[hindsight], "hindsight_f1": f"{best_f1:.2f}",
            "best_cut_f1": f"{d.ranking['best_f1']:.2f}",
            "top_share": pct(d.separated["top_precision"]),
            "base_share": pct(d.separated["base_rate"]),
            "right_before": pct(labels["noisy"]["right_after"]),
            "pruned_images": f"{labels['pruned']['size']:,}",
            "pruned_right": pct(labels["pruned"]["right_after"]),
            "relabel_fixed": f"{labels['relabelled']['fixed']:,}",
            "relabel_broken": f"{labels['relabelled']['broken']:,}",
            "relabelled_right": pct(labels["relabelled"]["right_after"])}


def detectors_table(trials_by_setting: list[list[DetectorTrial]]) -> pd.DataFrame:
    """One column per detector of each setting: how its fold runs trained (ranges over runs),
    the mask-free scores on the clean validation set (and which detector they choose); then,
    graded against the injected mask, the out-of-fold accuracy, the rule chosen by expected F1
    and its flags, the rule the mask would have picked, the average precision and best cut of
    the label-quality ranking, the share of wrong labels among the 5% of lowest quality, and
    what two of the repairs would have to work with (``label_accounting`` of the detector's
    repair plans): the images kept when the flags are dropped, and the labels fixed and broken
    by relabelling."""
    columns = {}
    for trials in trials_by_setting:
        chosen = choose_detector(trials)
        for t in trials:
            f = _trial_figures(t)
            columns[f"{t.setting.label}: {t.name}"] = {
                "fold runs": f["runs"], "epochs": f["epochs"],
                "full learning rate until epoch": f["full_rate"],
                "validation accuracy, fold models pooled (clean labels)": f["val_accuracy"],
                "validation log loss, calibrated (nats)": f["log_loss"],
                "detector chosen (lowest validation log loss; no mask)":
                    "yes" if t is chosen else "no",
                "out-of-fold accuracy (true labels)": f["oof_accuracy"],
                "rule chosen (expected F1)": f["rule"], "flags": f["flags"],
                "precision / recall / F1": f"{f['precision']} / {f['recall']} / {f['f1']}",
                "average precision of the ranking": f["ap"],
                "best rule in hindsight (its F1)": f"{f['hindsight_rule']} ({f['hindsight_f1']})",
                "best F1 of any cut of the ranking (hindsight)": f["best_cut_f1"],
                f"wrong among the {t.detection.separated['share']:.0%} lowest quality (share "
                "among all labels)": f"{f['top_share']} ({f['base_share']})",
                "flags dropped: images kept (labels right)":
                    f"{f['pruned_images']} ({f['pruned_right']})",
                "confident flags relabelled: fixed / broken (labels right)":
                    f"{f['relabel_fixed']} / {f['relabel_broken']} ({f['relabelled_right']})"}
    return pd.DataFrame(columns)


def detectors_summary(trials_by_setting: list[list[DetectorTrial]]) -> dict[str, str]:
    """Glue values of ``detectors_table``, ``<name>_<tag>_<figure>`` per setting name, detector
    tag (``plain``, ``crop_flip``) and figure (``_trial_figures``: ``val_accuracy``,
    ``log_loss``, ``oof_accuracy``, ``rule``, ``flags``, ``precision``, ``recall``, ``f1``,
    ``ap``, ``hindsight_rule``, ``hindsight_f1`` (the rule the mask would have picked),
    ``best_cut_f1``, ``full_rate``, ``epochs``, ``top_share``, and what the flags would leave
    the repairs: ``right_before``, ``pruned_images``, ``pruned_right``, ``relabel_fixed``,
    ``relabel_broken``, ``relabelled_right``), plus ``<name>_detector_chosen``, the chosen
    detector's name."""
    out = {}
    for trials in trials_by_setting:
        for t in trials:
            out |= {f"{t.setting.name}_{t.tag}_{key}": value
                    for key, value in _trial_figures(t).items() if key not in ("runs",
                                                                               "base_share")}
        out[f"{trials[0].setting.name}_detector_chosen"] = choose_detector(trials).name
    return out


# --- what the page shows -------------------------------------------------------------------

def _mean(values) -> float:
    return float(np.mean(list(values)))


def detection_table(cleanups: list[Cleanup]) -> pd.DataFrame:
    """One column per setting: the injected errors, cleanlab's and the calibrated models'
    estimates of their number, the rule chosen without the mask, how its flags grade against
    the mask (from the setting's K fold runs), the best F1 any cut of the label-quality ranking
    reaches in hindsight (``ranking_quality``), and whether the ranking puts wrong labels first
    (``separation``)."""
    columns = {}
    for c in cleanups:
        a, d = c.analysis, c.analysis["detection"]
        graded = d["rules"][d["rule"]]["graded"]
        columns[c.setting.label] = {
            "fold runs": str(a["folds"]),
            "training images": f"{d['training_images']:,}",
            "out-of-fold accuracy (true labels)": pct(d["out_of_fold_accuracy"]),
            "injected errors": f"{d['injected']:,}",
            "cleanlab's estimate of the errors": f"{d['cleanlab_estimate']:,}",
            "calibrated models' estimate": f"{d['expected_errors']:,.0f}",
            "rule chosen (expected F1)": RULES[d["rule"]],
            "flags": f"{graded['flagged']:,}",
            "precision / recall / F1": f"{graded['precision']:.2f} / {graded['recall']:.2f} / "
                                       f"{graded['f1']:.2f}",
            "average precision of the ranking": f"{d['average_precision']:.2f}",
        }
        sep, best = c.detection.separated, c.detection.ranking["best_f1"]
        columns[c.setting.label] |= {
            "best F1 of any cut of the ranking (hindsight)": f"{best:.2f}",
            f"wrong among the {sep['share']:.0%} lowest quality (share among all labels)":
                f"{pct(sep['top_precision'])} ({pct(sep['base_rate'])})"}
    return pd.DataFrame(columns)


def rules_table(c: Cleanup) -> pd.DataFrame:
    """Every rule of one setting: flags, the expected F1 the choice used, and the precision,
    recall and F1 graded against the mask."""
    rows = {}
    for rule, name in RULES.items():
        p = c.analysis["detection"]["rules"][rule]
        rows[name] = {"flags": f"{p['graded']['flagged']:,}",
                      "expected F1 (no mask)": f"{p['expected']['f1']:.3f}",
                      "precision (mask)": f"{p['graded']['precision']:.2f}",
                      "recall (mask)": f"{p['graded']['recall']:.2f}",
                      "F1 (mask)": f"{p['graded']['f1']:.2f}"}
    return pd.DataFrame.from_dict(rows, orient="index")


REPAIR_NAMES = {"noisy": "noisy (no repair)", "pruned": "flags dropped",
                "relabelled": "confident flags relabelled", "weighted": "flags down-weighted"}


def repairs_table(c: Cleanup) -> pd.DataFrame:
    """One row per training set of one setting: images, share of right labels (for the
    down-weighted set, each image counted with its weight: "(weighted)"), fixes and
    breakages (the same training set for every seed), validation and test accuracy (means over
    the training seeds), the change of test accuracy
    against the noisy runs with its 95% CI and verdict, and the recovered share of the loss
    with its CI where the noise cost more than its CI. A repair that changed nothing is marked
    "identical to no repair"; the recommended candidate (best mean validation accuracy) is
    marked in its own column."""
    a = c.analysis
    rows = {}
    for name in CANDIDATES:
        x = a["detection"]["labels"][name]
        row = {"training images": f"{x['size']:,}",
               "labels right": pct(x["right_after"]) + (" (weighted)" if name == "weighted"
                                                         else ""),
               "fixed / broken": f"{x['fixed']:,} / {x['broken']:,}"
               if name == "relabelled" else "",
               "wrong / right dropped": f"{x['dropped_wrong']:,} / {x['dropped_right']:,}"
               if name == "pruned" else "",
               "validation accuracy": f"{100 * _mean(a['validation'][name].values()):.2f}%",
               "test accuracy, 95% CI": mean_ci(a["test"][name].values()),
               "test vs noisy, 95% CI": "", "verdict": "", "loss recovered, 95% CI": ""}
        if name in REPAIRS and _same_runs(c, name, "noisy"):
            # nothing passed the repair's threshold: its training set is the noisy one
            row["test vs noisy, 95% CI"] = "identical to no repair"
        elif name in REPAIRS:
            change = _as_comparison(a["repairs"][name]["vs_noisy"])
            row["test vs noisy, 95% CI"] = interval(change)
            row["verdict"] = change.verdict
            row["loss recovered, 95% CI"] = recovered_text(a["repairs"][name]["recovered"],
                                                           a["noise_cost"])
        row["recommended (best validation)"] = "yes" if name == a["recommended"] else ""
        rows[REPAIR_NAMES[name]] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _same_runs(c: Cleanup, name: str, other: str) -> bool:
    """Whether two candidates of a setting trained the same runs (a repair that changed no
    label reuses the noisy runs)."""
    return [r.key for r in c.runs.get(name, [])] == [r.key for r in c.runs.get(other, [])]


def _as_comparison(d: dict):
    from helpers.evaluate import Comparison

    n = tuple(d["n"]) if isinstance(d["n"], list) else d["n"]
    return Comparison(d["difference"], d["low"], d["high"], n, "paired t-test over seeds")


def recovered_text(recovered: dict | None, noise_cost: dict | None = None) -> str:
    """The recovered share of the loss, (repaired - noisy) / (clean - noisy) over seeds, with
    its 95% CI; negative when the repair lost accuracy. Not computed where the noise's cost has
    a CI that includes zero (nothing measurable to recover), or none: ``noise_cost`` (the
    analysis's comparison) says "not enough seeds" with one training seed recorded so far, or
    with a cost that is the same on every seed."""
    if recovered is None:
        if noise_cost is not None and noise_cost.get("verdict") == "not enough seeds":
            if noise_cost["n"] < 2:
                return "not computed yet, as one seed gives the noise's cost no CI"
            return "not computed, as the noise's cost has no CI: it is the same on every seed"
        return "not computed, as the noise's cost has a CI that includes zero"
    if math.isnan(recovered["low"]):
        return f"{recovered['mean']:.0%} (no interval)"
    return f"{recovered['mean']:.0%} [{recovered['low']:.0%}, {recovered['high']:.0%}]"


def noise_cost_text(c: Cleanup) -> str:
    """The noise's cost against the clean baseline, ``-14.4 points [-15.7, -13.2]``."""
    return interval(_as_comparison(c.analysis["noise_cost"]))


def repairs_heading(c: Cleanup) -> str:
    """The line above a setting's repairs table: its training seeds and the noise's cost,
    ``**40% class-conditional (pairs)**, training seeds 0 and 1: the noise changed test
    accuracy by … against the clean baseline's runs of the same seeds.``"""
    n = len(c.analysis["seeds"])
    return (f"**{c.setting.label}**, {seeds_text(c.analysis['seeds'])}: the noise changed test "
            f"accuracy by {noise_cost_text(c)} against the clean baseline's "
            + ("runs of the same seeds." if n > 1 else
               "run of the same seed (one seed: no interval yet)."))


def pr_curves(cleanups: list[Cleanup]):
    """Precision-recall curves of cleanlab's label-quality ranking, one per setting, with the
    chosen rule's flags as a dot."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for c in cleanups:
        s = c.detection
        curve = s.ranking
        line, = ax.plot(curve["recall"], curve["precision"],
                        label=f"{c.setting.label} (AP {curve['average_precision']:.2f})")
        g = grade(s.flags, s.oof.noise_mask)
        ax.plot([g["recall"]], [g["precision"]], "o", color=line.get_color())
    ax.set(xlabel="recall (share of injected errors caught)",
           ylabel="precision (share of flags that are errors)", xlim=(0, 1), ylim=(0, 1.02),
           title="Ranking labels by cleanlab's label quality (dots: the chosen rule's flags)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def repairs_figure(cleanups: list[Cleanup]):
    """Test accuracy of the clean baseline, the noisy runs and each repair per setting: means
    over seeds with 95% CI bars (no bars, and a title that says so, where a setting has one
    training seed)."""
    import matplotlib.pyplot as plt

    shown = [c for c in cleanups if c.setting.repairs]
    n_seeds = max((len(c.analysis["seeds"]) for c in shown), default=0)
    fig, ax = plt.subplots(figsize=(9, 4.4), layout="constrained")
    names = ["clean", *CANDIDATES]
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        means, errors = [], []
        for c in shown:
            values = c.analysis["clean_test"] if name == "clean" else c.analysis["test"][name]
            mean, low, high = mean_interval(list(values.values()))
            means.append(100 * mean)
            errors.append(math.nan if math.isnan(low) else 100 * (high - low) / 2)
        x = np.arange(len(shown)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, means, width, yerr=errors if n_seeds > 1 else None, capsize=3,
               label="clean baseline" if name == "clean" else REPAIR_NAMES[name])
    ax.set_xticks(np.arange(len(shown)), [f"{c.setting.label}\n({seeds_text(c.analysis['seeds'])})"
                                          for c in shown])
    fewest = min((len(c.analysis["seeds"]) for c in shown), default=0)
    title = "Test accuracy after each repair " + (
        "(one training seed: no CI yet)" if n_seeds <= 1
        else "(mean over seeds, 95% CI)" if fewest > 1
        else "(mean over seeds; 95% CI where a setting has two or more)")
    # bars start at zero, so their lengths compare; the legend sits below, clear of the bars
    ax.set(ylabel="test accuracy (%)", ylim=(0, None), title=title)
    fig.legend(fontsize=8, ncol=len(names), loc="outside lower center")
    return fig


def flag_gallery(c: Cleanup, per_group: int = 6):
    """Caught errors, then false alarms; captions read given → suggested (true)."""
    from helpers import data, plots

    s = c.detection
    o = s.oof
    suggested = s.calibrated.argmax(axis=1)
    order = np.argsort(s.quality, kind="stable")  # most suspicious first
    caught = [i for i in order if s.flags[i] and o.noise_mask[i]][:per_group]
    false_alarms = [i for i in order if s.flags[i] and not o.noise_mask[i]][:per_group]
    shown = np.array(caught + false_alarms, dtype=int)
    images = data.load_split("train").by_ids(o.ids[shown]).images
    captions = [f"{CLASS_NAMES[o.given_labels[i]]} → {CLASS_NAMES[suggested[i]]}\n"
                f"({CLASS_NAMES[o.true_labels[i]]})" for i in shown]
    return plots.image_gallery(
        images, captions, columns=per_group,
        title=f"{c.setting.label}: {len(caught)} caught errors, then {len(false_alarms)} false "
              "alarms (most suspicious first)")


def runs_for_provenance(cleanups: list[Cleanup]) -> list[results.Record]:
    out = []
    for c in cleanups:
        out += [c.record, *c.clean, *[r for rs in c.runs.values() for r in rs]]
    return out


def training_runs(c: Cleanup) -> dict:
    """{label: record} of every retrained run of a setting, for ``report.training_table``."""
    return {f"{REPAIR_NAMES[name]}, seed {r['seed']}": r
            for name, records in c.runs.items() for r in records}


def _schedule(records) -> dict[str, list[float]]:
    """Per run: epochs trained, the last epoch at the full learning rate (before the first cut;
    the last epoch when it was never cut), validation accuracy then, and validation accuracy
    of the kept weights (lowest validation loss). Validation labels are always clean."""
    out = {"epochs": [], "full rate until": [], "accuracy then": [], "kept": []}
    for r in records:
        h = r.history
        cut = first_lr_cut(h)
        last = (cut - 1 if cut else len(h["loss"]))  # 1-based
        out["epochs"].append(len(h["loss"]))
        out["full rate until"].append(last)
        out["accuracy then"].append(h["val_accuracy"][last - 1])
        out["kept"].append(h["val_accuracy"][int(np.argmin(h["val_loss"]))])
    return out


def _span(values, percent: bool = False) -> str:
    """``8–12`` / ``46.2–55.3%`` (one value alone when they agree)."""
    lo, hi = min(values), max(values)
    f = (lambda v: f"{100 * v:.1f}") if percent else (lambda v: f"{v:d}")
    return (f(lo) if f(lo) == f(hi) else f"{f(lo)}–{f(hi)}") + ("%" if percent else "")


def _detector_schedules(cleanups: list[Cleanup]) -> list[tuple[str, str, int, dict]]:
    """(glue prefix, column label, number of runs, ``_schedule`` as ranges) for each setting's
    fold runs, then for the clean baseline's runs of the training seeds shown (when a setting
    has repairs)."""
    groups = [(f"{c.setting.name}_fold", f"{c.setting.label}: fold runs", c.folds)
              for c in cleanups]
    clean = next((c.clean for c in cleanups if c.clean), [])
    if clean:
        groups.append(("clean", "clean baseline (no noise)", clean))
    out = []
    for prefix, label, records in groups:
        x = _schedule(records)
        out.append((prefix, label, len(records), {
            "epochs": _span(x["epochs"]), "full_rate": _span(x["full rate until"]),
            "accuracy_then": _span(x["accuracy then"], True), "kept": _span(x["kept"], True)}))
    return out


def fold_training_table(cleanups: list[Cleanup]) -> pd.DataFrame:
    """How the detectors trained: one column per setting (its K fold runs) and one for the
    clean baseline's runs of the training seeds shown, each a range over runs: epochs, the
    last epoch before the plateau callback first cut the learning rate, validation accuracy
    then (clean validation labels) and of the weights kept (lowest validation loss). A cut
    that comes early, at low accuracy, leaves the rest of the run at a tenth of the rate."""
    return pd.DataFrame({label: {"runs": str(n), "epochs": x["epochs"],
                                 "full learning rate until epoch": x["full_rate"],
                                 "validation accuracy then": x["accuracy_then"],
                                 "validation accuracy of the kept weights": x["kept"]}
                         for _, label, n, x in _detector_schedules(cleanups)})


def fold_training_summary(cleanups: list[Cleanup]) -> dict[str, str]:
    """Glue values of ``fold_training_table``: ``{name}_fold_full_rate``,
    ``{name}_fold_accuracy_then`` and ``{name}_fold_kept`` per setting name, and the same with
    ``clean_`` for the clean baseline's runs (when a setting has repairs)."""
    return {f"{prefix}_{key}": x[key] for prefix, _, _, x in _detector_schedules(cleanups)
            for key in ("full_rate", "accuracy_then", "kept")}


def seeds_text(seeds) -> str:
    """``training seed 0`` / ``training seeds 0, 1 and 2``."""
    seeds = [str(s) for s in sorted(seeds)]
    return f"training seed{'s' if len(seeds) > 1 else ''} {join_and(seeds)}"


def seeds_shown(cleanups: list[Cleanup]) -> str:
    """The training seeds of the settings that repair: ``training seeds 0 and 1`` when they
    share them, else per group of settings, ``training seeds 0 and 1 for 40% symmetric and 40%
    class-conditional (pairs), and training seed 0 for 10% symmetric``."""
    groups: dict[tuple, list[str]] = {}
    for c in cleanups:
        if c.setting.repairs:
            groups.setdefault(tuple(sorted(c.analysis["seeds"])), []).append(c.setting.label)
    if len(groups) == 1:
        return seeds_text(next(iter(groups)))
    parts = [f"{seeds_text(seeds)} for {join_and(labels)}"
             for seeds, labels in sorted(groups.items(), key=lambda g: (-len(g[0]), g[0]))]
    return ", and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts)


def summary(cleanups: list[Cleanup]) -> dict[str, str]:
    """What the closing summary pastes (glue). ``seeds_shown``: the training seeds of the
    repairing settings (``seeds_shown``). Per setting (``<name>_…``): detection (F1, precision,
    recall, flags, injected errors, average precision, out-of-fold accuracy against the true
    labels, cleanlab's and the calibrated models' estimates of the number of wrong labels
    (``cleanlab_estimate``, ``expected_errors``), the chosen rule (``rule``) and the one the
    mask would have picked (``hindsight_rule``, ``hindsight_f1``), the best F1 of any cut of
    the label-quality ranking (``best_cut_f1``, ``ranking_quality``), and ``separation``'s
    ``top_share`` and ``base_share``); for settings that repair, their training seeds
    (``<name>_seeds``), the mean epochs of each
    candidate's runs (``<name>_<candidate>_epochs``), the labels right before
    (``right_before``) and after dropping the flags (``pruned_right``, ``pruned_images``), the
    relabelling's fixes and breakages, the noise's cost, each repair's change against the noisy
    runs with its verdict (``<name>_<repair>_change`` / ``_verdict``), the recommended repair,
    its change and its recovered share of the loss."""
    out = {}
    if any(c.setting.repairs for c in cleanups):
        out["seeds_shown"] = seeds_shown(cleanups)
    for c in cleanups:
        a, p = c.analysis, c.setting.name
        d = a["detection"]
        graded = d["rules"][d["rule"]]["graded"]
        sep, ranking = c.detection.separated, c.detection.ranking
        # the rule the mask would have picked (first in RULES order on ties)
        hindsight = _first_best({rule: d["rules"][rule]["graded"]["f1"] for rule in RULES})
        out |= {f"{p}_label": c.setting.label, f"{p}_f1": f"{graded['f1']:.2f}",
                f"{p}_precision": f"{graded['precision']:.2f}",
                f"{p}_recall": f"{graded['recall']:.2f}",
                f"{p}_flags": f"{graded['flagged']:,}",
                f"{p}_injected": f"{d['injected']:,}",
                f"{p}_ap": f"{d['average_precision']:.2f}",
                f"{p}_best_cut_f1": f"{ranking['best_f1']:.2f}",
                f"{p}_rule": RULES[d["rule"]],
                f"{p}_hindsight_rule": RULES[hindsight],
                f"{p}_hindsight_f1": f"{d['rules'][hindsight]['graded']['f1']:.2f}",
                f"{p}_oof_accuracy": pct(d["out_of_fold_accuracy"]),
                f"{p}_cleanlab_estimate": f"{d['cleanlab_estimate']:,}",
                f"{p}_expected_errors": f"{d['expected_errors']:,.0f}",
                f"{p}_top_share": pct(sep["top_precision"]),
                f"{p}_base_share": pct(sep["base_rate"])}
        if not c.setting.repairs:
            continue
        labels = d["labels"]
        out |= {f"{p}_seeds": seeds_text(a["seeds"]),
                f"{p}_right_before": pct(labels["noisy"]["right_after"]),
                f"{p}_pruned_right": pct(labels["pruned"]["right_after"]),
                f"{p}_pruned_images": f"{labels['pruned']['size']:,}",
                f"{p}_relabel_fixed": f"{labels['relabelled']['fixed']:,}",
                f"{p}_relabel_broken": f"{labels['relabelled']['broken']:,}"}
        for name in CANDIDATES:
            out[f"{p}_{name}_epochs"] = f"{_mean(r['epochs'] for r in c.runs[name]):.0f}"
        for name in REPAIRS:
            if _same_runs(c, name, "noisy"):
                out |= {f"{p}_{name}_change": "no change (nothing passed its threshold)",
                        f"{p}_{name}_verdict": "identical to no repair"}
            else:
                change = _as_comparison(a["repairs"][name]["vs_noisy"])
                out |= {f"{p}_{name}_change": interval(change),
                        f"{p}_{name}_verdict": verdict_phrase(change)}
        noise = _as_comparison(a["noise_cost"])
        best = a["recommended"]
        out |= {f"{p}_noise_cost": interval(noise), f"{p}_noise_verdict": verdict_phrase(noise),
                f"{p}_recommended": REPAIR_NAMES[best]}
        if best == "noisy" or _same_runs(c, best, "noisy"):
            out |= {f"{p}_best_change": "no change",
                    f"{p}_best_verdict": "its training set is the noisy one",
                    f"{p}_best_recovered": "not applicable"}
        else:  # the recommended repair's own change and verdict, glued above
            out |= {f"{p}_best_change": out[f"{p}_{best}_change"],
                    f"{p}_best_verdict": out[f"{p}_{best}_verdict"],
                    f"{p}_best_recovered": recovered_text(a["repairs"][best]["recovered"],
                                                          a["noise_cost"])}
        # the repair with the best test result, for "did validation pick it?"
        test_best = max(CANDIDATES, key=lambda n: _mean(a["test"][n].values()))
        out[f"{p}_test_best"] = REPAIR_NAMES[test_best]
    return out


def progress(profile: str | None = None, settings=SETTINGS,
             training_seeds=None, detector_settings=()) -> pd.DataFrame:
    """One row per setting: how many of the records ``clean_up(s, profile, training_seeds)``
    needs exist in ``profile`` (``planned``), and the first few missing ones by name; then one
    row per setting of ``detector_settings`` for the fold runs of its other detectors
    (``planned_detectors``)."""
    rows = {}
    plans = [(s.label, planned(s, profile, training_seeds)) for s in map(setting, settings)]
    plans += [(f"{setting(s).label}: fold runs with "
               f"{' / '.join(list(DETECTORS.values())[1:])}", planned_detectors(s, profile))
              for s in detector_settings]
    for label, plan in plans:
        missing = [name for name, done in plan if not done]
        rows[label] = {"records needed": len(plan), "recorded": len(plan) - len(missing),
                       "missing": len(missing),
                       "first missing": "; ".join(missing[:2]) + (" …" if len(missing) > 2
                                                                   else "")}
    return pd.DataFrame.from_dict(rows, orient="index")

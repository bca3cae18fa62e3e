"""Auditing the CIFAR-10 test set: cleanlab ranks the test labels by the averaged predicted
probabilities of an ensemble of the book's models (``ensemble_experiments``), and its flags are
compared with the published, human-validated label errors. ``audit(profile)`` is idempotent
(trains missing members through the registry); ``planned(profile)`` lists what it needs.

Which auditor (the ensemble or one member) and which flagging rule (``confident.RULES``) the
chapter uses is chosen on the validation split, never on the published list: label errors are
planted in the validation labels (``PLANTED_NOISE``), every auditor and rule flags them from its
held-out validation probabilities, and the pair with the highest mean F1 against the planted
mask audits the test labels (``choose_auditor``)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pandas as pd

from helpers import CLASS_NAMES, catalog, confident, data, noise, results, sources
from helpers.experiments import Experiment, provenance, run_all
from helpers.recipe import LEGACY

FLAGGED_CSV = "flagged_test_labels.csv"


def published_label_errors() -> pd.DataFrame:
    """The 275 test images confident learning flagged in the pervasive-label-errors study,
    with Mechanical Turk votes. ``validated`` marks the 54 whose given label got fewer than 3
    of 5 votes; ``human_label`` is the suggested label where at least 3 voters agreed with it."""
    folder = sources.label_errors_dir()
    if folder is not None:
        entries = json.loads((folder / "cifar10_mturk.json").read_text())
    elif sources.offline():
        raise FileNotFoundError(
            "the published CIFAR-10 label errors are not available offline: set DCAI_SHARED to "
            "the shared/ folder (with label_quality/), or unset DCAI_OFFLINE to download them")
    else:
        with urllib.request.urlopen(sources.LABEL_ERRORS_URL, timeout=60) as response:
            entries = json.loads(response.read())
    frame = pd.DataFrame({
        "test_index": [e["id"] for e in entries],
        "given_label": [e["given_original_label"] for e in entries],
        "suggested_label": [e["our_guessed_label"] for e in entries],
        "votes_given": [e["mturk"]["given"] for e in entries],
        "votes_suggested": [e["mturk"]["guessed"] for e in entries],
    })
    frame["validated"] = frame["votes_given"] < 3
    frame["human_label"] = np.where(frame["votes_suggested"] >= 3, frame["suggested_label"], -1)
    return frame


def corrected_test_labels(test_indices: np.ndarray, labels: np.ndarray,
                          published: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(labels, keep): validated errors with a human-agreed label are relabelled; validated
    errors without one (no majority for any class) are left out of the corrected test set."""
    labels = labels.copy()
    keep = np.ones(len(labels), dtype=bool)
    position = {int(t): n for n, t in enumerate(test_indices)}
    for row in published[published["validated"]].itertuples():
        n = position.get(int(row.test_index))
        if n is None:
            continue  # not in this profile's test subset
        if row.human_label >= 0:
            labels[n] = row.human_label
        else:
            keep[n] = False
    return labels, keep


def correction_text(published: pd.DataFrame) -> str:
    """How ``corrected_test_labels`` treats the validated errors of ``published``
    (``published_label_errors``), counted over the whole published list: ``"<n> validated
    errors: <r> relabelled with the workers' agreed label, <n - r> left out (no agreed
    label)"``."""
    validated = published[published["validated"]]
    relabelled = int((validated["human_label"] >= 0).sum())
    return (f"{len(validated)} validated errors: {relabelled} relabelled with the workers' agreed "
            f"label, {len(validated) - relabelled} left out (no agreed label)")


def rescore(records: list[results.Record], published: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of each recorded model on the original and the corrected test labels,
    with its rank under each."""
    rows = []
    for record in records:
        if not results.is_full_model(record):
            continue
        arrays = record.arrays
        indices = data.test_indices(arrays["test_ids"])
        predicted = arrays["test_probs"].argmax(axis=1)
        corrected, keep = corrected_test_labels(indices, arrays["test_labels"], published)
        rows.append({"experiment": record.name, "setting": record.get("summary"),
                     "seed": record.get("seed"),
                     "original": float((predicted == arrays["test_labels"]).mean()),
                     "corrected": float((predicted[keep] == corrected[keep]).mean())})
    frame = pd.DataFrame(rows)
    frame["rank (original)"] = frame["original"].rank(ascending=False, method="min").astype(int)
    frame["rank (corrected)"] = frame["corrected"].rank(ascending=False, method="min").astype(int)
    return frame.sort_values("rank (original)").reset_index(drop=True)


def summary(record: results.Record, scores: pd.DataFrame) -> dict[str, str]:
    """What chapter 7's closing summary pastes (glue): the chosen auditor and rule, its flags
    and how many of the published candidates and validated errors are among them, the ensemble
    and the member that finds most validated errors alone (fewest flags on ties) under the same
    rule, and how many models change rank after correction."""
    a = record["analysis"]
    changed = int((scores["rank (original)"] != scores["rank (corrected)"]).sum())
    best = max(a["members"], key=lambda m: (m["flagged_in_validated"], -m["flagged"]))
    chosen = next(row for row in a["selection"]
                  if row["auditor"] == a["auditor"] and row["rule"] == a["rule"])
    return {"audit_members": f"{len(a['members']):,}",
            "audit_auditor": a["auditor"], "audit_rule": confident.RULES[a["rule"]],
            "audit_planted_f1": f"{chosen['f1']:.2f}",
            "audit_flagged": f"{a['flagged']:,}", "audit_found": f"{a['flagged_in_validated']:,}",
            "audit_in_candidates": f"{a['flagged_in_candidates']:,}",
            "audit_candidates": f"{a['published_candidates_in_test_set']:,}",
            "audit_validated": f"{a['published_validated_in_test_set']:,}",
            "audit_ensemble_flagged": f"{a['ensemble']['flagged']:,}",
            "audit_ensemble_found": f"{a['ensemble']['flagged_in_validated']:,}",
            "audit_best_member": f"{best['name'].replace('_', ' ')} ({best['summary']}, seed "
                                 f"{best['seed']})",
            "audit_best_flagged": f"{best['flagged']:,}",
            "audit_best_found": f"{best['flagged_in_validated']:,}",
            "audit_vs_best": _versus(a, best),
            "audit_candidate_share": _share(a), "audit_best_candidate_share": _share(best),
            "audit_precision_vs_best": _more_or_less(_share(a), _share(best)),
            **_most_found(a),
            "audit_changed": f"{changed:,}", "audit_models": f"{len(scores):,}",
            "audit_max_shift": f"{100 * (scores['corrected'] - scores['original']).abs().max():.2f}"}


def _most_found(a: dict) -> dict[str, str]:
    """The rule of the chosen auditor that finds the most validated errors on the test labels
    (fewest flags on ties), graded after the choice: what choosing on planted errors cost."""
    rule, best = max(a["rules_on_test"].items(),
                     key=lambda kv: (kv[1]["flagged_in_validated"], -kv[1]["flagged"]))
    return {"audit_most_found_rule": confident.RULES[rule],
            "audit_most_found": f"{best['flagged_in_validated']:,}",
            "audit_most_found_flags": f"{best['flagged']:,}"}


def _share(counts: dict) -> str:
    """The share of an auditor's flags that are among the published candidates, in percent."""
    return f"{100 * counts['flagged_in_candidates'] / max(counts['flagged'], 1):.1f}%"


def _more_or_less(ours: str, theirs: str) -> str:
    """'more precise than', 'less precise than' or 'as precise as', for two shares of flags
    among the candidates as printed ('12.3%')."""
    ours, theirs = float(ours.rstrip("%")), float(theirs.rstrip("%"))
    return ("more precise than" if ours > theirs else "less precise than" if ours < theirs
            else "as precise as")


def _versus(a: dict, best: dict) -> str:
    """How the chosen auditor compares with the best member: 'more validated errors than that
    member, with fewer flags', 'as many validated errors as that member, with more flags', ..."""
    found = a["flagged_in_validated"] - best["flagged_in_validated"]
    flags = a["flagged"] - best["flagged"]
    errors = ("more validated errors than" if found > 0 else "as many validated errors as"
              if found == 0 else "fewer validated errors than")
    return f"{errors} that member, with " + ("fewer" if flags < 0 else "as many" if flags == 0
                                              else "more") + " flags"


def selection_table(record: results.Record, rows: int = 8) -> pd.DataFrame:
    """How the auditor and rule were chosen: the ``rows`` best (auditor, rule) pairs by mean F1
    on the label errors planted in the validation labels, with the chosen pair marked."""
    a = record["analysis"]
    frame = pd.DataFrame(a["selection"]).sort_values("f1", ascending=False, kind="stable")
    frame = frame.head(rows).reset_index(drop=True)
    return pd.DataFrame(index=pd.RangeIndex(1, len(frame) + 1, name="rank"), data={
        "auditor": frame["auditor"].to_numpy(),
        "rule": [confident.RULES[r] for r in frame["rule"]],
        "flags (mean of 6 plantings)": [f"{v:,.0f}" for v in frame["flagged"]],
        "planted errors (mean)": [f"{v:,.0f}" for v in frame["planted"]],
        "precision": [f"{v:.2f}" for v in frame["precision"]],
        "recall": [f"{v:.2f}" for v in frame["recall"]],
        "F1": [f"{v:.3f}" for v in frame["f1"]],
        "chosen": ["yes" if (x, r) == (a["auditor"], a["rule"]) else ""
                   for x, r in zip(frame["auditor"], frame["rule"])],
    })


def rules_table(record: results.Record) -> pd.DataFrame:
    """Every rule of the chosen auditor on the test labels, graded on the published list after
    the choice: flags, flags among the candidates and among the validated errors."""
    a = record["analysis"]
    return pd.DataFrame({
        "flags": [f"{o['flagged']:,}" for o in a["rules_on_test"].values()],
        "among the candidates": [f"{o['flagged_in_candidates']:,}"
                                 for o in a["rules_on_test"].values()],
        "among the validated errors": [f"{o['flagged_in_validated']:,}"
                                       for o in a["rules_on_test"].values()],
        "chosen": ["yes" if r == a["rule"] else "" for r in a["rules_on_test"]],
    }, index=pd.Index([confident.RULES[r] for r in a["rules_on_test"]], name="rule"))


def rescore_table(scores: pd.DataFrame, changed_only: bool = False) -> pd.DataFrame:
    """``rescore`` for reading: accuracies as percentages with two decimals (corrections move
    them by hundredths of a point), the experiment as the index. Equal accuracies share a
    rank (the lowest). With ``changed_only``, only the models whose rank differs between the
    original and the corrected labels, and the models that hold one of their ranks under
    either labelling (whose place they take, or whose tie they break), so that a long list
    does not hide them; an empty table when no rank changes."""
    shown = scores.copy()
    if changed_only:
        original, corrected = shown["rank (original)"], shown["rank (corrected)"]
        changed = original != corrected
        ranks = set(original[changed]) | set(corrected[changed])
        shown = shown[changed | original.isin(ranks) | corrected.isin(ranks)].copy()
    for column in ("original", "corrected"):
        shown[column] = [f"{100 * v:.2f}%" for v in shown[column]]
    shown["experiment"] = [e.replace("_", " ") for e in shown["experiment"]]
    return shown.rename(columns={"original": "accuracy (original labels)",
                                 "corrected": "accuracy (corrected labels)"}
                        ).set_index("experiment")


def ensemble_experiments(profile: str | None = None, seeds=catalog.BASELINE_SEEDS
                         ) -> list[Experiment]:
    """The auditors: every model of chapters 1, 3, 4 and 5 trained on clean labels with at
    least the baseline's images, each with every seed of ``seeds``: the baseline, the
    article's augmentation, crop + flip, crop alone, flip alone, extra cats and dogs, 75% and
    100% of the pool (24 models with the default three seeds, listed configuration by
    configuration). None of them saw a test label; averaging their predicted probabilities
    cancels part of each model's own mistakes."""
    configurations = (catalog.baseline, *catalog.AUGMENTATIONS, catalog.more_cats_and_dogs,
                      lambda p, s: catalog.more_data(0.75, p, s),
                      lambda p, s: catalog.more_data(1.0, p, s))
    return [make(profile, seed) for make in configurations for seed in seeds]


def member_records(profile: str | None = None) -> list[results.Record]:
    """The ensemble's member records, read from the registry (after ``audit(profile)``, which
    trains missing members); FileNotFoundError names the member that is missing."""
    records = []
    for e in ensemble_experiments(profile):
        record = results.load(e.record_dir())
        if record is None:
            raise FileNotFoundError(f"{e.name} ({e.summary()}, seed {e.seed}) is not recorded: "
                                    f"run audit.audit({profile!r}) first, which trains it")
        records.append(record)
    return records


def ensemble_probs(records, split: str = "test") -> np.ndarray:
    """Mean of the members' (row-normalised) probabilities on ``split`` ("test" or
    "validation"), shape (images, classes); every member must have scored the same images in
    the same order (ValueError otherwise)."""
    first = records[0].arrays[f"{split}_ids"]
    probs = []
    for record in records:
        arrays = record.arrays
        if not np.array_equal(arrays[f"{split}_ids"], first):
            raise ValueError(f"{record.name} scored other {split} images than {records[0].name}")
        p = np.clip(arrays[f"{split}_probs"].astype(np.float64), 1e-7, None)
        probs.append(p / p.sum(axis=1, keepdims=True))
    return np.mean(probs, axis=0)


def rank_labels(labels: np.ndarray, probs: np.ndarray, indices: np.ndarray,
                rule: str = "prune_by_noise_rate") -> pd.DataFrame:
    """The flags of ``rule`` (a key of ``confident.RULES``; default: cleanlab's default
    filter) on the test labels, one row per flag, sorted from the lowest label quality
    (self-confidence) up: test_index, given_label, suggested_label, label_quality (the columns
    of ``flagged_test_labels.csv``). ``labels``: (n,) class ids; ``probs``: (n, classes)."""
    return _flag_rows(labels, probs, indices, confident.flag_rules(labels, probs)[rule])


def _flag_rows(labels, probs, indices, flags) -> pd.DataFrame:
    """``rank_labels``'s rows for flags already computed (``flags``: (n,) booleans)."""
    quality = confident.label_quality(labels, probs)
    rows = np.flatnonzero(flags)
    rows = rows[np.argsort(quality[rows], kind="stable")]
    return pd.DataFrame({"test_index": indices[rows], "given_label": labels[rows],
                         "suggested_label": probs[rows].argmax(axis=1),
                         "label_quality": quality[rows].round(5)})


def overlap(flagged_indices, evaluated, published: pd.DataFrame) -> dict:
    """How many flags are among the published candidates and validated errors (restricted to
    the test images this profile scores)."""
    evaluated = set(int(i) for i in evaluated)
    candidates = set(published["test_index"]) & evaluated
    validated = set(published.loc[published["validated"], "test_index"]) & evaluated
    ours = set(int(i) for i in flagged_indices)
    return {"flagged": len(ours), "published_candidates_in_test_set": len(candidates),
            "published_validated_in_test_set": len(validated),
            "flagged_in_candidates": len(ours & candidates),
            "flagged_in_validated": len(ours & validated),
            "validated_recall": len(ours & validated) / len(validated) if validated else None,
            "flag_precision_vs_candidates": len(ours & candidates) / len(ours) if ours else None}


def ranking_precision(quality_order_indices, published: pd.DataFrame, evaluated) -> float | None:
    """Average precision of a ranking (most suspicious first) at finding the validated errors."""
    from sklearn.metrics import average_precision_score

    evaluated = np.asarray(list(evaluated))
    validated = set(published.loc[published["validated"], "test_index"]) & set(evaluated.tolist())
    if not validated:
        return None
    order = np.asarray(quality_order_indices)
    truth = np.isin(order, list(validated))
    score = -np.arange(len(order), dtype=float)  # rank order as the score
    return float(average_precision_score(truth, score)) if truth.any() else 0.0


ENSEMBLE = "ensemble of all members"
# Label errors planted in the validation labels to choose the auditor and the rule: both kinds
# of ``helpers.noise`` at a rate near the published candidates' share of the test set (275 of
# 10,000), each drawn with three noise seeds.
PLANTED_NOISE = (("symmetric", 0.03), ("pairs", 0.03))
PLANTED_SEEDS = (0, 1, 2)


def _member_label(name: str, summary: str, seed) -> str:
    """How the page names one member: "more data: 100% of pool, seed 0"."""
    return f"{name.replace('_', ' ')}: {summary}, seed {seed}"


def auditor_name(record) -> str:
    return _member_label(record.name, record.get("summary"), record["seed"])


def auditors(records, split: str = "test") -> dict[str, np.ndarray]:
    """{auditor: (n, classes) probabilities on ``split`` ("test" or "validation")}: the
    ensemble's mean (``ENSEMBLE``), then each member alone."""
    out = {ENSEMBLE: ensemble_probs(records, split)}
    for record in records:
        out[auditor_name(record)] = ensemble_probs([record], split)
    return out


def choose_auditor(records) -> dict:
    """Choose the auditor and the flagging rule without the published list: plant label errors
    (``PLANTED_NOISE`` x ``PLANTED_SEEDS``) in the members' shared validation labels, let every
    auditor flag them with every rule of ``confident.RULES`` from its validation probabilities,
    and grade the flags against the planted mask. Returns ``{"auditor", "rule", "table"}``:
    the pair with the highest mean F1 (first listed on ties) and one row per (auditor, rule)
    with its mean precision, recall and F1."""
    labels = records[0].arrays["validation_labels"]
    probs = auditors(records, "validation")
    grades: dict[tuple[str, str], list[dict]] = {}
    for kind, rate in PLANTED_NOISE:
        for seed in PLANTED_SEEDS:
            planted, mask = noise.inject_noise(labels, rate, seed, kind)
            for name, p in probs.items():
                for rule, flags in confident.flag_rules(planted, p).items():
                    grades.setdefault((name, rule), []).append(confident.grade(flags, mask))
    table = [{"auditor": name, "rule": rule,
              **{m: float(np.mean([g[m] for g in graded])) for m in ("precision", "recall", "f1")},
              "flagged": float(np.mean([g["flagged"] for g in graded])),
              "planted": float(np.mean([g["injected"] for g in graded]))}
             for (name, rule), graded in grades.items()]
    best = max(table, key=lambda row: (row["f1"], -table.index(row)))
    return {"auditor": best["auditor"], "rule": best["rule"], "table": table}


def _quality_order(labels, probs, indices) -> np.ndarray:
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    return indices[np.argsort(quality, kind="stable")]


def planned(profile: str | None = None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for every record ``audit(profile)`` needs: the ensemble's
    members, then the audit record itself."""
    members = ensemble_experiments(profile)
    out = [(f"{e.name}: {e.summary()}, seed {e.seed}", results.load(e.record_dir()) is not None)
           for e in members]
    recorded = all(done for _, done in out) and results.load(_audit_path(members)) is not None
    return out + [("test-set audit (ensemble)", recorded)]


def _audit_path(members):
    key = results.config_key({"analysis": NAME, "method": METHOD,
                              "members": [e.key() for e in members]})
    return results.record_dir(members[0].profile, NAME, key)


NAME = "test_set_audit"
# in the audit key: a change of method is a new record
METHOD = "chosen-on-planted-validation-errors/v3"


def audit(profile: str | None = None) -> results.Record:
    """Flag likely test-label errors with cleanlab on the ensemble's averaged probabilities
    and compare with the published list; each member alone is scored the same way, for
    comparison (idempotent: trains missing members through the registry).

    The analysis record holds the overlaps, and ``flagged_test_labels.csv`` (one row per
    flagged image, lowest label quality first: original test index, given and suggested class
    ids, label quality)."""
    members = ensemble_experiments(profile)
    runs = run_all(members)
    path = _audit_path(members)
    cached = results.load(path)
    if cached is not None:
        return cached
    choice = choose_auditor(runs)
    rule = choice["rule"]
    test_probs = auditors(runs, "test")
    arrays = runs[0].arrays
    labels, indices = arrays["test_labels"], data.test_indices(arrays["test_ids"])
    test_flags = {name: confident.flag_rules(labels, p) for name, p in test_probs.items()}
    probs = test_probs[choice["auditor"]]
    flagged = _flag_rows(labels, probs, indices, test_flags[choice["auditor"]][rule])
    published = published_label_errors()
    per_model = []
    for run in runs:
        own = test_probs[auditor_name(run)]
        own_flags = _flag_rows(labels, own, indices, test_flags[auditor_name(run)][rule])
        per_model.append({"name": run.name, "summary": run.get("summary"), "seed": run["seed"],
                          "key": run.key, "test_accuracy": run.metric("test", "accuracy"),
                          **overlap(own_flags["test_index"], indices, published),
                          "average_precision_validated": ranking_precision(
                              _quality_order(labels, own, indices), published, indices)})
    ensemble = test_probs[ENSEMBLE]
    ensemble_flags = _flag_rows(labels, ensemble, indices, test_flags[ENSEMBLE][rule])
    analysis = {
        "members": per_model, "test_images": len(indices),
        "auditor": choice["auditor"], "rule": choice["rule"], "selection": choice["table"],
        "planted_noise": [list(p) for p in PLANTED_NOISE], "planted_seeds": list(PLANTED_SEEDS),
        "ensemble": {"test_accuracy": float((ensemble.argmax(axis=1) == labels).mean()),
                     **overlap(ensemble_flags["test_index"], indices, published),
                     "average_precision_validated": ranking_precision(
                         _quality_order(labels, ensemble, indices), published, indices)},
        "test_accuracy": float((probs.argmax(axis=1) == labels).mean()),
        # every rule of the chosen auditor graded on the published list, after the choice
        "rules_on_test": {name: overlap(indices[flags], indices, published)
                          for name, flags in test_flags[choice["auditor"]].items()},
        **overlap(flagged["test_index"], indices, published),
        "average_precision_validated": ranking_precision(_quality_order(labels, probs, indices),
                                                         published, indices),
    }
    first = runs[0]
    return results.write(path, {
        "name": NAME, "key": path.name.rsplit("-", 1)[-1], "profile": first.profile,
        "seed": None, "kind": "analysis",
        "summary": f"cleanlab audit of {len(indices):,} test labels: {choice['auditor']}, "
                   f"{confident.RULES[choice['rule']]} (chosen on planted validation errors "
                   f"among {len(runs)} models and their ensemble)",
        "config": {"members": [r.key for r in runs], "recipe": first.config.get("recipe", LEGACY)},
        "analysis": analysis, "provenance": provenance(None, first.profile),
    }, files={FLAGGED_CSV: flagged.to_csv(index=False)})


def members_table(record: results.Record) -> pd.DataFrame:
    """Each member alone and the ensemble, all flagging with the chosen rule: test accuracy,
    flags, flags among the published candidates and among the validated errors, and the
    average precision of its label-quality ranking at finding the validated errors."""
    a = record["analysis"]
    rows = {}
    for m in a["members"]:
        rows[_member_label(m["name"], m["summary"], m["seed"])] = m
    rows[ENSEMBLE] = a["ensemble"]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return pd.DataFrame({
        "test accuracy": [f"{100 * v:.1f}%" for v in frame["test_accuracy"]],
        "flags": [f"{v:,}" for v in frame["flagged"]],
        "among the candidates": [f"{v:,}" for v in frame["flagged_in_candidates"]],
        "among the validated errors": [f"{v:,}" for v in frame["flagged_in_validated"]],
        "average precision (validated)": ["n/a" if v is None or v != v else f"{v:.2f}"
                                          for v in frame["average_precision_validated"]],
    }, index=frame.index)


def flagged_table(record: results.Record) -> pd.DataFrame:
    """The audit's ``flagged_test_labels.csv`` with class names added (one row per flag)."""
    frame = pd.read_csv(record.path / FLAGGED_CSV)
    frame["given"] = [CLASS_NAMES[i] for i in frame["given_label"]]
    frame["suggested"] = [CLASS_NAMES[i] for i in frame["suggested_label"]]
    return frame


def flagged_view(flagged: pd.DataFrame, rows: int = 10) -> pd.DataFrame:
    """The first ``rows`` flags for reading: indexed by the original test index, class names,
    label quality in scientific notation (the lowest are near zero)."""
    shown = flagged.head(rows).set_index("test_index")
    shown["label quality"] = [f"{q:.1e}" for q in shown["label_quality"]]  # tiny values
    return shown[["given", "suggested", "label quality"]]


def counts_table(record: results.Record) -> pd.DataFrame:
    """The audit's counts next to the published list, with thousands separators."""
    a = record["analysis"]
    counts = {
        "test images scored": a["test_images"],
        "flagged by the chosen auditor and rule": a["flagged"],
        "published candidates in this test set": a["published_candidates_in_test_set"],
        "flagged and among the candidates": a["flagged_in_candidates"],
        "published validated errors in this test set": a["published_validated_in_test_set"],
        "flagged and among the validated errors": a["flagged_in_validated"],
    }
    return pd.DataFrame({"count": [f"{v:,}" for v in counts.values()]}, index=list(counts))


def gallery(record: results.Record, published: pd.DataFrame, per_group: int = 6):
    """Flags the human validation confirmed, then flags not on the published list."""
    from helpers import plots

    flagged = flagged_table(record)
    agree = flagged[flagged["test_index"].isin(published.loc[published["validated"], "test_index"])]
    ours_only = flagged[~flagged["test_index"].isin(published["test_index"])]
    shown = pd.concat([agree.head(per_group), ours_only.head(per_group)])
    images = data.load_split("test").by_ids([f"test_{i:05d}" for i in shown["test_index"]]).images
    captions = [f"{g} → {s}\n(#{i})"
                for g, s, i in zip(shown["given"], shown["suggested"], shown["test_index"])]
    return plots.image_gallery(
        images, captions, columns=per_group,
        title=f"{min(len(agree), per_group)} confirmed errors we flagged, then "
              f"{min(len(ours_only), per_group)} flags not on the published list")

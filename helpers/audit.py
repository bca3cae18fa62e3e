"""Auditing the CIFAR-10 test set: cleanlab ranks the test labels of a model trained on the
whole pool, and its flags are compared with the published, human-validated label errors."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pandas as pd

from helpers import CLASS_NAMES, catalog, data, results, sources
from helpers.experiments import provenance, run_experiment
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
    """What chapter 7's closing summary pastes (glue): flags, how many of the published
    validated errors are among them, and how many models change rank after correction."""
    a = record["analysis"]
    changed = int((scores["rank (original)"] != scores["rank (corrected)"]).sum())
    return {"audit_flagged": f"{a['flagged']:,}", "audit_found": f"{a['flagged_in_validated']:,}",
            "audit_validated": f"{a['published_validated_in_test_set']:,}",
            "audit_changed": f"{changed:,}", "audit_models": f"{len(scores):,}"}


def rescore_table(scores: pd.DataFrame) -> pd.DataFrame:
    """``rescore`` for reading: accuracies as percentages with two decimals (corrections move
    them by hundredths of a point), the experiment as the index."""
    shown = scores.copy()
    for column in ("original", "corrected"):
        shown[column] = [f"{100 * v:.2f}%" for v in shown[column]]
    shown["experiment"] = [e.replace("_", " ") for e in shown["experiment"]]
    return shown.rename(columns={"original": "test accuracy (original labels)",
                                 "corrected": "test accuracy (corrected labels)"}
                        ).set_index("experiment")


def audit(profile: str | None = None, seed: int = 0) -> results.Record:
    """Flag likely test-label errors with cleanlab and compare with the published list.

    The analysis record holds the overlaps, and ``flagged_test_labels.csv`` (one row per
    flagged image: original test index, given and suggested class ids, label quality)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    model_run = run_experiment(catalog.more_data(1.0, profile, seed))
    name = "test_set_audit"
    key = results.config_key({"analysis": name, "model": model_run.key})
    path = results.record_dir(model_run.profile, name, key)
    cached = results.load(path)
    if cached is not None:
        return cached
    arrays = model_run.arrays
    probs = arrays["test_probs"].astype(np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    labels, indices = arrays["test_labels"], data.test_indices(arrays["test_ids"])
    ranked = find_label_issues(labels=labels, pred_probs=probs,
                               return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    flagged = pd.DataFrame({
        "test_index": indices[ranked], "given_label": labels[ranked],
        "suggested_label": probs[ranked].argmax(axis=1), "label_quality": quality[ranked].round(5),
    })

    published = published_label_errors()
    evaluated = set(indices.tolist())
    candidates = set(published["test_index"]) & evaluated
    validated = set(published.loc[published["validated"], "test_index"]) & evaluated
    ours = set(flagged["test_index"].tolist())
    analysis = {
        "model": {"name": model_run.name, "key": model_run.key, "summary": model_run.get("summary")},
        "test_images": len(indices), "flagged": len(ours),
        "published_candidates_in_test_set": len(candidates),
        "published_validated_in_test_set": len(validated),
        "flagged_in_candidates": len(ours & candidates),
        "flagged_in_validated": len(ours & validated),
        "validated_recall": len(ours & validated) / len(validated) if validated else None,
        "flag_precision_vs_candidates": len(ours & candidates) / len(ours) if ours else None,
    }
    return results.write(path, {
        "name": name, "key": key, "profile": model_run.profile, "seed": seed, "kind": "analysis",
        "summary": f"cleanlab audit of {len(indices):,} test labels ({model_run.get('summary')})",
        "config": {"model_key": model_run.key,
                   "recipe": model_run.config.get("recipe", LEGACY)}, "analysis": analysis,
        "provenance": provenance(seed, model_run.profile),
    }, files={FLAGGED_CSV: flagged.to_csv(index=False)})


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
        "flagged by cleanlab": a["flagged"],
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

"""The dataset audit (helpers.duplicates): nearest neighbours, planted near-duplicates and
their grading, Datalab's duplicate groups, the drop list, the leak CSV and its atomic write;
then one smoke run end to end."""

import numpy as np
import pandas as pd
import pytest

from helpers import duplicates, results


def unit(rows):
    return duplicates.normalise(np.asarray(rows, dtype=np.float32))


def random_unit(n, d, seed=0):
    return unit(np.random.default_rng(seed).normal(size=(n, d)))


def test_nearest_matches_brute_force_and_sorts_closest_first():
    reference, queries = random_unit(300, 16, 0), random_unit(50, 16, 1)
    index, distance = duplicates.nearest(queries, reference, k=3, chunk=7)
    full = 1 - queries @ reference.T
    expected = np.argsort(full, axis=1)[:, :3]
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_allclose(distance, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    assert (np.diff(distance, axis=1) >= 0).all()


def test_nearest_excludes_self_even_for_exact_copies():
    features = random_unit(20, 8)
    features[5] = features[3]  # an exact duplicate pair
    index, distance = duplicates.nearest(features, features, k=1, exclude_self=True, chunk=6)
    assert (index[:, 0] != np.arange(20)).all()
    assert index[3, 0] == 5 and index[5, 0] == 3
    assert distance[3, 0] == pytest.approx(0, abs=1e-6)


def test_knn_graph_has_k_sorted_neighbours_per_row_and_no_self():
    features = random_unit(40, 8)
    graph = duplicates.knn_graph(features, k=4)
    assert graph.shape == (40, 40) and graph.nnz == 160
    rows = graph.data.reshape(40, 4)
    assert (np.diff(rows, axis=1) >= 0).all()
    assert (graph.indices.reshape(40, 4) != np.arange(40)[:, None]).all()


def test_normalise_and_combine_give_unit_rows():
    maps = np.random.default_rng(0).random((5, 4, 4, 3))
    flat = duplicates.normalise(maps)
    assert flat.shape == (5, 48)
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1, rtol=1e-5)
    both = duplicates.combine(flat, random_unit(5, 7))
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1, rtol=1e-5)


def smooth_images(n, seed=0):
    """Blocky random images: enough structure that a modified copy stays recognisable."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 4, 4, 3))
    return np.repeat(np.repeat(small, 8, axis=1), 8, axis=2).astype(np.uint8)


def test_plant_is_deterministic_changes_pixels_and_takes_turns_with_the_kinds():
    images = smooth_images(30)
    copies, sources, kinds = duplicates.plant(images, 12, seed=3)
    again = duplicates.plant(images, 12, seed=3)
    np.testing.assert_array_equal(copies, again[0])
    assert copies.shape == (12, 32, 32, 3) and copies.dtype == np.uint8
    assert len(set(sources)) == 12
    assert list(kinds[:4]) == list(duplicates.PLANTED_KINDS)
    for copy, source in zip(copies, sources):
        difference = np.abs(copy.astype(int) - images[source].astype(int)).mean()
        assert 0 < difference < 60  # modified, but still close to its source
    with pytest.raises(ValueError, match="unknown modification"):
        duplicates.modify(images[0], "rotate", np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot plant"):
        duplicates.plant(images, 31)


def test_grade_precision_recall_at_each_threshold():
    distances = np.array([0.01, 0.02, 0.05, 0.3, 0.4])
    found = np.array([True, False, True, False, True])  # planted copies found at their source
    curve = duplicates.grade(distances, found)
    assert list(curve["flagged"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(curve["precision"], [1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(curve["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    # thresholds sit between consecutive distances, so "< threshold" flags exactly those rows
    for row in curve.itertuples():
        assert (distances < row.threshold).sum() == row.flagged
    best = duplicates.best_threshold(curve)
    assert best["flagged"] == 5 and best["f1"] == pytest.approx(0.75)  # p 3/5, r 1
    # only rows marked surely false count against the upper bound
    upper = duplicates.grade(distances, found, surely_false=np.array([0, 1, 0, 0, 0], bool))
    np.testing.assert_allclose(upper["precision_upper"], [1, 1 / 2, 2 / 3, 2 / 3, 3 / 4])


def test_planted_near_duplicates_are_graded_with_high_precision_and_recall():
    """The finder on synthetic features: planted copies are a reference row plus a little
    noise, the unplanted queries unrelated rows; the threshold picked on them separates both."""
    rng = np.random.default_rng(0)
    reference = random_unit(500, 32, 0)
    sources = rng.choice(500, size=40, replace=False)
    planted = unit(reference[sources] + 0.05 * rng.normal(size=(40, 32)))
    queries = np.concatenate([random_unit(400, 32, 1), planted])
    index, distance = duplicates.nearest(queries, reference)
    found = np.zeros(len(queries), dtype=bool)
    found[400:] = index[400:, 0] == sources
    best = duplicates.best_threshold(duplicates.grade(distance[:, 0], found))
    assert best["precision"] >= 0.9 and best["recall"] >= 0.9
    assert duplicates.average_precision(distance[:, 0], found) > 0.9


def test_groups_from_sets_joins_chains_and_drop_list_keeps_one_per_group():
    sets = [[1], [0, 2], [1], [], [5], [4], []]
    groups = duplicates.groups_from_sets(sets)
    assert groups == [[0, 1, 2], [4, 5]]
    ids = np.array([f"train_{i:05d}" for i in range(7)])
    allowed = ids[[0, 1, 2, 5, 6]]  # image 4 is not in this training set
    assert duplicates.drop_list(groups, ids, allowed) == ["train_00001", "train_00002"]


def test_leaked_table_one_row_per_leaked_test_image_closest_first_and_csv_columns():
    frame = duplicates.leaked_table(np.array([7, 3, 9, 4]),
                                    np.array(["train_1", "train_2", "train_3", "train_4"]),
                                    np.array([0.2, 0.01, 0.05, 0.5], dtype=np.float32), 0.3)
    assert list(frame["test_index"]) == [3, 9, 7]
    assert frame["test_index"].is_unique
    text = duplicates.leaked_csv(frame)
    assert text.splitlines()[0] == "test_index,train_id,distance"
    assert text.splitlines()[1] == "3,train_2,0.01"
    back = pd.read_csv(__import__("io").StringIO(text), dtype={"train_id": str})
    assert list(back.columns) == list(duplicates.LEAKED_COLUMNS)


def test_leak_csv_is_written_atomically_with_its_record(results_dir, monkeypatch):
    path = results.record_dir("smoke", duplicates.ANALYSIS, "k1")
    frame = duplicates.leaked_table(np.array([1]), np.array(["train_00001"]), np.array([0.0]), 1)
    record = {"name": duplicates.ANALYSIS, "key": "k1", "profile": "smoke", "kind": "analysis",
              "provenance": {"seed": 0}}
    written = results.write(path, record, {"a": np.arange(3)},
                            files={duplicates.LEAKED_CSV: duplicates.leaked_csv(frame)})
    assert duplicates.read_leaked(written)["train_id"].tolist() == ["train_00001"]

    def crash(*args, **kwargs):  # dies halfway through a second write of the same record
        raise OSError("disk full")

    monkeypatch.setattr(results.np, "savez_compressed", crash)
    with pytest.raises(OSError):
        results.write(path, record, {"a": np.arange(3)},
                      files={duplicates.LEAKED_CSV: "test_index,train_id,distance\n"})
    assert duplicates.read_leaked(results.load(path))["train_id"].tolist() == ["train_00001"]
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_datalab_finds_duplicate_groups_at_an_absolute_threshold():
    rng = np.random.default_rng(0)
    features = random_unit(200, 16, 0)
    features[10] = unit((features[3] + 0.01 * rng.normal(size=16))[None])[0]
    features[11] = features[3]
    labels = np.arange(200) % 10
    lab, groups, relative = duplicates._duplicate_lab(labels, features, threshold=0.01)
    assert groups == [[3, 10, 11]]
    assert relative > 0
    assert lab.get_issues()["is_near_duplicate_issue"].sum() == 3


@pytest.mark.needs_data
def test_smoke_audit_end_to_end(results_dir, monkeypatch):
    from helpers import catalog
    from helpers.experiments import training_data

    record = duplicates.audit_dataset("smoke")
    a = record["analysis"]
    assert record["kind"] == "analysis" and a["chosen_layer"] in a["layers"]
    assert set(duplicates.LAYERS) <= set(a["layers"])
    assert {"near_duplicate", "label", "outlier", "non_iid", "class_imbalance"} <= set(
        a["issue_counts"])
    leaked = duplicates.read_leaked(record)
    assert list(leaked.columns) == list(duplicates.LEAKED_COLUMNS)
    assert len(leaked) == a["leaked_test_images"] and leaked["test_index"].is_unique
    # idempotent: served from the registry, nothing computed again
    monkeypatch.setattr(duplicates, "_audit", lambda *args: pytest.fail("recomputed"))
    assert duplicates.audit_dataset("smoke").key == record.key
    exp = duplicates.deduplicated("smoke", seed=1)
    assert exp.name == "deduplicated" and exp.seed == 1
    baseline_ids = set(training_data(catalog.baseline("smoke", 1)).ids)
    assert set(exp.drop_ids) <= baseline_ids
    assert len(training_data(exp).ids) == len(baseline_ids) - len(exp.drop_ids)
    scores = duplicates.leak_free_scores(list(results.iter_records("smoke")), record)
    assert len(scores) >= 1 and {"full test set", "leak-free subset"} <= set(scores.columns)


def test_coarsen_averages_blocks_and_refuses_uneven_grids():
    maps = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    small = duplicates.coarsen(maps, 2)
    assert small.shape == (2, 2, 2, 1)
    assert small[0, 0, 0, 0] == maps[0, :2, :2, 0].mean()
    with pytest.raises(ValueError, match="cannot be averaged"):
        duplicates.coarsen(maps, 3)


def test_recall_counts_every_planted_copy_not_only_those_matched_to_their_source():
    curve = duplicates.grade(np.array([0.1, 0.2]), np.array([True, False]), planted=4)
    np.testing.assert_allclose(curve["recall"], [1 / 4, 1 / 4])

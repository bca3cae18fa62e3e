"""Auditing the images themselves: near-duplicates, train/test leakage and outliers.

Features come from a trained full-pool model of the registry, read at several layers: the
pooled penultimate layer (class-level: what the image *is*) and intermediate blocks that keep
a spatial map (what the image *looks like*, pixel layout included). The duplicate finder is
graded first on planted near-duplicates (modified copies of training images added to a copy of
the test split), and its threshold is picked there. cleanlab's ``Datalab`` then does the
finding on the training set (near-duplicates with the chosen layer and threshold; outliers,
label issues, non-IID order and class imbalance with the pooled features and held-out
probabilities of a logistic regression), and on the test set (duplicates inside it). Every test
image's nearest training image gives the train/test leakage, written to
``leaked_test_images.csv`` in the analysis record.

The training set scanned is the profile's pool plus its validation images (all 50,000
CIFAR-10 training images in the full profile); the test set is the profile's test set.
"""

from __future__ import annotations

import io
import time
import warnings

import numpy as np
import pandas as pd

from helpers import CLASS_NAMES, catalog, data, results
from helpers.experiments import (Experiment, provenance, run_experiment, trained_model,
                                 training_data)

ANALYSIS = "dataset_audit"
VERSION = 4  # bump when the analysis changes what it records
LEAKED_CSV = "leaked_test_images.csv"
LEAKED_COLUMNS = ("test_index", "train_id", "distance")
# layer name in MobileNetV2 -> how the page names it; "pooled" is the backbone's output
# (global average of the last 1,280-channel map: the penultimate layer of the classifier)
LAYERS = {
    "block_2_add": "8×8×24 map (block 2)",
    "block_5_add": "4×4×32 map (block 5)",
    "block_12_add": "2×2×96 map (block 12)",
    "pooled": "pooled penultimate (1,280)",
    "Conv_1_bn": "penultimate before its ReLU6 (1,280)",
}
# outliers, label issues, non-IID order: class-level features without the all-zero vectors
# that the last ReLU6 gives some images (so Datalab does not see them as one point)
LABEL_LAYER = "Conv_1_bn"
# a spatial map averaged down to a coarser grid: tolerates small shifts and crops better
COARSENED = {"block_5_add@2x2": ("block_5_add", 2)}
COMBINATIONS = {"block_5_add@2x2+block_12_add": ("block_5_add@2x2", "block_12_add")}
COARSE_LABELS = {"block_5_add@2x2": "4×4×32 map averaged to 2×2 (block 5)"}
PLANTED_KINDS = ("shift", "crop", "colour", "jpeg")
PLANTED_FRACTION = 0.1  # planted copies, as a fraction of the test split
NEIGHBOURS = 10  # k of the k-nearest-neighbour graphs given to Datalab
CV_FOLDS = 5  # folds of the logistic regression's held-out probabilities
DATALAB_ISSUES = ("label", "outlier", "non_iid", "class_imbalance")
# Barz & Denzler (2020) found near-duplicates of training images for 3.3% of the CIFAR-10
# test images (the original files, all 50,000 training images, a hand-checked list)
PUBLISHED_LEAK_FRACTION = 0.033
ISSUE_NAMES = {"near_duplicate": "near-duplicates", "label": "label issues",
               "outlier": "outliers", "non_iid": "non-IID order",
               "class_imbalance": "class imbalance"}


# --- features -------------------------------------------------------------------------------

def feature_model(trained):
    """A Keras model from uint8 images to the outputs of ``LAYERS`` (inference mode)."""
    import keras

    names = [layer.name for layer in trained.layers]
    if "resize" in names:
        raise ValueError("features are read at 32×32: use a model trained at input size 32")
    backbone = next(layer for layer in trained.layers if isinstance(layer, keras.Model))
    inner = keras.Model(backbone.input,
                        [backbone.get_layer(n).output if n != "pooled" else backbone.output
                         for n in LAYERS])
    inputs = keras.Input(shape=(32, 32, 3))
    return keras.Model(inputs, inner(trained.get_layer("mobilenet_v2_preprocess")(inputs)))


def normalise(features: np.ndarray) -> np.ndarray:
    """Rows flattened to vectors of unit length (float32): cosine distance is 1 - dot."""
    flat = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-12)


def coarsen(maps: np.ndarray, grid: int) -> np.ndarray:
    """Spatial maps (n, h, w, c) averaged over blocks down to (n, grid, grid, c)."""
    n, h, w, c = maps.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h}×{w} map cannot be averaged down to {grid}×{grid}")
    return maps.reshape(n, grid, h // grid, grid, w // grid, c).mean(axis=(2, 4))


def combine(*blocks: np.ndarray) -> np.ndarray:
    """Unit-length features that weigh each (unit-length) block equally."""
    return normalise(np.concatenate(blocks, axis=1))


def extract(trained, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Unit-length features of ``images`` at every layer of ``LAYERS`` and ``COMBINATIONS``."""
    from helpers.train import make_dataset

    outputs = dict(zip(LAYERS, feature_model(trained).predict(
        make_dataset(images, None, batch_size), verbose=0)))
    features = {name: normalise(out) for name, out in outputs.items()}
    for name, (layer, grid) in COARSENED.items():
        features[name] = normalise(coarsen(outputs[layer], grid))
    for name, parts in COMBINATIONS.items():
        features[name] = combine(*(features[p] for p in parts))
    return features


def layer_label(name: str) -> str:
    if name in COMBINATIONS:
        return " + ".join(layer_label(p).split(" (")[0] for p in COMBINATIONS[name])
    return COARSE_LABELS.get(name) or LAYERS[name]


# --- nearest neighbours ----------------------------------------------------------------------

def nearest(queries: np.ndarray, reference: np.ndarray, k: int = 1, exclude_self: bool = False,
            chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``reference`` for every row of ``queries`` by cosine distance
    (both unit-length): ``(indices, distances)``, each ``(n, k)``, closest first.

    ``exclude_self``: queries *are* the reference (row i is never its own neighbour)."""
    n = len(queries)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        similarity = queries[start:stop] @ reference.T
        if exclude_self:
            similarity[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k] if k < similarity.shape[1] \
            else np.argsort(-similarity, axis=1)[:, :k]
        top_similarity = np.take_along_axis(similarity, top, axis=1)
        order = np.argsort(-top_similarity, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(top, order, axis=1)
        distances[start:stop] = 1 - np.take_along_axis(top_similarity, order, axis=1)
    return indices, np.maximum(distances, 0)


def knn_graph(features: np.ndarray, k: int = NEIGHBOURS):
    """The k-nearest-neighbour graph Datalab takes (``knn_graph=``): a CSR matrix of cosine
    distances, k per row, closest first, without self-distances."""
    from scipy.sparse import csr_matrix

    k = min(k, len(features) - 1)
    indices, distances = nearest(features, features, k, exclude_self=True)
    n = len(features)
    # Datalab reads k distances per row from .data: keep exact zeros as stored entries
    return csr_matrix((distances.ravel().astype(np.float64), indices.ravel(),
                       np.arange(0, n * k + 1, k)), shape=(n, n))


# --- planted near-duplicates -----------------------------------------------------------------

def _resize(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((32, 32), Image.BILINEAR))


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def modify(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A near-duplicate of one uint8 image (32, 32, 3): ``shift`` (1-3 pixels, edges
    repeated), ``crop`` (27-30 pixels square, scaled back up), ``colour`` (brightness, contrast
    and saturation within ±15%) or ``jpeg`` (quality 30-70)."""
    if kind == "shift":
        dx, dy = 0, 0
        while dx == 0 and dy == 0:
            dx, dy = rng.integers(-3, 4, size=2)
        padded = np.pad(image, ((3, 3), (3, 3), (0, 0)), mode="edge")
        return padded[3 + dy:35 + dy, 3 + dx:35 + dx].copy()
    if kind == "crop":
        side = int(rng.integers(27, 31))
        top, left = rng.integers(0, 33 - side, size=2)
        return _resize(image[top:top + side, left:left + side])
    if kind == "colour":
        x = image.astype(np.float32) * rng.uniform(0.85, 1.15)
        mean = x.mean()
        x = (x - mean) * rng.uniform(0.85, 1.15) + mean
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * rng.uniform(0.85, 1.15) + grey
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        return _jpeg(image, int(rng.integers(30, 71)))
    raise ValueError(f"unknown modification {kind!r}: use one of {', '.join(PLANTED_KINDS)}")


def plant(images: np.ndarray, count: int, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` near-duplicates of distinct random ``images``, the kinds taking turns:
    ``(copies, source index, kind)``. Deterministic in ``seed``."""
    if count > len(images):
        raise ValueError(f"cannot plant {count} copies of {len(images)} distinct images")
    rng = np.random.default_rng(seed)
    sources = np.sort(rng.choice(len(images), size=count, replace=False))
    kinds = np.array([PLANTED_KINDS[n % len(PLANTED_KINDS)] for n in range(count)])
    copies = np.stack([modify(images[s], k, rng) for s, k in zip(sources, kinds)]) if count \
        else np.empty((0, *images.shape[1:]), dtype=images.dtype)
    return copies, sources, kinds


def grade(distances: np.ndarray, found: np.ndarray, surely_false: np.ndarray | None = None,
          planted: int | None = None) -> pd.DataFrame:
    """Precision and recall of "distance below the threshold" at every useful threshold.

    ``distances``: each query's distance to its nearest reference image; ``found``: True for
    a planted copy whose nearest reference image is its source (a hit when flagged);
    ``planted``: how many copies were planted (default: ``found.sum()``), for recall. Every
    other flagged query counts as a false alarm, including real duplicates among the unplanted
    queries, so precision is a lower bound. Thresholds sit halfway between consecutive sorted
    distances, so ``distance < threshold`` flags exactly the rows above it.

    ``surely_false`` marks the rows that are false alarms beyond doubt when flagged (e.g. a
    test image whose nearest training image has another class, a planted copy matched to the
    wrong image); ``precision_upper`` counts only those, an upper bound."""
    order = np.argsort(distances, kind="stable")
    d, hit = np.asarray(distances)[order], np.asarray(found)[order]
    sure = ~hit if surely_false is None else np.asarray(surely_false)[order]
    planted = max(int(found.sum()) if planted is None else int(planted), 1)
    tp = np.cumsum(hit)
    flagged = np.arange(1, len(d) + 1)
    following = np.append(d[1:], d[-1] + 1e-3 if len(d) else 0)
    return pd.DataFrame({"threshold": (d + following) / 2, "flagged": flagged, "hits": tp,
                         "precision": tp / flagged, "recall": tp / planted,
                         "precision_upper": tp / np.maximum(tp + np.cumsum(sure), 1)})


def best_threshold(curve: pd.DataFrame) -> pd.Series:
    """The row of ``grade`` with the best F1 (the smallest threshold among ties)."""
    f1 = 2 * curve["precision"] * curve["recall"] / (curve["precision"] + curve["recall"])
    row = curve.loc[f1.fillna(0).idxmax()].copy()
    row["f1"] = float(f1.fillna(0).max())
    return row


def average_precision(distances: np.ndarray, found: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(found, -np.asarray(distances))) if found.any() else 0.0


# --- groups, drop lists, leakage ------------------------------------------------------------

def groups_from_sets(sets) -> list[list[int]]:
    """Connected groups (sorted, size ≥ 2) from Datalab's ``near_duplicate_sets`` (for each
    example, the indices of its near-duplicates): the connected components of that graph
    (``scipy.sparse.csgraph.connected_components``), ordered by their first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(sets)
    rows = [i for i, members in enumerate(sets) for _ in members]
    cols = [int(j) for members in sets for j in members]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    grouped: dict[int, list[int]] = {}
    for i, c in enumerate(component):  # members in index order; groups keyed by first member
        grouped.setdefault(int(c), []).append(i)
    return sorted((g for g in grouped.values() if len(g) > 1), key=lambda g: g[0])


def drop_list(groups: list[list[int]], ids: np.ndarray, allowed) -> list[str]:
    """Ids to drop so that, of each group, one image among ``allowed`` (a training set's ids)
    stays: the first by id is kept, the others dropped; members outside ``allowed`` are left
    alone."""
    allowed = set(map(str, allowed))
    drop = []
    for group in groups:
        members = sorted(str(ids[i]) for i in group if str(ids[i]) in allowed)
        drop += members[1:]
    return sorted(drop)


def leaked_table(test_index: np.ndarray, train_id: np.ndarray, distance: np.ndarray,
                 threshold: float) -> pd.DataFrame:
    """One row per test image whose nearest training image is closer than ``threshold``:
    ``test_index`` (original CIFAR-10 test index), ``train_id``, ``distance``, closest first."""
    leak = np.asarray(distance) < threshold
    frame = pd.DataFrame({"test_index": np.asarray(test_index)[leak].astype(np.int64),
                          "train_id": np.asarray(train_id)[leak].astype(str),
                          "distance": np.round(np.asarray(distance, dtype=np.float64)[leak], 6)})
    return frame.sort_values(["distance", "test_index"], kind="stable").reset_index(drop=True)


def leaked_csv(frame: pd.DataFrame) -> str:
    """The text of ``leaked_test_images.csv``: exactly ``LEAKED_COLUMNS``."""
    return frame[list(LEAKED_COLUMNS)].to_csv(index=False)


def read_leaked(record: results.Record) -> pd.DataFrame:
    return pd.read_csv(record.path / LEAKED_CSV, dtype={"train_id": str})


# --- the analysis ----------------------------------------------------------------------------

def scanned_training_set(split: data.Split) -> tuple[data.LabelledImages, np.ndarray]:
    """The profile's pool and validation images, by id, and a mask of the pool's."""
    pool_ids = split.train.ids[np.concatenate(split.pool_orders)]
    ids = np.sort(np.concatenate([pool_ids, split.validation.ids]))
    return split.train.by_ids(ids), np.isin(ids, pool_ids)


def held_out_probs(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Out-of-fold class probabilities of a logistic regression on ``features``
    (``sklearn``'s ``cross_val_predict``, stratified folds): a cheap, standard stand-in for
    cross-validating the network itself. The features are first reduced to their first 128
    principal components (inside each fold): measured on the quick profile, as accurate as the
    full 1,280 dimensions and about ten times faster."""
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    folds = min(CV_FOLDS, int(np.bincount(labels).min()))
    components = min(128, features.shape[1], len(features) * (folds - 1) // folds - 1)
    model = make_pipeline(PCA(components, random_state=seed), StandardScaler(),
                          LogisticRegression(C=0.1, max_iter=300))
    # one BLAS thread: measured many times faster than two on a busy 2-core CPU (lbfgs makes
    # many small products, and two threads spin-wait on each other)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 300 iterations are plenty here
        probs = cross_val_predict(model, features, labels, method="predict_proba",
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return probs / probs.sum(axis=1, keepdims=True)


def _datalab(labels: np.ndarray):
    from cleanlab import Datalab

    return Datalab(data={"label": labels}, label_name="label", verbosity=0)


def _duplicate_lab(labels: np.ndarray, features: np.ndarray, threshold: float):
    """Datalab's near-duplicate check on ``features`` at an absolute cosine distance:
    Datalab flags pairs closer than ``threshold × median nearest-neighbour distance``, so
    its relative threshold is set from ours. Returns (lab, groups, relative threshold)."""
    graph = knn_graph(features)
    k = graph.nnz // graph.shape[0]
    median = max(float(np.median(graph.data.reshape(-1, k)[:, 0])), 1e-12)
    lab = _datalab(labels)
    lab.find_issues(knn_graph=graph, issue_types={
        "near_duplicate": {"threshold": threshold / median, "metric": "cosine", "k": k}})
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    return lab, groups_from_sets(sets), threshold / median


def _pairs(groups: list[list[int]], indices: np.ndarray, distances: np.ndarray,
           ids: np.ndarray) -> pd.DataFrame:
    """Each group member with its nearest neighbour, when that is in the group too: one row
    per pair (ids in order), closest first."""
    rows = []
    for group in groups:
        members = set(group)
        for i in group:
            j = int(indices[i, 0])
            if j in members:
                a, b = sorted((str(ids[i]), str(ids[j])))
                rows.append((a, b, float(distances[i, 0])))
    frame = pd.DataFrame(rows, columns=["id_a", "id_b", "distance"])
    frame = frame.drop_duplicates(["id_a", "id_b"])
    return frame.sort_values(["distance", "id_a"], kind="stable").reset_index(drop=True)


def _analysis_path(profile: str | None, seed: int) -> tuple[Experiment, dict, str, Path]:
    """(model experiment, settings, key, record folder) of the audit of ``profile``: known
    without loading data or training, so the scheduler can ask whether it is recorded."""
    from helpers.profiles import get_profile

    model_exp = catalog.more_data(1.0, profile, seed)
    planted_count = max(10, round(PLANTED_FRACTION * get_profile(profile).test_size))
    settings = {"analysis": ANALYSIS, "version": VERSION, "model": model_exp.key(),
                "layers": list(LAYERS), "coarsened": COARSENED, "combinations": COMBINATIONS, "planted": planted_count,
                "kinds": PLANTED_KINDS, "k": NEIGHBOURS, "cv_folds": CV_FOLDS, "seed": seed}
    key = results.config_key(settings)
    return model_exp, settings, key, results.record_dir(model_exp.profile, ANALYSIS, key)


def audit_dataset(profile: str | None = None, seed: int = 0) -> results.Record:
    """The dataset audit of ``profile`` (see the module docstring), read from the registry when
    it is recorded; otherwise computed from the features of ``catalog.more_data(1.0)`` (trained
    through the registry when missing) and recorded, with ``leaked_test_images.csv``."""
    model_exp, settings, key, path = _analysis_path(profile, seed)
    cached = results.load(path)
    if cached is not None:
        return cached
    model_run = run_experiment(model_exp)
    split = data.make_split(model_exp.resolved_profile)
    with results.run_lock(path):
        cached = results.load(path)
        if cached is not None:
            return cached
        return _audit(model_exp, model_run, split, settings["planted"], settings, key, path, seed)


def planned(profile: str | None = None, seed: int = 0) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` of every record the audit needs: the full-pool model and the
    analysis itself (for the scheduler's list)."""
    model_exp, _, _, path = _analysis_path(profile, seed)
    return [(f"{model_exp.name}: {model_exp.summary()}, seed {model_exp.seed}",
             results.load(model_exp.record_dir()) is not None),
            ("dataset audit (near-duplicates, leakage, Datalab)", results.load(path) is not None)]


def planned_retrain(profile: str | None = None, seed: int = 0) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` of the deduplicated retrain with ``seed`` (its drop list comes
    from the audit, so it counts as missing while the audit is)."""
    label = f"deduplicated: 50% of pool without its near-duplicates, seed {seed}"
    if results.load(_analysis_path(profile, 0)[3]) is None:
        return [(label, False)]
    exp = deduplicated(profile, seed)
    return [(label, results.load(exp.record_dir()) is not None)]


def _audit(model_exp, model_run, split, planted_count, settings, key, path, seed):
    seconds = {}
    train_set, in_pool = scanned_training_set(split)
    test = split.test
    copies, sources, kinds = plant(train_set.images, planted_count, seed)

    start = time.perf_counter()
    trained = trained_model(model_exp)
    seconds["load_model"] = time.perf_counter() - start
    start = time.perf_counter()
    everything = extract(trained, np.concatenate([train_set.images, test.images, copies]))
    seconds["features"] = time.perf_counter() - start
    n_train, n_test = len(train_set), len(test)
    feats = {name: (f[:n_train], f[n_train:n_train + n_test], f[n_train + n_test:])
             for name, f in everything.items()}
    del everything

    # grade every layer on the planted copies; the unplanted queries are the test images
    start = time.perf_counter()
    layers, arrays = {}, {}
    for name, (train_f, test_f, planted_f) in feats.items():
        index, distance = nearest(np.concatenate([test_f, planted_f]), train_f)
        index, distance = index[:, 0], distance[:, 0]
        found = np.zeros(len(index), dtype=bool)
        found[n_test:] = index[n_test:] == sources
        surely_false = ~found
        surely_false[:n_test] = train_set.labels[index[:n_test]] != test.labels
        best = best_threshold(grade(distance, found, surely_false, planted=len(copies)))
        hit = found[n_test:] & (distance[n_test:] < best["threshold"])
        same_class = float((train_set.labels[index[:n_test]] == test.labels).mean())
        layers[name] = {"label": layer_label(name), "dimensions": int(train_f.shape[1]),
                        "threshold": float(best["threshold"]),
                        "precision": float(best["precision"]), "recall": float(best["recall"]),
                        "precision_upper": float(best["precision_upper"]),
                        "recall_by_kind": {k: float(hit[kinds == k].mean())
                                           for k in PLANTED_KINDS if (kinds == k).any()},
                        "test_flagged": int((distance[:n_test] < best["threshold"]).sum()),
                        "f1": float(best["f1"]), "average_precision": average_precision(
                            distance, found),
                        "planted_nearest_is_source": float(found[n_test:].mean()),
                        "test_nearest_same_class": same_class}
        arrays[f"test_nn_index_{name}"] = index[:n_test]
        arrays[f"test_nn_distance_{name}"] = distance[:n_test].astype(np.float32)
        arrays[f"planted_nn_distance_{name}"] = distance[n_test:].astype(np.float32)
        arrays[f"planted_found_{name}"] = found[n_test:]
    seconds["planted_grading"] = time.perf_counter() - start
    chosen = max(layers, key=lambda n: (layers[n]["f1"], layers[n]["average_precision"]))
    threshold = layers[chosen]["threshold"]

    # Datalab on the training set: near-duplicates with the chosen layer, the rest pooled
    start = time.perf_counter()
    dup_lab, train_groups, relative = _duplicate_lab(train_set.labels, feats[chosen][0], threshold)
    seconds["datalab_near_duplicates"] = time.perf_counter() - start
    start = time.perf_counter()
    probs = held_out_probs(feats[LABEL_LAYER][0], train_set.labels, seed)
    seconds["held_out_probabilities"] = time.perf_counter() - start
    start = time.perf_counter()
    lab = _datalab(train_set.labels)
    lab.find_issues(features=feats[LABEL_LAYER][0], pred_probs=probs,
                    knn_graph=knn_graph(feats[LABEL_LAYER][0]),
                    issue_types={name: {} for name in DATALAB_ISSUES})
    seconds["datalab_other_issues"] = time.perf_counter() - start
    issues = pd.concat([dup_lab.get_issues(), lab.get_issues()], axis=1)
    summary = pd.concat([dup_lab.get_issue_summary(), lab.get_issue_summary()])
    counts = {row.issue_type: int(row.num_issues) for row in summary.itertuples()}

    # duplicates inside the test set, same layer and threshold
    start = time.perf_counter()
    _, test_groups, _ = _duplicate_lab(test.labels, feats[chosen][1], threshold)
    test_index, test_distance = nearest(feats[chosen][1], feats[chosen][1], 1, exclude_self=True)
    seconds["datalab_test_set"] = time.perf_counter() - start
    train_index, train_distance = nearest(feats[chosen][0], feats[chosen][0], 1, exclude_self=True)

    leak_index = arrays[f"test_nn_index_{chosen}"]
    leak_distance = arrays[f"test_nn_distance_{chosen}"]
    leaked = leaked_table(data.test_indices(test.ids), train_set.ids[leak_index], leak_distance,
                          threshold)
    baseline_ids = set(training_data(catalog.baseline(model_run.profile, seed)).ids)
    drop = drop_list(train_groups, train_set.ids, baseline_ids)
    train_pairs = _pairs(train_groups, train_index, train_distance, train_set.ids)
    test_pairs = _pairs(test_groups, test_index, test_distance, test.ids)
    group_of = np.full(n_train, -1)
    for g, members in enumerate(train_groups):
        group_of[members] = g

    arrays.update({
        "train_ids": train_set.ids, "train_labels": train_set.labels, "train_in_pool": in_pool,
        "train_nn_id": train_set.ids[train_index[:, 0]],
        "train_nn_distance": train_distance[:, 0], "train_duplicate_group": group_of,
        "held_out_probs": probs.astype(np.float16),
        "test_ids": test.ids, "test_labels": test.labels,
        "planted_source_id": train_set.ids[sources], "planted_kind": kinds,
        "baseline_drop_ids": np.array(drop, dtype=str),
        "train_pair_a": train_pairs["id_a"].to_numpy(str),
        "train_pair_b": train_pairs["id_b"].to_numpy(str),
        "train_pair_distance": train_pairs["distance"].to_numpy(np.float32),
        "test_pair_a": test_pairs["id_a"].to_numpy(str),
        "test_pair_b": test_pairs["id_b"].to_numpy(str),
        "test_pair_distance": test_pairs["distance"].to_numpy(np.float32),
    })
    for column in issues.columns:
        arrays[column] = issues[column].to_numpy()
    arrays = {k: (v.astype(str) if v.dtype == object else v) for k, v in arrays.items()}
    leaked_in_pool = int(np.isin(leaked["train_id"], train_set.ids[in_pool]).sum())
    analysis = {
        "model": {"name": model_run.name, "key": model_run.key,
                  "summary": model_run.get("summary"), "seed": model_run.get("seed")},
        "training_images": n_train, "pool_images": int(in_pool.sum()),
        "validation_images": int(n_train - in_pool.sum()), "test_images": n_test,
        "planted": {"count": planted_count, "kinds": list(PLANTED_KINDS),
                    "fraction_of_test": PLANTED_FRACTION},
        "layers": layers, "chosen_layer": chosen, "label_layer": LABEL_LAYER,
        "pooled_zero_vectors": {  # the last ReLU6 silenced every channel for these images
            "train": int((np.linalg.norm(feats["pooled"][0], axis=1) < 0.5).sum()),
            "test": int((np.linalg.norm(feats["pooled"][1], axis=1) < 0.5).sum())},
        "threshold": threshold, "datalab_relative_threshold": relative,
        "held_out_probs": {"model": "sklearn PCA(128) + StandardScaler + LogisticRegression(C=0.1), "
                                    f"{CV_FOLDS}-fold cross_val_predict on the {LABEL_LAYER} "
                                    "features",
                           "accuracy": float((probs.argmax(axis=1) == train_set.labels).mean())},
        "issue_counts": counts,
        "issue_scores": {row.issue_type: float(row.score) for row in summary.itertuples()},
        "train_duplicate_groups": len(train_groups),
        "train_duplicate_images": int(sum(map(len, train_groups))),
        "baseline_training_images": len(baseline_ids), "baseline_drop": len(drop),
        "leaked_test_images": len(leaked), "leaked_in_pool": leaked_in_pool,
        "leaked_fraction": len(leaked) / n_test,
        "test_duplicate_groups": len(test_groups),
        "test_duplicate_images": int(sum(map(len, test_groups))),
        "seconds": seconds, "feature_images": int(n_train + n_test + planted_count),
    }
    return results.write(path, {
        "name": ANALYSIS, "key": key, "profile": model_run.profile, "seed": seed,
        "kind": "analysis",
        "summary": f"dataset audit of {n_train:,} training and {n_test:,} test images "
                   f"({model_run.get('summary')})",
        "config": {**settings, "recipe": model_run.get("recipe")}, "analysis": analysis,
        "provenance": provenance(seed, model_run.profile),
    }, arrays, files={LEAKED_CSV: leaked_csv(leaked)})


def deduplicated(profile: str | None = None, seed: int = 0) -> Experiment:
    """The 20K baseline with its training near-duplicates removed, one image of each group
    kept (the audit's drop list; the audit runs first when it is not recorded)."""
    record = audit_dataset(profile)
    return Experiment("deduplicated", profile=profile, seed=seed,
                      drop_ids=tuple(record.arrays["baseline_drop_ids"].tolist()))


# --- what the page shows ----------------------------------------------------------------------

def layer_table(record: results.Record) -> pd.DataFrame:
    """Per layer (its label names its dimensions): the planted-copy grading at its best
    threshold (precision as a range: every flagged test image counted as a false alarm, or only
    those whose nearest training image has another class), recall per modification, and how
    often a test image's nearest training image has the same class."""
    a = record["analysis"]
    rows = {}
    for name, v in a["layers"].items():
        kinds = v.get("recall_by_kind", {})
        rows[v["label"] + (" ←" if name == a["chosen_layer"] else "")] = {
            "best threshold": f"{v['threshold']:.3g}",  # dimensions: in the label
            "precision": f"{v['precision']:.3f} to {v['precision_upper']:.3f}",
            "recall": f"{v['recall']:.3f}", "F1": f"{v['f1']:.3f}",
            "recall by kind: " + " / ".join(kinds): " / ".join(f"{x:.2f}" for x in kinds.values()),
            "test images flagged": f"{v['test_flagged']:,}",
            "test: same class as nearest": f"{100 * v['test_nearest_same_class']:.0f}%"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("features")


def counts_table(record: results.Record) -> pd.DataFrame:
    """Datalab's counts per issue type on the training set, then the leakage and test-set
    duplicates."""
    a = record["analysis"]
    rows = {f"training set: {ISSUE_NAMES.get(k, k)}": v for k, v in a["issue_counts"].items()}
    rows["training set: near-duplicate groups"] = a["train_duplicate_groups"]
    rows["test images with a near-duplicate in the training set"] = a["leaked_test_images"]
    rows["test images in a near-duplicate group inside the test set"] = a["test_duplicate_images"]
    rows["baseline training images to drop (one kept per group)"] = a["baseline_drop"]
    return pd.DataFrame({"images": [f"{v:,}" for v in rows.values()]}, index=list(rows))


def distance_figure(record: results.Record):
    """For each layer, the distance from each test image and each planted copy to its nearest
    training image, with the layer's best threshold."""
    import matplotlib.pyplot as plt

    from helpers.plots import BOOK_WIDTH

    a, arrays = record["analysis"], record.arrays
    names = list(a["layers"])
    columns = 4
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(BOOK_WIDTH + 2, 2.4 * rows),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        test_d = arrays[f"test_nn_distance_{name}"]
        planted_d = arrays[f"planted_nn_distance_{name}"]
        top = float(np.quantile(np.concatenate([test_d, planted_d]), 0.99))
        bins = np.linspace(0, max(top, 1e-6), 40)
        ax.hist(np.clip(test_d, 0, top), bins=bins, alpha=0.6, label="test images", density=True)
        ax.hist(np.clip(planted_d, 0, top), bins=bins, alpha=0.6, label="planted copies",
                density=True)
        ax.axvline(a["layers"][name]["threshold"], color="black", lw=1, ls="--")
        title = a["layers"][name]["label"].replace(" (", "\n(", 1)
        ax.set_title(title + (", chosen" if name == a["chosen_layer"] else ""), fontsize=8)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    axes.flat[0].legend(fontsize=8)
    fig.supxlabel("cosine distance to the nearest training image (dashed: the layer's best "
                  "threshold)", fontsize=9)
    return fig


def _images(ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=str)
    if not len(ids):
        return np.empty((0, 32, 32, 3), dtype=np.uint8)
    train, test = data.load_split("train"), data.load_split("test")
    out = np.empty((len(ids), 32, 32, 3), dtype=np.uint8)
    is_test = np.char.startswith(ids, "test_")
    if is_test.any():
        out[is_test] = test.by_ids(np.sort(ids[is_test])).images[
            np.argsort(np.argsort(ids[is_test]))]
    if (~is_test).any():
        out[~is_test] = train.by_ids(np.sort(ids[~is_test])).images[
            np.argsort(np.argsort(ids[~is_test]))]
    return out


def _labels(record: results.Record) -> dict[str, str]:
    arrays = record.arrays
    return {**dict(zip(arrays["train_ids"], (CLASS_NAMES[i] for i in arrays["train_labels"]))),
            **dict(zip(arrays["test_ids"], (CLASS_NAMES[i] for i in arrays["test_labels"])))}


def _short(identifier: str) -> str:
    return f"test #{int(identifier.rsplit('_', 1)[1])}" if identifier.startswith("test_") \
        else identifier.replace("train_", "train #")


def pair_gallery(record: results.Record, pairs: pd.DataFrame, title: str, pairs_per_row: int = 4,
                 threshold: float | None = None):
    """Pairs side by side (``id_a``, ``id_b``, ``distance``), each titled with id and label;
    with ``threshold``, each pair also says whether it is flagged."""
    from helpers import plots

    labels = _labels(record)
    ids = [i for a, b in zip(pairs["id_a"], pairs["id_b"]) for i in (a, b)]
    captions = []
    for a, b, d in zip(pairs["id_a"], pairs["id_b"], pairs["distance"]):
        flag = "" if threshold is None else ("\nflagged" if d < threshold else "\nnot flagged")
        # five decimals: pairs on either side of the threshold differ only there
        captions += [f"{_short(a)}\n{labels.get(a, '')}",
                     f"{_short(b)}\n{labels.get(b, '')}\nd={d:.5f}{flag}"]
    if not ids:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(plots.BOOK_WIDTH, 0.8))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{title}: none in this profile", ha="center", va="center")
        return fig
    return plots.image_gallery(_images(ids), captions, columns=2 * pairs_per_row, title=title)


def train_pairs(record: results.Record) -> pd.DataFrame:
    a = record.arrays
    return pd.DataFrame({"id_a": a["train_pair_a"], "id_b": a["train_pair_b"],
                         "distance": a["train_pair_distance"]})


def test_pairs(record: results.Record) -> pd.DataFrame:
    a = record.arrays
    return pd.DataFrame({"id_a": a["test_pair_a"], "id_b": a["test_pair_b"],
                         "distance": a["test_pair_distance"]})


def train_nn_pairs(record: results.Record) -> pd.DataFrame:
    """Every training image with its nearest other training image (chosen layer), one row per
    pair, closest first: the pairs around the threshold come from here."""
    arrays = record.arrays
    a, b = arrays["train_ids"].astype(str), arrays["train_nn_id"].astype(str)
    first = a < b
    frame = pd.DataFrame({"id_a": np.where(first, a, b), "id_b": np.where(first, b, a),
                          "distance": arrays["train_nn_distance"]})
    frame = frame.drop_duplicates(["id_a", "id_b"])
    return frame.sort_values(["distance", "id_a"], kind="stable").reset_index(drop=True)


def leak_pairs(record: results.Record) -> pd.DataFrame:
    """Every test image with its nearest training image (chosen layer), closest first, and
    whether it counts as leaked."""
    a, arrays = record["analysis"], record.arrays
    name = a["chosen_layer"]
    frame = pd.DataFrame({"id_a": arrays["test_ids"],
                          "id_b": arrays["train_ids"][arrays[f"test_nn_index_{name}"]],
                          "distance": arrays[f"test_nn_distance_{name}"]})
    frame["leaked"] = frame["distance"] < a["threshold"]
    return frame.sort_values("distance", kind="stable").reset_index(drop=True)


def around_threshold(pairs: pd.DataFrame, threshold: float, each_side: int = 4) -> pd.DataFrame:
    """The ``each_side`` pairs just below ``threshold`` and just above it."""
    below = pairs[pairs["distance"] < threshold].tail(each_side)
    above = pairs[pairs["distance"] >= threshold].head(each_side)
    return pd.concat([below, above])


def planted_gallery(record: results.Record, per_kind: int = 2):
    """Planted copies next to their sources, ``per_kind`` of each modification (regenerated
    from the seed: the same copies the grading used)."""
    from helpers import plots

    a, arrays = record["analysis"], record.arrays
    from helpers.profiles import get_profile

    split = data.make_split(get_profile(record.profile))
    train_set, _ = scanned_training_set(split)
    copies, sources, kinds = plant(train_set.images, a["planted"]["count"], record["seed"])
    found = arrays[f"planted_found_{a['chosen_layer']}"]
    distance = arrays[f"planted_nn_distance_{a['chosen_layer']}"]
    chosen = [n for kind in PLANTED_KINDS for n in np.flatnonzero(kinds == kind)[:per_kind]]
    images, captions = [], []
    for n in chosen:
        images += [train_set.images[sources[n]], copies[n]]
        captions += [f"{_short(train_set.ids[sources[n]])}",
                     f"{kinds[n]}, d={distance[n]:.3f}\n{'found' if found[n] and distance[n] < a['threshold'] else 'missed'}"]
    return plots.image_gallery(np.stack(images), captions, columns=8,
                               title="Planted copies (right) next to their sources")


def atypical_gallery(record: results.Record, count: int = 16):
    """The training images Datalab finds most atypical (lowest outlier score), with labels."""
    from helpers import plots

    arrays = record.arrays
    order = np.argsort(arrays["outlier_score"], kind="stable")[:count]
    ids = arrays["train_ids"][order]
    captions = [f"{_short(i)}\n{CLASS_NAMES[arrays['train_labels'][n]]}"
                for i, n in zip(ids, order)]
    return plots.image_gallery(_images(ids), captions, columns=8,
                               title="The most atypical training images (Datalab outlier score)")


def label_issue_gallery(record: results.Record, count: int = 8):
    """Training images with Datalab's lowest label scores: given label → most likely class."""
    from helpers import plots

    arrays = record.arrays
    order = np.argsort(arrays["label_score"], kind="stable")[:count]
    probs = arrays["held_out_probs"][order].astype(np.float32)
    captions = [f"{_short(arrays['train_ids'][n])}\n{CLASS_NAMES[arrays['train_labels'][n]]} → "
                f"{CLASS_NAMES[int(p.argmax())]}" for n, p in zip(order, probs)]
    return plots.image_gallery(_images(arrays["train_ids"][order]), captions, columns=8,
                               title="Lowest label quality: given → predicted")


def leak_free_scores(records: list[results.Record], record: results.Record) -> pd.DataFrame:
    """Test accuracy of every recorded model on the full test set and on the leak-free subset
    (without the test images that have a near-duplicate among the training images), from the
    stored test probabilities; with each model's rank under both."""
    leaked = set(read_leaked(record)["test_index"].tolist())
    rows = []
    for r in records:
        if not results.is_full_model(r):
            continue
        arrays = r.arrays
        correct = arrays["test_probs"].argmax(axis=1) == arrays["test_labels"]
        keep = ~np.isin(data.test_indices(arrays["test_ids"]), list(leaked))
        rows.append({"experiment": r.name, "setting": r.get("summary"), "seed": r.get("seed"),
                     "full test set": float(correct.mean()),
                     "leak-free subset": float(correct[keep].mean()) if keep.any() else np.nan,
                     "leaked": float(correct[~keep].mean()) if (~keep).any() else np.nan})
    frame = pd.DataFrame(rows, columns=["experiment", "setting", "seed", "full test set",
                                        "leak-free subset", "leaked"])
    frame["difference"] = frame["leak-free subset"] - frame["full test set"]
    frame["rank (full)"] = frame["full test set"].rank(ascending=False, method="min")
    frame["rank (leak-free)"] = frame["leak-free subset"].rank(ascending=False, method="min")
    return frame.sort_values(["rank (full)", "experiment"]).reset_index(drop=True)


def scores_view(scores: pd.DataFrame) -> pd.DataFrame:
    """``leak_free_scores`` for reading: percentages with two decimals, points for the change."""
    shown = scores.copy()
    for column in ("full test set", "leak-free subset", "leaked"):
        shown[column] = [f"{100 * v:.2f}%" if v == v else "-" for v in shown[column]]
    shown["difference"] = [f"{100 * v:+.2f}" if v == v else "-" for v in shown["difference"]]
    for column in ("rank (full)", "rank (leak-free)"):
        shown[column] = shown[column].fillna(0).astype(int)
    shown["experiment"] = [e.replace("_", " ") for e in shown["experiment"]]
    return shown.rename(columns={"leaked": "on the leaked images",
                                 "difference": "change (points)"}).set_index("experiment")


def summary(record: results.Record, scores: pd.DataFrame) -> dict[str, str]:
    """What the page's prose pastes with glue."""
    a = record["analysis"]
    chosen = a["layers"][a["chosen_layer"]]
    changed = int((scores["rank (full)"] != scores["rank (leak-free)"]).sum())
    counts = a["issue_counts"]
    out = {
        "dup_training_images": f"{a['training_images']:,}", "dup_test_images": f"{a['test_images']:,}",
        "dup_pool_images": f"{a['pool_images']:,}", "dup_model": a["model"]["summary"],
        "dup_planted": f"{a['planted']['count']:,}",
        "dup_layer": chosen["label"], "dup_threshold": f"{a['threshold']:.5f}",
        # three decimals: a bound of 0.996 must not print as a perfect 1.00
        "dup_precision": f"{chosen['precision']:.3f}", "dup_recall": f"{chosen['recall']:.3f}",
        "dup_precision_upper": f"{chosen['precision_upper']:.3f}",
        "dup_test_flagged": f"{chosen['test_flagged']:,}",
        "dup_worst_kind": min(chosen["recall_by_kind"], key=chosen["recall_by_kind"].get),
        "dup_worst_kind_recall": f"{min(chosen['recall_by_kind'].values()):.2f}",
        "dup_pooled_recall": f"{a['layers']['pooled']['recall']:.2f}",
        "dup_pooled_same_class": f"{100 * a['layers']['pooled']['test_nearest_same_class']:.0f}%",
        "dup_chosen_same_class": f"{100 * chosen['test_nearest_same_class']:.0f}%",
        "dup_lr_accuracy": f"{100 * a['held_out_probs']['accuracy']:.1f}%",
        "dup_label_layer": a["layers"][a["label_layer"]]["label"],
        "dup_zero_pooled": f"{a['pooled_zero_vectors']['train']:,}",
        "dup_zero_pooled_pct": f"{100 * a['pooled_zero_vectors']['train'] / a['training_images']:.0f}%",
        "dup_leaked": f"{a['leaked_test_images']:,}",
        "dup_leaked_pct": f"{100 * a['leaked_fraction']:.1f}%",
        "dup_leaked_in_pool": f"{a['leaked_in_pool']:,}",
        "dup_test_dups": f"{a['test_duplicate_images']:,}",
        "dup_train_groups": f"{a['train_duplicate_groups']:,}",
        "dup_drop": f"{a['baseline_drop']:,}",
        "dup_baseline_size": f"{a['baseline_training_images']:,}",
        "dup_models": f"{len(scores):,}", "dup_changed": f"{changed:,}",
        "dup_mean_change": (f"{100 * scores['difference'].mean():+.2f} points"
                            if len(scores) else "not measured"),
        "dup_features_s": f"{a['seconds']['features']:.0f}",
        "dup_feature_images": f"{a['feature_images']:,}",
        "dup_datalab_s": f"{sum(v for k, v in a['seconds'].items() if k.startswith('datalab')):.0f}",
    }
    out["dup_published_pct"] = f"{100 * PUBLISHED_LEAK_FRACTION:.1f}%"
    # what the lower end of precision could reach with a perfect finder, if the test split holds
    # the published share of real duplicates: every planted copy found, every real one flagged
    real = PUBLISHED_LEAK_FRACTION * a["test_images"]
    out["dup_real_duplicates"] = f"{real:,.0f}"
    out["dup_precision_ceiling"] = f"{a['planted']['count'] / (a['planted']['count'] + real):.2f}"
    for issue, name in ISSUE_NAMES.items():
        out[f"dup_count_{issue}"] = f"{counts.get(issue, 0):,}"
    return out


def retrain_summary(runs: list[results.Record], bases: list[results.Record]) -> dict[str, str]:
    """``dup_retrain``: the deduplicated retrain's change in test accuracy against the
    baseline's seeds with its interval and verdict, or that it is not recorded yet."""
    if not runs or not bases:
        return {"dup_retrain": "not recorded yet in this profile, so there is no verdict yet",
                "dup_retrain_seeds": "0"}
    from helpers.report import comparison, interval, verdict_phrase

    c = comparison(runs, bases)
    return {"dup_retrain": f"{interval(c)} in test accuracy ({verdict_phrase(c)})",
            "dup_retrain_seeds": str(len(runs))}


def retrain_status(profile: str | None = None, seeds=catalog.BASELINE_SEEDS
                   ) -> tuple[list[results.Record], list[results.Record]]:
    """(recorded deduplicated runs, the baseline runs of the same seeds that are recorded);
    reads the registry only, trains nothing."""
    runs, bases = [], []
    for seed in seeds:
        run = results.load(deduplicated(profile, seed).record_dir())
        base = results.load(catalog.baseline(profile, seed).record_dir())
        if run is not None:
            runs.append(run)
        if base is not None:
            bases.append(base)
    return runs, bases

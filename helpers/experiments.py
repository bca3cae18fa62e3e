"""Experiments: a frozen config in, a recorded result out.

``run_experiment(Experiment(...))`` returns the registry's record when it is complete and
otherwise assembles the data, trains the frozen model with the recipe, evaluates it and
records everything a page needs to redraw its figures.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import platform
import shutil
from pathlib import Path

import numpy as np

import helpers
from helpers import NUM_CLASSES, class_id, data, noise, results, sources
from helpers.profiles import Profile, get_profile


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One training run of the frozen model; only the data recipe changes between chapters."""

    name: str
    profile: str | None = None  # None: $DCAI_PROFILE or "full"
    seed: int = 0
    fraction: float = 0.5  # of the pool; 0.5 is the article's 20K baseline
    extra: tuple[tuple[str, int], ...] = ()  # e.g. (("cat", 1000), ("dog", 1000))
    noise_rate: float = 0.0  # symmetric noise injected into the training labels
    augment: bool = False
    input_size: int = 32
    drop_ids: tuple[str, ...] = ()  # training examples removed (label-error pruning)
    relabel: tuple[tuple[str, int], ...] = ()  # training examples given a new label
    cv_folds: int = 0  # > 0: train on all folds but ``cv_fold`` and predict the held-out one
    cv_fold: int = 0

    def __post_init__(self):
        object.__setattr__(self, "profile", get_profile(self.profile).name)
        object.__setattr__(self, "extra", tuple((str(c), int(n)) for c, n in self.extra))
        object.__setattr__(self, "drop_ids", tuple(sorted(self.drop_ids)))
        object.__setattr__(self, "relabel", tuple(sorted((str(i), int(l)) for i, l in self.relabel)))
        if not self.name or "/" in self.name:
            raise ValueError(f"experiment name must be a non-empty word without '/', got {self.name!r}")
        if not 0 <= self.noise_rate < 1:
            raise ValueError(
                f"noise_rate must be in [0, 1) as a fraction (0.05 for 5%), got {self.noise_rate}")
        if not 0 < self.fraction <= 1:
            raise ValueError(
                f"fraction must be in (0, 1] (0.5 = half the pool), got {self.fraction}")
        for name, count in self.extra:
            class_id(name)
            if count < 0:
                raise ValueError(f"extra count for {name!r} must be >= 0, got {count}")
        for _, label in self.relabel:
            if not 0 <= label < NUM_CLASSES:
                raise ValueError(f"relabel targets must be class ids 0..{NUM_CLASSES - 1}, got {label}")
        if self.cv_folds and not (2 <= self.cv_folds and 0 <= self.cv_fold < self.cv_folds):
            raise ValueError(
                f"cv_fold must be in 0..cv_folds-1 and cv_folds >= 2, got fold {self.cv_fold} "
                f"of {self.cv_folds}")

    @property
    def resolved_profile(self) -> Profile:
        return get_profile(self.profile)

    def config(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Hash of everything that changes the result: the config minus its name, the profile's
        numbers, and which data and weights are used."""
        payload = {k: v for k, v in self.config().items() if k != "name"}
        payload["profile_settings"] = dataclasses.asdict(self.resolved_profile)
        payload["data"] = "jpeg-copy" if sources.data_source().startswith(sources.JPEG_COPY_NOTE) else "tfds"
        payload["weights"] = Path(sources.weights_setting()).name
        return results.config_key(payload)

    def summary(self) -> str:
        parts = [f"{self.fraction:.0%} of pool"]
        parts += [f"+{n} {c}" for c, n in self.extra]
        if self.noise_rate:
            parts.append(f"noise {self.noise_rate:.0%}")
        if self.augment:
            parts.append("augmented")
        if self.input_size != 32:
            parts.append(f"{self.input_size}px")
        if self.drop_ids:
            parts.append(f"dropped {len(self.drop_ids)}")
        if self.relabel:
            parts.append(f"relabelled {len(self.relabel)}")
        if self.cv_folds:
            parts.append(f"fold {self.cv_fold + 1}/{self.cv_folds}")
        return ", ".join(parts)

    def record_dir(self) -> Path:
        return results.record_dir(self.profile, self.name, self.key())


@dataclasses.dataclass
class TrainingData:
    """The assembled training set of an experiment, before any cross-validation split."""

    images: np.ndarray
    given_labels: np.ndarray  # what the model is trained on (noisy, maybe repaired)
    true_labels: np.ndarray  # the dataset's labels before injected noise
    noise_mask: np.ndarray  # True where noise was injected
    ids: np.ndarray


def training_data(exp: Experiment) -> TrainingData:
    """Subset + extras, then injected noise, then the repairs (drop, relabel)."""
    split = data.make_split(exp.resolved_profile)
    chosen = data.training_set(split, exp.fraction, exp.extra)
    given, mask = noise.inject_symmetric_noise(chosen.labels, exp.noise_rate, seed=exp.seed)
    position = {i: n for n, i in enumerate(chosen.ids)}
    unknown = [i for i in list(exp.drop_ids) + [i for i, _ in exp.relabel] if i not in position]
    if unknown:
        raise ValueError(f"{len(unknown)} ids to drop/relabel are not in the training set "
                         f"(e.g. {unknown[:3]}): build them from this experiment's training data")
    for i, label in exp.relabel:
        given[position[i]] = label
    keep = np.ones(len(chosen), dtype=bool)
    keep[[position[i] for i in exp.drop_ids]] = False
    if not keep.any():
        raise ValueError("every training example was dropped: nothing is left to train on")
    return TrainingData(chosen.images[keep], given[keep], chosen.labels[keep], mask[keep],
                        chosen.ids[keep])


def cv_split(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train index, held-out index) of one stratified fold; the same for every fold's run."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))[fold]


def _versions() -> dict:
    names = ["tensorflow", "keras", "tensorflow-datasets", "numpy", "scikit-learn", "cleanlab"]
    out = {"python": platform.python_version(), "helpers": helpers.__version__}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(seed: int | None, profile: str, hardware: str | None = None) -> dict:
    """Where a result came from; shown on every page that shows the result."""
    if hardware is None:
        from helpers.train import hardware as probe

        hardware = probe()
    return {
        "profile": profile,
        "data_source": sources.data_source(),
        "weights_source": sources.weights_source(),
        "seed": seed,
        "packages": _versions(),
        "hardware": hardware,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _f16(probs: np.ndarray) -> np.ndarray:
    return probs.astype(np.float16)  # compact: 4 significant digits are plenty for metrics


def run_experiment(exp: Experiment, verbose: int = 0) -> results.Record:
    """The recorded result of ``exp``: read from the registry, or trained and recorded now."""
    path = exp.record_dir()
    cached = results.load(path)
    if cached is not None:
        return cached

    from helpers import evaluate, model, train

    profile = exp.resolved_profile
    split = data.make_split(profile)
    assembled = training_data(exp)
    fit_index = np.arange(len(assembled.ids))
    holdout_index = np.array([], dtype=int)
    if exp.cv_folds:
        fit_index, holdout_index = cv_split(assembled.given_labels, exp.cv_folds, exp.cv_fold,
                                            exp.seed)
    backup = results.results_root() / exp.profile / ".partial" / path.name
    trained, history = train.fit(
        lambda: model.build_model(exp.input_size, augment=exp.augment,
                                  learning_rate=profile.learning_rate, seed=exp.seed),
        assembled.images[fit_index], assembled.given_labels[fit_index],
        split.validation.images, split.validation.labels, profile, exp.seed,
        backup_dir=backup, verbose=verbose, architecture=(exp.input_size, exp.augment))

    arrays = {
        "validation_probs": _f16(train.predict_proba(trained, split.validation.images)),
        "validation_labels": split.validation.labels, "validation_ids": split.validation.ids,
        "test_probs": _f16(train.predict_proba(trained, split.test.images)),
        "test_labels": split.test.labels, "test_ids": split.test.ids,
        "train_ids": assembled.ids, "train_given_labels": assembled.given_labels,
        "train_true_labels": assembled.true_labels, "train_noise_mask": assembled.noise_mask,
    }
    metrics = {split_name: evaluate.classification_metrics(
        arrays[f"{split_name}_labels"], arrays[f"{split_name}_probs"].astype(np.float32))
        for split_name in ("validation", "test")}
    if exp.cv_folds:
        arrays["holdout_index"] = holdout_index
        arrays["holdout_probs"] = _f16(train.predict_proba(trained, assembled.images[holdout_index]))

    record = {
        "name": exp.name, "key": exp.key(), "profile": exp.profile, "seed": exp.seed,
        "kind": "experiment", "summary": exp.summary(), "config": exp.config(),
        "history": history, "epochs": len(history.get("loss", [])),
        "train": {
            "size": int(len(fit_index)),
            "class_counts": data.class_counts(assembled.given_labels[fit_index]).tolist(),
            "injected_errors": int(assembled.noise_mask.sum()),
            "injected_errors_per_class": noise.noise_counts_per_class(
                assembled.true_labels, assembled.noise_mask).tolist(),
            "trainable_params": model.trainable_params(trained),
        },
        "metrics": metrics,
        "provenance": provenance(exp.seed, exp.profile, _hardware(history)),
    }
    if len(history.get("sittings", [])) > 1:  # interrupted and resumed: say where it restarted
        record["provenance"]["resumed_at_epochs"] = [s["first_epoch"]
                                                     for s in history["sittings"][1:]]
    written = results.write(path, record, arrays)
    shutil.rmtree(backup, ignore_errors=True)
    return written


def _hardware(history: dict) -> str:
    """Every machine that trained this run, in order (a resumed run may have moved)."""
    from helpers.train import hardware

    machines = list(dict.fromkeys(s["hardware"] for s in history.get("sittings", [])))
    return " + ".join(machines) if machines else hardware()


def run_all(experiments, verbose: int = 0) -> list[results.Record]:
    """Run (or read) several experiments in order, printing one line per experiment."""
    out = []
    for n, exp in enumerate(experiments, 1):
        cached = results.load(exp.record_dir()) is not None
        print(f"[{n}/{len(experiments)}] {exp.name} ({exp.summary()}, seed {exp.seed}): "
              f"{'from the registry' if cached else 'training…'}", flush=True)
        out.append(run_experiment(exp, verbose=verbose))
    return out

"""Experiments: a frozen config in, a recorded result out.

``run_experiment(Experiment(...))`` returns the registry's record when it is complete and
otherwise assembles the data, trains the frozen model with the recipe, evaluates it and
records everything a page needs to redraw its figures.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

import helpers
from helpers import NUM_CLASSES, augment as augmentations, class_id, data, noise, results, sources
from helpers.profiles import SHIFT_SCORING_IMAGES, Profile, get_profile
from helpers.recipe import LEGACY, get_recipe


def _integer(field: str, value, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high): integral floats (1.0) count as ints; bools and
    strings are refused, naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{field} must be an integer, got {value!r} ({type(value).__name__})")
    if float(value) != int(value):
        raise ValueError(f"{field} must be a whole number, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value >= high):
        upper = f", below {high:,}" if high is not None else ""
        raise ValueError(f"{field} must be >= {low}{upper}, got {value}")
    return value


def _number(field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{field} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)


def _flag(field: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{field} must be True or False, got {value!r}")


def _augmentation(value) -> bool | str:
    """``augment``: False (none), True or "article" (the article's set, inside the model), or
    the name of a pipeline augmentation (``helpers.augment.PIPELINE_AUGMENTATIONS``)."""
    if isinstance(value, str):
        if value in ("", "none"):
            return False
        if value == "article":
            return True
        if value in augmentations.PIPELINE_AUGMENTATIONS:
            return value
        raise ValueError(f"augment={value!r} is not an augmentation: use False, True (the "
                         f"article's set) or one of {', '.join(augmentations.PIPELINE_AUGMENTATIONS)}")
    return _flag("augment", value)


# Fields added after records existed: left out of the key while they hold their default, so
# the records made before them keep their keys.
LATER_FIELDS = {"noise_kind": "symmetric", "sample_weights": (), "noise_seed": None}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One training run of the frozen model; only the data recipe changes between chapters.

    Every field is checked and normalised when the experiment is made (so equal experiments
    get equal keys: ``seed=1.0`` is ``seed=1``, extras are sorted by class and zero counts
    dropped), and a data recipe that cannot be assembled (more extras than the pool holds, a
    fraction too small for the profile) fails here with the fix in the message, before
    anything is trained or written. Raises TypeError for a wrong type and ValueError for a
    wrong value, naming the field.
    """

    name: str
    profile: str | None = None  # None: $DCAI_PROFILE or "full"
    seed: int = 0  # in [0, 2**32): head initialisation and data order
    fraction: float = 0.5  # of the pool; 0.5 is the article's 20K baseline
    extra: tuple[tuple[str, int], ...] = ()  # e.g. (("cat", 1000), ("dog", 1000))
    noise_rate: float = 0.0  # label noise injected into the training labels (fraction)
    augment: bool | str = False  # True: the article's set; "crop_flip", "weather": pipeline
    input_size: int = 32  # pixels; images are resized inside the model when not 32
    drop_ids: tuple[str, ...] = ()  # training examples removed (label-error pruning)
    relabel: tuple[tuple[str, int], ...] = ()  # training examples given a new label
    cv_folds: int = 0  # > 0: train on all folds but ``cv_fold`` and predict the held-out one
    cv_fold: int = 0
    recipe: str | None = None  # None: $DCAI_RECIPE or helpers.recipe.CURRENT
    noise_kind: str = "symmetric"  # or "pairs": class-conditional (helpers.noise)
    sample_weights: tuple[tuple[str, float], ...] = ()  # training id -> loss weight in [0, 1]
    # which labels the noise hits (and the cross-validation split); None: ``seed``. Runs that
    # share one noisy training set but train with several seeds give it (confident learning)
    noise_seed: int | None = None

    def __post_init__(self):
        set_ = lambda field, value: object.__setattr__(self, field, value)  # noqa: E731
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"experiment name must be a plain identifier (letters, digits, "
                             f"underscores), got {self.name!r}")
        set_("profile", get_profile(self.profile).name)
        set_("recipe", get_recipe(self.recipe).name)
        set_("seed", _integer("seed", self.seed, 0, 2**32))
        set_("input_size", _integer("input_size", self.input_size, 32))
        set_("augment", _augmentation(self.augment))
        set_("noise_kind", noise.check_kind(self.noise_kind))
        set_("fraction", _number("fraction", self.fraction))
        set_("noise_rate", _number("noise_rate", self.noise_rate))
        set_("cv_folds", _integer("cv_folds", self.cv_folds, 0))
        set_("cv_fold", _integer("cv_fold", self.cv_fold, 0))
        if self.noise_seed is not None:
            set_("noise_seed", _integer("noise_seed", self.noise_seed, 0, 2**32))
            # the default spelled out, or a noise seed with nothing to act on: one key
            if self.noise_seed == self.seed or not (self.noise_rate or self.cv_folds):
                set_("noise_seed", None)
        if not 0 <= self.noise_rate < 1:
            raise ValueError(
                f"noise_rate must be in [0, 1) as a fraction (0.05 for 5%), got {self.noise_rate}")
        if not 0 < self.fraction <= 1:
            raise ValueError(
                f"fraction must be in (0, 1] (0.5 = half the pool), got {self.fraction}")
        extra = {}
        for item in self.extra:
            if isinstance(item, str) or len(item) != 2:
                raise TypeError(f"extra must be (class name, count) pairs, got {item!r}")
            name, count = item
            class_id(name)
            if name in extra:
                raise ValueError(f"extra names {name!r} twice: give each class once")
            extra[name] = _integer(f"extra count for {name!r}", count, 0)
        set_("extra", tuple(sorted((c, n) for c, n in extra.items() if n)))
        if isinstance(self.drop_ids, str):
            raise TypeError("drop_ids must be a sequence of training ids, not one string")
        set_("drop_ids", tuple(sorted(set(map(str, self.drop_ids)))))
        relabel = {}
        for item in self.relabel:
            if isinstance(item, str) or len(item) != 2:
                raise TypeError(f"relabel must be (training id, class id) pairs, got {item!r}")
            relabel[str(item[0])] = _integer("relabel target", item[1], 0, NUM_CLASSES)
        set_("relabel", tuple(sorted(relabel.items())))
        weights = {}
        for item in self.sample_weights:
            if isinstance(item, str) or len(item) != 2:
                raise TypeError(f"sample_weights must be (training id, weight) pairs, got {item!r}")
            weight = _number("sample weight", item[1])
            if not 0 <= weight <= 1:
                raise ValueError(f"sample weights must be in [0, 1], got {weight} for {item[0]!r}")
            weights[str(item[0])] = round(weight, 6)
        set_("sample_weights", tuple(sorted(weights.items())))
        if self.cv_folds and not (2 <= self.cv_folds and self.cv_fold < self.cv_folds):
            raise ValueError(
                f"cv_fold must be in 0..cv_folds-1 and cv_folds >= 2, got fold {self.cv_fold} "
                f"of {self.cv_folds}")
        if not self.cv_folds and self.cv_fold:
            raise ValueError(f"cv_fold={self.cv_fold} needs cv_folds >= 2")
        self._check_sizes()

    def _check_sizes(self) -> None:
        """The data recipe fits the profile's pool (arithmetic only: no data is loaded)."""
        pool_per_class = self.resolved_profile.pool_size // NUM_CLASSES
        per_class = data.subset_counts(self.resolved_profile.pool_size, self.fraction)
        for name, count in self.extra:
            free = pool_per_class - per_class
            if count > free:
                raise ValueError(
                    f"{count} extra {name!r} examples asked for, but only {free} are left in "
                    f"the {self.profile} pool outside the {self.fraction:.0%} subset: ask for "
                    "at most that many, or use a smaller fraction")

    @property
    def data_seed(self) -> int:
        """The seed of the injected label noise and of the cross-validation split."""
        return self.seed if self.noise_seed is None else self.noise_seed

    @property
    def resolved_profile(self) -> Profile:
        return get_profile(self.profile)

    def config(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Hash of everything that changes the result: the config minus its name, the profile's
        numbers, the recipe and its settings, which data is used, and the weights by content.

        Records of the legacy recipe (made before recipes had names) keep their old keys: no
        recipe in the hash, weights by file name; so they stay readable."""
        payload = {k: v for k, v in self.config().items() if k not in ("name", "recipe")
                   and not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
        payload["profile_settings"] = dataclasses.asdict(self.resolved_profile)
        payload["data"] = "jpeg-copy" if sources.data_source().startswith(sources.JPEG_COPY_NOTE) else "tfds"
        if self.recipe == LEGACY:
            payload["weights"] = Path(sources.weights_setting()).name
        else:
            payload["recipe"] = dataclasses.asdict(get_recipe(self.recipe))
            payload["weights"] = sources.weights_fingerprint()
        return results.config_key(payload)

    def summary(self) -> str:
        parts = [f"{self.fraction:.0%} of pool"]
        if self.recipe != get_recipe().name:
            parts.append(f"recipe {self.recipe}")
        parts += [f"+{n} {c}" for c, n in self.extra]
        if self.noise_rate:
            kind = " class-conditional (per pair)" if self.noise_kind == "pairs" else ""
            parts.append(f"noise {self.noise_rate:.0%}{kind}")
            if self.noise_seed is not None:
                parts.append(f"noise seed {self.noise_seed}")
        if self.augment is True:
            parts.append("augmented")
        elif self.augment:
            parts.append(f"augmented: {self.augment.replace('_', '+')}")
        if self.input_size != 32:
            parts.append(f"{self.input_size}px")
        if self.drop_ids:
            parts.append(f"dropped {len(self.drop_ids)}")
        if self.relabel:
            parts.append(f"relabelled {len(self.relabel)}")
        if self.sample_weights:
            parts.append(f"reweighted {len(self.sample_weights)}")
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
    sample_weights: np.ndarray | None = None  # (n,) loss weights, None: all 1


def training_data(exp: Experiment) -> TrainingData:
    """Subset + extras, then injected noise, then the repairs (drop, relabel, reweight)."""
    split = data.make_split(exp.resolved_profile)
    chosen = data.training_set(split, exp.fraction, exp.extra)
    given, mask = noise.inject_noise(chosen.labels, exp.noise_rate, seed=exp.data_seed,
                                     kind=exp.noise_kind)
    position = {i: n for n, i in enumerate(chosen.ids)}
    unknown = [i for i in list(exp.drop_ids) + [i for i, _ in exp.relabel]
               + [i for i, _ in exp.sample_weights] if i not in position]
    if unknown:
        raise ValueError(f"{len(unknown)} ids to drop/relabel are not in the training set "
                         f"(e.g. {unknown[:3]}): build them from this experiment's training data")
    for i, label in exp.relabel:
        given[position[i]] = label
    keep = np.ones(len(chosen), dtype=bool)
    keep[[position[i] for i in exp.drop_ids]] = False
    if not keep.any():
        raise ValueError("every training example was dropped: nothing is left to train on")
    weights = None
    if exp.sample_weights:
        weights = np.ones(len(chosen), dtype=np.float32)
        for i, weight in exp.sample_weights:
            weights[position[i]] = weight
        weights = weights[keep]
    return TrainingData(chosen.images[keep], given[keep], chosen.labels[keep], mask[keep],
                        chosen.ids[keep], weights)


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


WEIGHTS_CACHE = ".weights"  # results/<profile>/.weights/: final weights, git-ignored


def weights_path(exp: Experiment) -> Path:
    """Where the trained weights of ``exp`` are kept (git-ignored; a later chapter that needs
    the model itself, e.g. for features, loads them, or retrains through the registry)."""
    return results.results_root() / exp.profile / WEIGHTS_CACHE / f"{exp.record_dir().name}.weights.h5"


def run_experiment(exp: Experiment, verbose: int = 0) -> results.Record:
    """The recorded result of ``exp``: read from the registry, or trained and recorded now.

    Training holds a lock on the experiment's key: a second process asking for the same run
    waits for the first and then reads its record. The registry is checked for writability
    before training starts."""
    path = exp.record_dir()
    cached = results.load(path)
    if cached is not None:
        return cached
    if os.environ.get("DCAI_ANY_SOURCE", "").strip().lower() in ("1", "true", "yes"):
        other = recorded_from_other_sources(exp)
        if other is not None:
            return other
    results.ensure_writable(exp.profile)
    with results.run_lock(path):
        cached = results.load(path)  # another process may have finished it while we waited
        return cached if cached is not None else _train_and_record(exp, path, verbose)


def recorded_from_other_sources(exp: Experiment) -> results.Record | None:
    """A record of the same experiment (same name and config) made from other data or
    weights sources, or None. ``run_experiment`` serves it when ``DCAI_ANY_SOURCE=1`` (the
    Colab setup cell sets it, so pages open with the committed runs instead of retraining);
    the record's provenance, which every page shows, names the sources it came from."""
    import json

    def normal(config: dict) -> str:
        return json.dumps({"recipe": LEGACY, **LATER_FIELDS, **config}, sort_keys=True,
                          default=list)

    target = normal(exp.config())
    for record in results.iter_records(exp.profile):
        if record.name == exp.name and normal(record.config) == target:
            return record
    return None


@dataclasses.dataclass
class _Fitted:
    model: object  # keras.Model
    history: dict
    assembled: TrainingData
    fit_index: np.ndarray
    holdout_index: np.ndarray


def _build(exp: Experiment):
    """A freshly built, compiled model of ``exp``: the article's augmentation set (augment=True)
    lives inside the model; pipeline augmentations do not."""
    from helpers import model

    return model.build_model(exp.input_size, augment=exp.augment is True,
                             learning_rate=exp.resolved_profile.learning_rate, seed=exp.seed,
                             recipe=exp.recipe)


def _fit(exp: Experiment, backup: Path | None, verbose: int) -> _Fitted:
    """Assemble the data and train ``exp``'s model with the recipe (resumable from ``backup``)."""
    from helpers import train

    profile = exp.resolved_profile
    split = data.make_split(profile)
    assembled = training_data(exp)
    fit_index = np.arange(len(assembled.ids))
    holdout_index = np.array([], dtype=int)
    if exp.cv_folds:
        fit_index, holdout_index = cv_split(assembled.given_labels, exp.cv_folds, exp.cv_fold,
                                            exp.data_seed)
    transform = augmentations.pipeline_augmentation(exp.augment) if isinstance(exp.augment, str) \
        else None
    weights = assembled.sample_weights[fit_index] if assembled.sample_weights is not None \
        else None
    trained, history = train.fit(
        lambda: _build(exp), assembled.images[fit_index], assembled.given_labels[fit_index],
        split.validation.images, split.validation.labels, profile, exp.seed,
        backup_dir=backup, verbose=verbose,
        architecture=(exp.input_size, exp.augment is True, exp.recipe),
        transform=transform, sample_weights=weights)
    return _Fitted(trained, history, assembled, fit_index, holdout_index)


def _keep_weights(exp: Experiment, trained) -> Path:
    keep = weights_path(exp)
    keep.parent.mkdir(parents=True, exist_ok=True)
    temporary = keep.with_name(keep.name.replace(".weights.h5", ".tmp.weights.h5"))
    trained.save_weights(str(temporary))
    os.replace(temporary, keep)
    return keep


def trained_model(exp: Experiment):
    """The trained model of ``exp`` (a keras.Model), for chapters that need the model itself
    (features, shifted test sets): its final weights from the registry's git-ignored cache
    (``weights_path``); when they are missing (a fresh clone, another machine), the run is
    recorded first if needed and then trained again with the same seed and data, and the
    weights cached. Raises what ``run_experiment`` raises."""
    path = weights_path(exp)
    if not path.exists():
        run_experiment(exp)
        if not path.exists():
            with results.run_lock(exp.record_dir()):
                if not path.exists():
                    backup = results.partial_dir(exp.record_dir(), "-weights")
                    fitted = _fit(exp, backup, verbose=0)
                    _keep_weights(exp, fitted.model)
                    shutil.rmtree(backup, ignore_errors=True)
    built = _build(exp)
    with warnings.catch_warnings():  # the file also holds the optimizer, which is not needed
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        built.load_weights(str(path))
    return built


def shift_metrics(trained, test: data.LabelledImages, profile: str) -> dict:
    """Accuracy and macro-F1 of ``trained`` on every shifted test set
    (``helpers.corruptions.score_shifted`` on the profile's fixed stratified subset of
    ``SHIFT_SCORING_IMAGES[profile]`` test images), with the seconds it took."""
    from helpers import corruptions, train

    return corruptions.score_shifted(lambda images: train.predict_proba(trained, images),
                                     test.images, test.labels,
                                     subset=SHIFT_SCORING_IMAGES[profile])


def add_shift_metrics(exp: Experiment) -> results.Record:
    """The record of ``exp`` with its shifted-set metrics: recorded runs made before records
    carried them (or their confusion matrices) get them now, from the cached model
    (``trained_model``), atomically."""
    record = run_experiment(exp)
    if has_shift_metrics(record):
        return record
    if record.path != exp.record_dir():  # served from other sources (DCAI_ANY_SOURCE=1)
        raise ValueError(
            f"{record.path.name} was recorded from other data or weights sources and has no "
            "shifted-set metrics; scoring this machine's model into it would mix sources. "
            "Unset DCAI_ANY_SOURCE to train and score the run with this machine's sources")
    trained = trained_model(exp)
    split = data.make_split(exp.resolved_profile)
    with results.run_lock(exp.record_dir()):
        record = results.load(exp.record_dir())
        if not has_shift_metrics(record):
            record = results.update(record, shift=shift_metrics(trained, split.test, exp.profile))
    return record


def has_shift_metrics(record: results.Record) -> bool:
    """Whether ``record`` holds complete shifted-set metrics (with the confusion matrices)."""
    cells = (record.get("shift") or {}).get("per_corruption") or {}
    return bool(cells) and all("confusion_matrix" in cell for by_severity in cells.values()
                               for cell in by_severity.values())


def _train_and_record(exp: Experiment, path: Path, verbose: int) -> results.Record:
    from helpers import evaluate, model, train

    split = data.make_split(exp.resolved_profile)
    backup = results.partial_dir(path)
    fitted = _fit(exp, backup, verbose)
    trained, history, assembled = fitted.model, fitted.history, fitted.assembled
    fit_index, holdout_index = fitted.fit_index, fitted.holdout_index

    start = time.perf_counter()
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
    scoring_seconds = time.perf_counter() - start
    shifted = shift_metrics(trained, split.test, exp.profile)

    record = {
        "name": exp.name, "key": exp.key(), "profile": exp.profile, "seed": exp.seed,
        "recipe": exp.recipe, "kind": "experiment", "summary": exp.summary(),
        "config": exp.config(), "history": history, "epochs": len(history.get("loss", [])),
        "seconds": {"training": history.get("seconds"),
                    "validation": history.get("validation_seconds"),
                    "scoring": scoring_seconds,
                    "shift": sum(shifted["seconds"].values())},
        "train": {
            "size": int(len(fit_index)),
            "class_counts": data.class_counts(assembled.given_labels[fit_index]).tolist(),
            "injected_errors": int(assembled.noise_mask.sum()),
            "injected_errors_per_class": noise.noise_counts_per_class(
                assembled.true_labels, assembled.noise_mask).tolist(),
            "trainable_params": model.trainable_params(trained),
        },
        "metrics": metrics,
        "shift": shifted,
        "provenance": {**provenance(exp.seed, exp.profile, _hardware(history)),
                       "recipe": exp.recipe},
    }
    if len(history.get("sittings", [])) > 1:  # interrupted and resumed: say where it restarted
        record["provenance"]["resumed_at_epochs"] = [s["first_epoch"]
                                                     for s in history["sittings"][1:]]
    _keep_weights(exp, trained)
    written = results.write(path, record, arrays)
    shutil.rmtree(backup, ignore_errors=True)  # only now: a crash before this resumes scoring
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

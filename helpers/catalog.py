"""The book's experiments, named once so that every chapter asks for the same runs (and the
registry serves a run that another chapter already trained)."""

from __future__ import annotations

from helpers import recipe as recipes
from helpers.experiments import Experiment
from helpers.profiles import get_profile

BASELINE_SEEDS = (0, 1, 2)
NOISE_RATES = (0.01, 0.02, 0.03, 0.05, 0.10)
POOL_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
ARTICLE_EXTRA_PER_CLASS = 1000  # the article adds 1,000 cats and 1,000 dogs
CV_FOLDS = 4


def baseline(profile: str | None = None, seed: int = 0, recipe: str | None = None) -> Experiment:
    """50% of the pool (the article's 20K), clean labels."""
    return Experiment("baseline", profile=profile, seed=seed, recipe=recipe)


def recipe_study(profile: str | None = None, seeds=BASELINE_SEEDS) -> list[Experiment]:
    """The seed study that chose the recipe: the 20K baseline under every recipe of
    ``helpers.recipe.STUDY`` with each seed (seed by seed, so every recipe has a first seed
    early), then the probes that reset the pretrained batch-norm statistics (seed 0)."""
    runs = [baseline(profile, s, r) for s in seeds for r in recipes.STUDY]
    return runs + [baseline(profile, seeds[0], r) for r in recipes.PROBES]


def baselines(profile: str | None = None, seeds=BASELINE_SEEDS) -> list[Experiment]:
    return [baseline(profile, s) for s in seeds]


def label_noise(rate: float, profile: str | None = None, seed: int = 0,
                kind: str = "symmetric", noise_seed: int | None = None) -> Experiment:
    """The baseline with ``rate`` of its labels made wrong: ``kind="symmetric"`` (any class to
    any other) or ``"pairs"`` (class-conditional: ``rate`` of each class of the confusable
    pairs swapped to its partner; ``helpers.noise``). ``noise_seed`` (default: ``seed``)
    picks which labels are made wrong, so several training seeds can share one noisy set."""
    if rate == 0:
        return baseline(profile, seed)
    return Experiment("label_noise", profile=profile, seed=seed, noise_rate=rate, noise_kind=kind,
                      noise_seed=noise_seed)


def augmentation(profile: str | None = None, seed: int = 0) -> Experiment:
    """The article's augmentation set (flip, rotation, zoom, translation, contrast)."""
    return Experiment("augmentation", profile=profile, seed=seed, augment=True)


def crop_flip(profile: str | None = None, seed: int = 0) -> Experiment:
    """CIFAR practice: pad 4 pixels, random 32x32 crop, horizontal flip (``helpers.augment``)."""
    return Experiment("crop_flip", profile=profile, seed=seed, augment="crop_flip")


def crop_only(profile: str | None = None, seed: int = 0) -> Experiment:
    """The crop half of crop+flip alone: pad 4 pixels, random 32x32 crop, no flip."""
    return Experiment("crop_only", profile=profile, seed=seed, augment="crop")


def flip_only(profile: str | None = None, seed: int = 0) -> Experiment:
    """The flip half of crop+flip alone: random horizontal flip, no crop."""
    return Experiment("flip_only", profile=profile, seed=seed, augment="flip")


# Chapter 3's configurations, each called as ``make(profile, seed)``: the article's set, then
# crop+flip and each of its halves (the chapter's page and the test-set audit's ensemble)
AUGMENTATIONS = (augmentation, crop_flip, crop_only, flip_only)


def deployment_augmentation(profile: str | None = None, seed: int = 0) -> Experiment:
    """Augmentation that mimics the deployment condition: snow, frost or fog on half the
    images (the weather family of ``helpers.corruptions``; the other families are held out)."""
    return Experiment("deployment_augmentation", profile=profile, seed=seed, augment="weather")


def more_cats_and_dogs(profile: str | None = None, seed: int = 0,
                       per_class: int | None = None) -> Experiment:
    """Baseline plus extra cats and dogs (1,000 each in the full profile, scaled otherwise)."""
    count = per_class if per_class is not None else get_profile(profile).scaled(
        ARTICLE_EXTRA_PER_CLASS)
    return Experiment("more_cats_and_dogs", profile=profile, seed=seed,
                      extra=(("cat", count), ("dog", count)))


def more_data(fraction: float, profile: str | None = None, seed: int = 0) -> Experiment:
    if fraction == 0.5:
        return baseline(profile, seed)
    return Experiment("more_data", profile=profile, seed=seed, fraction=fraction)


def cv_folds(rate: float, profile: str | None = None, seed: int = 0,
             folds: int = CV_FOLDS, kind: str = "symmetric",
             augment: bool | str = False) -> list[Experiment]:
    """K runs on the noisy training set of ``label_noise(rate, kind=kind)``, each predicting
    one fold (out-of-fold probabilities for confident learning). ``augment``: as for
    ``Experiment`` (e.g. "crop_flip"); the default, no augmentation, is what chapter 6 uses."""
    return [Experiment("cv_fold", profile=profile, seed=seed, noise_rate=rate, cv_folds=folds,
                       cv_fold=k, noise_kind=kind, augment=augment) for k in range(folds)]


def pruned(rate: float, drop_ids, profile: str | None = None, seed: int = 0,
           kind: str = "symmetric", noise_seed: int | None = None) -> Experiment:
    """The noisy set of ``label_noise(rate, kind=kind)`` without the examples ``drop_ids``."""
    return Experiment("cl_pruned", profile=profile, seed=seed, noise_rate=rate,
                      drop_ids=tuple(drop_ids), noise_kind=kind, noise_seed=noise_seed)


def relabelled(rate: float, relabel, profile: str | None = None, seed: int = 0,
               kind: str = "symmetric", noise_seed: int | None = None) -> Experiment:
    """The noisy set with the (training id, class id) pairs of ``relabel`` given new labels."""
    return Experiment("cl_relabelled", profile=profile, seed=seed, noise_rate=rate,
                      relabel=tuple(relabel), noise_kind=kind, noise_seed=noise_seed)


def reweighted(rate: float, weights, profile: str | None = None, seed: int = 0,
               kind: str = "symmetric", noise_seed: int | None = None) -> Experiment:
    """The noisy set with (training id, loss weight in [0, 1]) pairs of ``weights``."""
    return Experiment("cl_reweighted", profile=profile, seed=seed, noise_rate=rate,
                      sample_weights=tuple(weights), noise_kind=kind, noise_seed=noise_seed)


def shift_grid(profile: str | None = None, seeds=BASELINE_SEEDS) -> list[Experiment]:
    """Every training run of the deployment-shift chapter: the baseline, the deployment-mimicking
    augmentation and crop+flip, each with every seed."""
    return [exp for seed in seeds for exp in (baseline(profile, seed),
                                              deployment_augmentation(profile, seed),
                                              crop_flip(profile, seed))]


def article_grid(profile: str | None = None) -> list[Experiment]:
    """Every training run of chapters 1-5, in chapter order."""
    runs = baselines(profile)
    runs += [label_noise(r, profile) for r in NOISE_RATES]
    runs += [augmentation(profile), more_cats_and_dogs(profile)]
    runs += [more_data(f, profile) for f in POOL_FRACTIONS if f != 0.5]
    return runs

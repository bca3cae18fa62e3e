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
CL_NOISE_RATES = (0.02, 0.10)


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


def label_noise(rate: float, profile: str | None = None, seed: int = 0) -> Experiment:
    if rate == 0:
        return baseline(profile, seed)
    return Experiment("label_noise", profile=profile, seed=seed, noise_rate=rate)


def augmentation(profile: str | None = None, seed: int = 0) -> Experiment:
    return Experiment("augmentation", profile=profile, seed=seed, augment=True)


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
             folds: int = CV_FOLDS) -> list[Experiment]:
    """K runs on the noisy training set of ``label_noise(rate)``, each predicting one fold."""
    return [Experiment("cv_fold", profile=profile, seed=seed, noise_rate=rate, cv_folds=folds,
                       cv_fold=k) for k in range(folds)]


def pruned(rate: float, drop_ids, profile: str | None = None, seed: int = 0) -> Experiment:
    return Experiment("cl_pruned", profile=profile, seed=seed, noise_rate=rate,
                      drop_ids=tuple(drop_ids))


def relabelled(rate: float, relabel, profile: str | None = None, seed: int = 0) -> Experiment:
    return Experiment("cl_relabelled", profile=profile, seed=seed, noise_rate=rate,
                      relabel=tuple(relabel))


def article_grid(profile: str | None = None) -> list[Experiment]:
    """Every training run of chapters 1-5, in chapter order."""
    runs = baselines(profile)
    runs += [label_noise(r, profile) for r in NOISE_RATES]
    runs += [augmentation(profile), more_cats_and_dogs(profile)]
    runs += [more_data(f, profile) for f in POOL_FRACTIONS if f != 0.5]
    return runs


def schedule(profile: str | None = None, seeds=BASELINE_SEEDS) -> list:
    """Every run of every chapter, in the order that makes the book complete early and firmer
    later (the full profile on a CPU takes days): first the recipe seed study, whose runs of
    the book's recipe are the baseline's seeds; then one seed of every configuration, most
    telling first (the extremes of the noise grid, the 40K model and its audit, …, confident
    learning last); then the second seed of every configuration, then the third. Each step is
    an Experiment, or ``("confident_learning", rate)`` / ``("test_set_audit",)`` for the
    analyses of chapters 6 and 7, which train their own runs (cross-validation folds,
    repaired sets) through the registry."""
    ordered = [*recipe_study(profile, seeds)]
    for n, seed in enumerate(seeds):
        ordered += [label_noise(0.10, profile, seed), more_data(1.0, profile, seed)]
        if n == 0:
            ordered.append(("test_set_audit",))
        ordered += [label_noise(0.01, profile, seed), augmentation(profile, seed),
                    more_cats_and_dogs(profile, seed), more_data(0.25, profile, seed),
                    more_data(0.75, profile, seed),
                    *[label_noise(r, profile, seed) for r in NOISE_RATES if r not in (0.01, 0.10)]]
        if n == 0:
            ordered += [("confident_learning", r) for r in CL_NOISE_RATES]
    assert all(exp in ordered for exp in article_grid(profile))  # nothing of chapters 1-5 left out
    return ordered


def remaining(profile: str | None = None) -> tuple[list[str], float | None]:
    """The runs of ``schedule`` not recorded yet (labels, in order) and an estimate of the
    hours they need: their number times the mean wall time (training steps + validation) of
    the recorded runs of the book's recipe in this profile (None when none is recorded)."""
    from helpers import results

    profile = get_profile(profile).name
    missing = [label for step in schedule(profile) for label, done in planned_runs(step, profile)
               if not done]
    missing = list(dict.fromkeys(missing))
    current = recipes.get_recipe().name
    seconds = [results.wall_seconds(r) for r in results.iter_records(profile)
               if r.get("kind", "experiment") == "experiment" and r.get("recipe") == current]
    hours = len(missing) * float(sum(seconds) / len(seconds)) / 3600 if seconds else None
    return missing, hours


def describe(step) -> str:
    if isinstance(step, Experiment):
        from helpers import results

        status = "recorded" if results.load(step.record_dir()) else "to train"
        return f"{step.name:<20} seed={step.seed} {step.summary()}  key={step.key()}  [{status}]"
    return " ".join(map(str, step)) + "  (analysis: trains the runs it needs that are missing)"


def run_step(step, profile: str | None = None):
    """Train (or read) one step of ``schedule``."""
    if isinstance(step, Experiment):  # main() has already printed what the step is
        from helpers.experiments import run_experiment

        return run_experiment(step, verbose=2)
    if step[0] == "confident_learning":
        from helpers import confident

        return confident.clean_up(step[1], profile)
    if step[0] == "test_set_audit":
        from helpers import audit

        return audit.audit(profile)
    raise ValueError(f"unknown step {step!r}")


CHAPTERS = {  # chapter notebook -> the schedule steps its page needs
    "01_baseline": lambda profile: baselines(profile),
    "02_label_noise": lambda profile: baselines(profile)
    + [label_noise(r, profile) for r in NOISE_RATES],
    "03_augmentation": lambda profile: baselines(profile) + [augmentation(profile)],
    "04_more_cats_and_dogs": lambda profile: baselines(profile) + [more_cats_and_dogs(profile)],
    "05_more_data": lambda profile: baselines(profile)
    + [more_data(f, profile) for f in POOL_FRACTIONS if f != 0.5],
    "06_confident_learning": lambda profile: [("confident_learning", r) for r in CL_NOISE_RATES],
    "07_test_set_audit": lambda profile: [("test_set_audit",)],
}


def _recorded_like(profile: str, name: str, **config) -> bool:
    """Whether the registry holds a run called ``name`` whose config matches ``config`` (for
    runs whose full config is only known after other runs, like the confident-learning
    repairs)."""
    from helpers import results

    current = recipes.get_recipe().name
    return any(r["name"] == name and results.record_recipe(r) == current
               and all(r["config"].get(k) == v for k, v in config.items())
               for r in results.iter_records(profile))


def planned_runs(step, profile: str | None = None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for every record that ``step`` of ``schedule`` needs, including
    the runs an analysis trains for itself and the analysis record."""
    from helpers import results

    profile = get_profile(profile).name
    if isinstance(step, Experiment):
        return [(f"{step.name}: {step.summary()}, seed {step.seed}",
                 results.load(step.record_dir()) is not None)]
    if step[0] == "confident_learning":
        rate = step[1]
        runs = [run for exp in [*baselines(profile), *cv_folds(rate, profile),
                                label_noise(rate, profile)]
                for run in planned_runs(exp, profile)]
        runs += [(f"{name}: noise {rate:.0%}, seed 0",
                  _recorded_like(profile, name, noise_rate=rate, seed=0))
                 for name in ("cl_pruned", "cl_relabelled")]
        return runs + [(f"confident learning analysis at {rate:.0%} noise",
                        _recorded_like(profile, "confident_learning", noise_rate=rate, seed=0))]
    if step[0] == "test_set_audit":
        return planned_runs(more_data(1.0, profile), profile) + [
            ("test-set audit", _recorded_like(profile, "test_set_audit",
                                             model_key=more_data(1.0, profile).key()))]
    raise ValueError(f"unknown step {step!r}")


def chapter_progress(chapter: str, profile: str | None = None) -> tuple[int, int]:
    """(recorded, needed) records of ``profile`` for the page of ``chapter`` (a CHAPTERS key)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}: choose from {', '.join(CHAPTERS)}")
    runs = dict(run for step in CHAPTERS[chapter](profile) for run in planned_runs(step, profile))
    return sum(runs.values()), len(runs)


def main(argv=None) -> int:
    """``python -m helpers.catalog [--profile P] [--list]``: train (or read) every run of every
    chapter, most telling first (see ``schedule``). Every finished run is recorded at once, so
    it can run in the background and be stopped and resumed at any time."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.catalog", description=main.__doc__)
    parser.add_argument("--profile", help="smoke, quick or full (default: $DCAI_PROFILE or full)")
    parser.add_argument("--list", action="store_true", help="print the schedule, train nothing")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile).name
    except ValueError as error:
        parser.error(str(error))
    steps = schedule(profile)
    missing, hours = remaining(profile)
    estimate = f"about {hours:.1f} hours at the recorded runs' mean" if hours is not None else \
        "no recorded run of this recipe to estimate the time from yet"
    print(f"{len(missing)} training runs of {profile} not recorded yet ({estimate}); the "
          f"{len(steps)} steps below include analyses that train runs of their own.", flush=True)
    for n, step in enumerate(steps, 1):
        print(f"[{n}/{len(steps)}] {describe(step)}", flush=True)
        if not args.list:
            run_step(step, profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

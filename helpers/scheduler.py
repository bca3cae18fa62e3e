"""The scheduler: every run and analysis of every chapter, in the order that makes the book
complete early and firmer later (the full profile on a CPU takes days).

It sits on top of the package: it walks the catalog of named experiments
(``helpers.catalog``) and calls the chapter analyses (confident learning, the test-set audit,
the dataset audit), which train the runs they need through the registry. Nothing else in
``helpers`` imports it.

``python -m helpers.scheduler [--profile P] [--list]`` trains (or reads) everything; every
finished run is recorded at once, so it can run in the background and be stopped and resumed
at any time, and a second process never trains a run that another is training.
"""

from __future__ import annotations

from helpers import catalog, confident, recipe as recipes, results
from helpers.catalog import BASELINE_SEEDS, NOISE_RATES
from helpers.experiments import Experiment
from helpers.profiles import get_profile

# The order in which the grid walks confident learning's settings (``helpers.confident.SETTINGS``):
# class-conditional and high symmetric noise first (chapter 6's targets), the 2% lesson last.
CL_ORDER = ("pairs40", "symmetric40", "symmetric10", "symmetric02")


def _round(profile: str, seed: int) -> list[Experiment]:
    """One seed of every configuration that a chapter compares, most telling first."""
    return [catalog.label_noise(0.10, profile, seed), catalog.more_data(1.0, profile, seed),
            catalog.deployment_augmentation(profile, seed), catalog.crop_flip(profile, seed),
            catalog.label_noise(0.01, profile, seed), catalog.augmentation(profile, seed),
            catalog.more_cats_and_dogs(profile, seed), catalog.more_data(0.25, profile, seed),
            catalog.more_data(0.75, profile, seed),
            *[catalog.label_noise(r, profile, seed) for r in NOISE_RATES if r not in (0.01, 0.10)],
            # crop+flip's halves alone (which one does the work; chapter 3 shows them)
            catalog.crop_only(profile, seed), catalog.flip_only(profile, seed),
            # the noisy runs of confident learning's settings beyond chapter 2's rates (chapter 6),
            # last: its page also needs fold runs and repairs. Every training seed shares the
            # setting's one draw of the noise, as chapter 6 compares them
            *[confident.noisy_experiment(s, profile, seed) for s in confident.SETTINGS
              if s.repairs and s.rate not in NOISE_RATES]]


def schedule(profile: str | None = None, seeds=BASELINE_SEEDS) -> list:
    """Every step, in order: the recipe seed study (whose runs of the book's recipe are the
    baseline's seeds); then one seed of every configuration (``_round``), the analyses that need
    it (the dataset audit after the first round's 40K model, the deduplicated retrain; the
    test-set audit, whose ensemble has every seed, after the last round)
    and that seed's runs of confident learning (the detection-only setting's fold runs and
    analysis after seed 0's); then the second seed of everything, then the third; last,
    confident learning's analyses of the settings that repair, which compare all their seeds.
    A step is an Experiment, or a tuple naming an analysis: ``("dataset_audit",)``,
    ``("test_set_audit",)``, ``("deduplicated", seed)``, ``("confident_learning_runs", setting
    name, seed)`` (the noisy run and the repairs of one training seed),
    ``("confident_learning", setting name)`` (``helpers.confident.SETTINGS``). The fold runs
    of chapter 6's other detectors (``confident.DETECTORS``) come last."""
    profile = get_profile(profile).name
    settings = [confident.setting(name) for name in CL_ORDER]
    repairing = [s for s in settings if s.repairs]
    ordered = [*catalog.recipe_study(profile, seeds)]
    for n, seed in enumerate(seeds):
        ordered += _round(profile, seed)
        if n == 0:
            ordered.append(("dataset_audit",))
        if n == len(seeds) - 1:
            # the test-set audit's ensemble has every seed of its members
            ordered.append(("test_set_audit",))
        ordered.append(("deduplicated", seed))
        if n == 0:
            # confident learning: the fold runs of every setting that repairs come first (the
            # repairs' configs follow from their flags), settings where cleaning is expected to
            # pay first
            ordered += [run for s in repairing for run in confident.fold_experiments(s, profile)]
        if seed in confident.seeds(profile):
            ordered += [("confident_learning_runs", s.name, seed) for s in repairing]
        if n == 0:
            # the detection-only setting (the 2% lesson) is complete with its folds
            ordered += [step for s in settings if not s.repairs
                        for step in (*confident.fold_experiments(s, profile),
                                     ("confident_learning", s.name))]
    # every training seed of confident learning is one of the rounds' (the analyses would
    # otherwise train the others themselves, out of the round order)
    assert set(confident.seeds(profile)) <= set(seeds)
    ordered += [("confident_learning", s.name) for s in repairing]
    # last: the fold runs of chapter 6's other detectors (crop + flip), which the page compares
    # with the detector its repairs use
    ordered += _other_detectors(profile)
    assert all(exp in ordered
               for exp in catalog.article_grid(profile) + catalog.shift_grid(profile))
    return ordered


def _other_detectors(profile: str) -> list[Experiment]:
    """The fold runs of every detector of ``confident.DETECTORS`` but the chapter's own, for
    each setting of ``confident.DETECTOR_SETTINGS``."""
    return [run for name in confident.DETECTOR_SETTINGS
            for run in confident.other_detector_experiments(name, profile)]


def run_step(step, profile: str | None = None):
    """Train (or read) one step of ``schedule``."""
    from helpers.experiments import run_experiment

    if isinstance(step, Experiment):
        return run_experiment(step, verbose=2)
    kind, *args = step
    if kind == "confident_learning":
        return confident.clean_up(args[0], profile)
    if kind == "confident_learning_runs":
        return confident.train_seed(args[0], args[1], profile)
    if kind == "test_set_audit":
        from helpers import audit

        return audit.audit(profile)
    if kind == "dataset_audit":
        from helpers import duplicates

        return duplicates.audit_dataset(profile)
    if kind == "deduplicated":
        from helpers import duplicates

        return run_experiment(duplicates.deduplicated(profile, args[0]), verbose=2)
    raise ValueError(f"unknown step {step!r}")


def planned_runs(step, profile: str | None = None) -> list[tuple[str, bool]]:
    """``(label, recorded?)`` for every record that ``step`` of ``schedule`` needs, including
    the runs an analysis trains for itself and the analysis record."""
    profile = get_profile(profile).name
    if isinstance(step, Experiment):
        return [(f"{step.name}: {step.summary()}, seed {step.seed}",
                 results.load(step.record_dir()) is not None)]
    kind, *args = step
    if kind == "confident_learning":
        return confident.planned(args[0], profile)
    if kind == "confident_learning_runs":
        return confident.planned_seed(args[0], args[1], profile)
    if kind == "test_set_audit":
        from helpers import audit

        return audit.planned(profile)
    if kind == "dataset_audit":
        from helpers import duplicates

        return duplicates.planned(profile)
    if kind == "deduplicated":
        from helpers import duplicates

        return duplicates.planned_retrain(profile, args[0])
    raise ValueError(f"unknown step {step!r}")


def describe(step, profile: str | None = None, runs: list | None = None) -> str:
    """One line about ``step``; ``runs``: its ``planned_runs`` if already looked up."""
    runs = planned_runs(step, profile) if runs is None else runs
    if isinstance(step, Experiment):
        status = "recorded" if runs[0][1] else "to train"
        return f"{step.name:<24} seed={step.seed} {step.summary()}  key={step.key()}  [{status}]"
    done = sum(recorded for _, recorded in runs)
    if step[0] == "confident_learning_runs":
        return (f"confident_learning {step[1]}, training seed {step[2]}: the noisy run and the "
                f"repairs ({done} of {len(runs)} records made, fold runs included)")
    return (" ".join(map(str, step)) + f"  (analysis: {done} of {len(runs)} records made; it "
            "trains the runs it needs that are missing)")


def remaining(profile: str | None = None, plans: list | None = None,
              seconds: list[float] | None = None) -> tuple[list[str], float | None]:
    """The runs of ``schedule`` not recorded yet (labels, in order) and an estimate of the
    hours they need: their number times the mean wall time (training steps + validation) of
    the recorded runs of the book's recipe in this profile (None when none is recorded).
    ``plans``: the ``planned_runs`` of every step of ``schedule(profile)``, and ``seconds``:
    ``recorded_seconds(profile)``, each if already looked up."""
    profile = get_profile(profile).name
    if plans is None:
        plans = [planned_runs(step, profile) for step in schedule(profile)]
    missing = [label for runs in plans for label, done in runs if not done]
    missing = list(dict.fromkeys(missing))
    if seconds is None:
        seconds = recorded_seconds(profile)
    hours = len(missing) * float(sum(seconds) / len(seconds)) / 3600 if seconds else None
    return missing, hours


def recorded_seconds(profile: str | None = None) -> list[float]:
    """Wall time (training steps + validation, seconds) of every recorded run of the book's
    recipe in ``profile``: what the grid has cost so far, one entry per run."""
    profile = get_profile(profile).name
    current = recipes.get_recipe().name
    return [results.wall_seconds(r) for r in results.iter_records(profile)
            if r.get("kind", "experiment") == "experiment" and r.get("recipe") == current]


def grid_cost(profile: str | None = None, plans: list | None = None,
              seconds: list[float] | None = None) -> dict[str, str]:
    """What the grid has cost and what is left, for a page's prose (``glue``) and ``--list``:
    ``grid_runs`` (recorded runs of the book's recipe), ``grid_hours`` (their total wall time:
    training steps + validation, hours), ``grid_minutes_per_run``, ``grid_missing`` (records
    of ``schedule(profile)`` not made yet) and ``grid_hours_left`` (their estimate at the mean,
    "unknown" before the first run). ``plans`` and ``seconds`` as for ``remaining``."""
    profile = get_profile(profile).name
    if seconds is None:
        seconds = recorded_seconds(profile)
    missing, hours = remaining(profile, plans, seconds)
    return {"grid_runs": f"{len(seconds):,}", "grid_hours": f"{sum(seconds) / 3600:.1f}",
            "grid_minutes_per_run": (f"{sum(seconds) / len(seconds) / 60:.0f}" if seconds
                                     else "unknown"),
            "grid_missing": f"{len(missing):,}",
            "grid_hours_left": f"{hours:.1f}" if hours is not None else "unknown"}


CHAPTERS = {  # chapter notebook -> the schedule steps its page needs, every seed of each
    "01_baseline": lambda profile: catalog.baselines(profile),
    "02_label_noise": lambda profile: catalog.baselines(profile)
    + [catalog.label_noise(r, profile, seed) for r in NOISE_RATES for seed in BASELINE_SEEDS],
    "03_augmentation": lambda profile: catalog.baselines(profile)
    + [make(profile, seed) for seed in BASELINE_SEEDS
       for make in catalog.AUGMENTATIONS],
    "04_more_cats_and_dogs": lambda profile: catalog.baselines(profile)
    + [catalog.more_cats_and_dogs(profile, seed) for seed in BASELINE_SEEDS],
    "05_more_data": lambda profile: catalog.baselines(profile)
    + [catalog.more_data(f, profile, seed) for f in catalog.POOL_FRACTIONS if f != 0.5
       for seed in BASELINE_SEEDS],
    "06_confident_learning": lambda profile: [("confident_learning", s.name)
                                              for s in confident.SETTINGS]
    + _other_detectors(profile),
    "07_test_set_audit": lambda profile: [("test_set_audit",)],
    "08_deployment_shift": lambda profile: catalog.shift_grid(profile),
    "09_dataset_audit": lambda profile: [("dataset_audit",)]
    + [("deduplicated", s) for s in BASELINE_SEEDS],
}


def chapter_progress(chapter: str, profile: str | None = None) -> tuple[int, int]:
    """(recorded, needed) records of ``profile`` for the page of ``chapter`` (a CHAPTERS key)."""
    if chapter not in CHAPTERS:
        raise ValueError(f"unknown chapter {chapter!r}: choose from {', '.join(CHAPTERS)}")
    runs = dict(run for step in CHAPTERS[chapter](profile) for run in planned_runs(step, profile))
    return sum(runs.values()), len(runs)


def page_recipe(notebook) -> str:
    """The recipe named by the provenance note of an executed notebook (``report.provenance_note``
    writes "Recipe: `NAME`"), "several" when its notes name more than one, "" when none."""
    import re

    names = set()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/markdown", ""))
            names.update(re.findall(r"Recipe: `([^`]+)`", text))
    return names.pop() if len(names) == 1 else ("several" if names else "")


def chapter_status(profile: str = "full"):
    """One row per chapter (a DataFrame): which profile its committed page was executed with
    (papermill records the parameters in the notebook), which recipe its records have
    (``page_recipe``), and how many of the records it needs exist in ``profile`` with the
    book's recipe."""
    import nbformat
    import pandas as pd

    from helpers.run import NOTEBOOK_DIR

    rows = {}
    for chapter in CHAPTERS:
        notebook = nbformat.read(NOTEBOOK_DIR / f"{chapter}.ipynb", as_version=4)
        shown = notebook.metadata.get("papermill", {}).get("parameters", {}).get("profile", "")
        recorded, needed = chapter_progress(chapter, profile)
        rows[chapter] = {"page executed with": shown or "not executed",
                         "recipe on the page": page_recipe(notebook),
                         f"{profile} records needed": needed,
                         "recorded": recorded, "missing": needed - recorded}
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv=None) -> int:
    """``python -m helpers.scheduler [--profile P] [--list]``: train (or read) every run of every
    chapter, most telling first (see ``schedule``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.scheduler", description=main.__doc__)
    parser.add_argument("--profile", help="smoke, quick or full (default: $DCAI_PROFILE or full)")
    parser.add_argument("--list", action="store_true", help="print the schedule, train nothing")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile).name
    except ValueError as error:
        parser.error(str(error))
    steps = schedule(profile)
    plans = [planned_runs(step, profile) for step in steps]
    cost = grid_cost(profile, plans)
    estimate = (f"about {cost['grid_hours_left']} hours at the recorded runs' mean"
                if cost["grid_hours_left"] != "unknown"
                else "no recorded run of this recipe to estimate the time from yet")
    print(f"{cost['grid_missing']} records of {profile} not made yet ({estimate}); the "
          f"{len(steps)} steps below include analyses that train runs of their own.", flush=True)
    if cost["grid_runs"] != "0":
        print(f"Made so far with the book's recipe: {cost['grid_runs']} runs in "
              f"{cost['grid_hours']} hours, {cost['grid_minutes_per_run']} minutes per run on "
              "average.", flush=True)
    for n, step in enumerate(steps, 1):
        # listing: the records as they were looked up above; training changes them as it goes
        runs = plans[n - 1] if args.list else None
        print(f"[{n}/{len(steps)}] {describe(step, profile, runs)}", flush=True)
        if not args.list:
            run_step(step, profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

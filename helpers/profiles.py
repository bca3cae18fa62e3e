"""Profiles: the only place where sizes and epochs differ between a test run and the article.

``smoke`` is for tests (seconds), ``quick`` is sized for a 2-core CPU (minutes per run) and
``full`` is the article's protocol. A profile changes numbers, never code paths.
"""

from __future__ import annotations

import dataclasses
import os

FULL_POOL_SIZE = 40_000  # the 50,000 CIFAR-10 training images minus 10,000 for validation
FULL_VAL_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    pool_size: int  # images of the 40K pool this profile uses (stratified, nested)
    val_size: int  # validation images (stratified subset of the 10K held out)
    test_size: int  # test images (10_000 = the whole CIFAR-10 test set)
    max_epochs: int
    batch_size: int = 180
    learning_rate: float = 1e-4
    early_stopping_patience: int = 5
    lr_plateau_patience: int = 2
    lr_plateau_factor: float = 0.1
    image_size: int = 32

    @property
    def scale(self) -> float:
        """How much smaller this profile's pool is than the article's 40K pool."""
        return self.pool_size / FULL_POOL_SIZE

    def scaled(self, article_count: int) -> int:
        """An article count (e.g. 1,000 extra cats) scaled to this profile's pool size."""
        return max(1, round(article_count * self.scale))


PROFILES = {
    "smoke": Profile("smoke", pool_size=400, val_size=200, test_size=200, max_epochs=1,
                     batch_size=50),
    # quick uses batch 32, not 180: with a few thousand images, batch 180 gives too few steps
    # for batch-norm's slow moving statistics (momentum 0.999) to follow the weights, and
    # validation accuracy stays far below training accuracy (measured: 28% vs 36% test).
    "quick": Profile("quick", pool_size=4_000, val_size=1_000, test_size=10_000, max_epochs=8,
                     batch_size=32),
    "full": Profile("full", pool_size=FULL_POOL_SIZE, val_size=FULL_VAL_SIZE, test_size=10_000,
                    max_epochs=100),
}

DEFAULT_PROFILE = "full"

# Test images scored on each of the 50 shifted test sets when a run is recorded
# (``helpers.corruptions.score_shifted``: a fixed stratified subset). Inference only, so not part of
# the Profile (whose numbers are in every record key). Full: 2,000 images per set keep the
# scoring under a tenth of a run's wall time (measured in the deployment-shift chapter).
SHIFT_SCORING_IMAGES = {"smoke": 50, "quick": 1000, "full": 2000}

# Confident learning (``helpers.confident``): the fold runs that give the out-of-fold
# probabilities (once per noise setting) and the training seeds of the noisy run and of every
# repair. Smoke trims both so the chapter fits in CI; the code path is the same.
CL_FOLDS = {"smoke": 2, "quick": 4, "full": 4}
CL_SEEDS = {"smoke": (0, 1), "quick": (0, 1, 2), "full": (0, 1, 2)}


ONLY_PROFILE_VARIABLE = "DCAI_ONLY_PROFILE"


class ProfileNotAllowedError(ValueError):
    """A profile other than ``$DCAI_ONLY_PROFILE`` was asked for (``make test`` sets it to
    ``smoke``, so a notebook test cannot read or train records of another profile)."""


def only_profile() -> str | None:
    """The one profile this process may use (``$DCAI_ONLY_PROFILE``), or None: no restriction."""
    return os.environ.get(ONLY_PROFILE_VARIABLE, "").strip() or None


def check_allowed(name: str, context: str | None = None) -> None:
    """Raise ProfileNotAllowedError when ``$DCAI_ONLY_PROFILE`` is set and ``name`` differs.

    ``context`` says what asked for it (e.g. ``"record /path/full/baseline-…"``), for the
    message."""
    only = only_profile()
    if only is not None and name != only:
        prefix = f"{context}: " if context else ""
        raise ProfileNotAllowedError(
            f"{prefix}profile {name!r} is not allowed here: {ONLY_PROFILE_VARIABLE}={only} "
            f"restricts this process to the {only!r} profile (`make test` sets it, so that notebook tests run "
            f"exactly the profile the environment asks for). Read the profile from DCAI_PROFILE "
            f"(e.g. `profile = os.environ.get('DCAI_PROFILE', 'full')`) instead of naming "
            f"{name!r}, or unset {ONLY_PROFILE_VARIABLE}."
        )


def get_profile(name: str | Profile | None = None) -> Profile:
    """Look a profile up by name; ``None`` means ``$DCAI_PROFILE`` or ``full``.

    Raises ValueError for an unknown name, and ProfileNotAllowedError (a ValueError) when
    ``$DCAI_ONLY_PROFILE`` is set to another profile."""
    if isinstance(name, Profile):
        check_allowed(name.name)
        return name
    if name is None:
        name = os.environ.get("DCAI_PROFILE") or DEFAULT_PROFILE
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}: use one of {', '.join(PROFILES)} "
            "(argument `profile=` or environment variable DCAI_PROFILE)"
        ) from None
    check_allowed(profile.name)
    return profile

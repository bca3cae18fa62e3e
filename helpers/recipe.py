"""The training recipe's versions: how the frozen model's batch-norm layers behave in training.

The article fixes the optimiser and the schedule (Adam 1e-4, early stopping on val_loss with
patience 5 and best weights, plateau patience 2, batch 180, <= 100 epochs; see
``helpers.profiles``). What it leaves open is how MobileNetV2's batch-norm layers train. With
Keras's default momentum of 0.999 their moving statistics average over ~1,000 steps (about 9
epochs of 112 steps at 20K images), so in the first epochs validation, which runs with those
statistics, trails the weights; ReduceLROnPlateau reads the lag as a plateau and cuts the
learning rate at epoch 4-8 in many runs ("the collapse", shown in *Experimental setup*).

Each recipe is one named, versioned answer to that question. Its name and settings are part
of every experiment's key, so records of different recipes are never mixed. This module
never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os

LEGACY = "v1-bn0.999"  # the recipe of every record made before recipes had names


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the backbone's batch-norm layers train.

    ``bn_momentum``: the momentum of every backbone BatchNormalization layer while it trains
    (None: as built, 0.999). ``bn_frozen``: batch-norm layers run in inference mode with their
    pretrained statistics, and their scale/offset are not trained (Keras's fine-tuning advice;
    2,202,570 trainable parameters instead of 2,236,682). ``reset_bn_stats``: a probe only:
    moving means set to 0 and variances to 1 before training, to ask whether a recipe depends
    on where the pretrained statistics came from.
    """

    name: str
    bn_momentum: float | None = None
    bn_frozen: bool = False
    reset_bn_stats: bool = False
    description: str = ""


# Every field of a recipe, its description included, is hashed into the keys of the records
# made with it (``Experiment.key``): editing any of them orphans those records. Add a new
# recipe instead (tests/test_registry.py checks the committed keys).
RECIPES = {
    LEGACY: Recipe(LEGACY, description="Keras defaults: backbone batch-norm momentum 0.999"),
    "v2-bn0.99": Recipe("v2-bn0.99", bn_momentum=0.99,
                        description="backbone batch-norm momentum 0.99 (statistics follow the "
                                    "weights within about one epoch)"),
    "v2-frozen-bn": Recipe("v2-frozen-bn", bn_frozen=True,
                           description="backbone batch-norm layers frozen in inference mode "
                                       "with their pretrained statistics"),
    # probes for the seed study: the same recipes with the pretrained statistics thrown away
    "probe-bn0.99-reset": Recipe("probe-bn0.99-reset", bn_momentum=0.99, reset_bn_stats=True,
                                 description="momentum 0.99, statistics reset to 0/1 first"),
    "probe-frozen-bn-reset": Recipe("probe-frozen-bn-reset", bn_frozen=True,
                                    reset_bn_stats=True,
                                    description="frozen batch-norm, statistics reset to 0/1 "
                                                "first"),
}

CURRENT = "v2-bn0.99"  # chosen by the seed study in "Experimental setup"
STUDY = (LEGACY, "v2-bn0.99", "v2-frozen-bn")  # the recipes compared over seeds
PROBES = ("probe-bn0.99-reset", "probe-frozen-bn-reset")


def get_recipe(name: str | Recipe | None = None) -> Recipe:
    """A recipe by name; ``None`` means ``$DCAI_RECIPE`` or ``CURRENT``.

    Raises ValueError naming the known recipes for an unknown name."""
    if isinstance(name, Recipe):
        return name
    if name is None:
        name = os.environ.get("DCAI_RECIPE") or CURRENT
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"unknown recipe {name!r}: use one of {', '.join(RECIPES)} "
            "(argument `recipe=` or environment variable DCAI_RECIPE)") from None

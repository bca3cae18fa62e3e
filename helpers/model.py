"""The frozen model: ImageNet-pretrained MobileNetV2 (alpha 1.0, no top, average pooling)
plus a 10-way softmax head, with preprocessing (and optional augmentation) inside the model.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from helpers import NUM_CLASSES, sources
from helpers.recipe import Recipe, get_recipe

EXPECTED_TRAINABLE_PARAMS = 2_236_682  # the article's "about 2.2M"
FROZEN_BN_TRAINABLE_PARAMS = 2_202_570  # the same, with batch-norm scale/offset frozen


class WeightsUnavailableError(RuntimeError):
    """The requested pretrained weights cannot be loaded."""


def augmentation_block(seed: int | None = None) -> keras.Sequential:
    """Random flip, rotation, zoom, translation and contrast; active only while training."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.1, seed=seed),
            layers.RandomZoom(0.1, seed=seed),
            layers.RandomTranslation(0.1, 0.1, seed=seed),
            layers.RandomContrast(0.1, seed=seed),
        ],
        name="augmentation",
    )


def _backbone(input_size: int, weights: str) -> keras.Model:
    shape = (input_size, input_size, 3)
    if weights == "imagenet":
        if sources.offline():
            raise WeightsUnavailableError(
                "weights='imagenet' needs a download, but DCAI_OFFLINE=1 is set. Offline, set "
                "DCAI_WEIGHTS=/path/to/shared/" + sources.SHARED_WEIGHTS_FILE
            )
        try:
            return keras.applications.MobileNetV2(
                input_shape=shape, alpha=1.0, include_top=False, pooling="avg",
                weights="imagenet")
        except Exception as error:  # download failures surface as several exception types
            raise WeightsUnavailableError(
                f"could not download the ImageNet weights ({type(error).__name__}: {error}). "
                "Offline, set DCAI_WEIGHTS=/path/to/shared/" + sources.SHARED_WEIGHTS_FILE
            ) from error
    if weights in (None, "none", "None"):
        raise WeightsUnavailableError(
            "training from scratch (weights=None) is not supported: MobileNetV2's batch-norm "
            "statistics lag its weights and validation stays at chance. Use weights='imagenet' "
            "or set DCAI_WEIGHTS to a weights file"
        )
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights file {weights!r} does not exist: set DCAI_WEIGHTS to an existing "
            "MobileNetV2(alpha=1.0, include_top=False) .weights.h5 file, or to 'imagenet'"
        )
    backbone = keras.applications.MobileNetV2(
        input_shape=shape, alpha=1.0, include_top=False, pooling="avg", weights=None)
    try:
        backbone.load_weights(str(path))
    except Exception as error:
        raise WeightsUnavailableError(
            f"weights file {weights!r} does not fit MobileNetV2(alpha=1.0, include_top=False) "
            f"({type(error).__name__}: {error}). Set DCAI_WEIGHTS to the right file"
        ) from error
    return backbone


def apply_recipe(backbone: keras.Model, recipe: Recipe) -> None:
    """Set the backbone's batch-norm layers up as ``recipe`` says (see ``helpers.recipe``)."""
    for layer in backbone.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        if recipe.reset_bn_stats:
            layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(keras.ops.ones_like(layer.moving_variance))
        if recipe.bn_momentum is not None:
            layer.momentum = recipe.bn_momentum
        if recipe.bn_frozen:
            layer.trainable = False  # Keras 3: a frozen BatchNormalization runs in inference mode


def build_model(input_size: int = 32, weights: str | None = "default", augment: bool = False,
                learning_rate: float = 1e-4, seed: int | None = None,
                recipe: str | Recipe | None = None) -> keras.Model:
    """The compiled frozen model. ``weights='default'`` means ``helpers.sources.weights_setting()``;
    ``recipe`` (default: ``helpers.recipe.CURRENT``) sets how the batch-norm layers train.

    Images enter as 0..255 values (shape ``(n, 32, 32, 3)``); the model scales them to
    MobileNetV2's [-1, 1] itself, and resizes them when ``input_size`` is not 32. Raises
    WeightsUnavailableError when the weights cannot be loaded, with the fix in the message.
    """
    recipe = get_recipe(recipe)
    if weights == "default":
        weights = sources.weights_setting()
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = inputs
    if augment:
        x = augmentation_block(seed)(x)
    if input_size != 32:
        x = layers.Resizing(input_size, input_size, name="resize")(x)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="mobilenet_v2_preprocess")(x)
    backbone = _backbone(input_size, weights)
    apply_recipe(backbone, recipe)
    x = backbone(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name="mobilenet_v2_cifar10")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # XLA compiles slowly and measured slower on the CPUs here
    )
    return model


def trainable_params(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))

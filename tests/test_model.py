import keras
import numpy as np
import pytest

from helpers import model, sources


@pytest.fixture(scope="module")
def weights_file():
    path = sources.weights_setting()
    if path == "imagenet":
        pytest.skip("needs the offline weights file: set DCAI_SHARED or DCAI_WEIGHTS")
    return path


def test_trainable_params_match_the_article(weights_file):
    m = model.build_model(weights=weights_file)
    assert model.trainable_params(m) == model.EXPECTED_TRAINABLE_PARAMS == 2_236_682
    assert m.output_shape == (None, 10)
    assert m.get_layer("classifier").activation.__name__ == "softmax"


def test_preprocessing_and_augmentation_live_in_the_model(weights_file):
    plain = model.build_model(weights=weights_file)
    augmented = model.build_model(weights=weights_file, augment=True, seed=0)
    assert "augmentation" not in [layer.name for layer in plain.layers]
    block = augmented.get_layer("augmentation")
    kinds = {type(layer).__name__ for layer in block.layers}
    assert kinds == {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                     "RandomContrast"}
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    # inference ignores augmentation: both models share the backbone weights file
    augmented.get_layer("classifier").set_weights(plain.get_layer("classifier").get_weights())
    assert np.allclose(plain.predict(x, verbose=0), augmented.predict(x, verbose=0), atol=1e-5)


def test_other_input_size(weights_file):
    m = model.build_model(input_size=64, weights=weights_file)
    assert m.get_layer("resize") is not None
    assert model.trainable_params(m) == 2_236_682


def test_missing_weights_file_names_the_env_var(tmp_path):
    with pytest.raises(model.WeightsUnavailableError, match="DCAI_WEIGHTS"):
        model.build_model(weights=str(tmp_path / "nope.weights.h5"))


# Keras warns once per layer group that a mismatched file cannot fill (about a hundred lines);
# the mismatch is this test's point, and the error it must raise is asserted below.
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_wrong_weights_file_names_the_fix(tmp_path):
    small = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                           include_top=False, weights=None)
    path = tmp_path / "small.weights.h5"
    small.save_weights(str(path))
    with pytest.raises(model.WeightsUnavailableError, match="does not fit"):
        model.build_model(weights=str(path))


def test_imagenet_offline_is_a_clear_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv("DCAI_OFFLINE", "1")
    with pytest.raises(model.WeightsUnavailableError, match="DCAI_WEIGHTS="):
        model.build_model(weights="imagenet")


def test_from_scratch_is_refused():
    with pytest.raises(model.WeightsUnavailableError, match="from scratch"):
        model.build_model(weights=None)

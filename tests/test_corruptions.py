"""Shifted test sets: deterministic CIFAR-10-C-style corruptions, their cache, scoring and the
augmentation that mimics one family. Small synthetic images; one test reads real CIFAR-10."""

import hashlib
import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from helpers import corruptions as shift

RANDOM = ("snow", "frost", "fog", "motion_blur", "gaussian_noise")  # draw random numbers
FIXED = tuple(c for c in shift.CORRUPTIONS if c not in RANDOM)  # same result for every seed


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """Photo-like uint8 images (n, 32, 32, 3): smooth colour fields, an edge, a little grain."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 220, size=(n, 4, 4, 3))
    smooth = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    kernel = np.ones(5) / 5
    for axis in (1, 2):
        smooth = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, smooth)
    smooth[:, 12:20, 6:26] = rng.uniform(0, 255, size=(n, 1, 1, 3))  # an object with edges
    grain = rng.normal(0, 6, size=smooth.shape)
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    return synthetic(12)


def _reference_module():
    """imagecorruptions' own helpers (ImageNet-C's packaged code), to check ours against."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import imagecorruptions.corruptions as reference
        except ImportError as error:  # e.g. no pkg_resources on a bare Python >= 3.12
            pytest.skip(f"imagecorruptions' reference helpers do not import here: {error}")
    return reference


# --- what exists ---------------------------------------------------------------------------


def test_ten_corruptions_in_four_families_with_five_severities_each():
    assert len(shift.CORRUPTIONS) == len(set(shift.CORRUPTIONS)) == 10
    assert shift.SEVERITIES == (1, 2, 3, 4, 5)
    members = [c for names in shift.FAMILIES.values() for c in names]
    assert sorted(members) == sorted(shift.CORRUPTIONS)
    assert shift.FAMILIES["weather"] == ("snow", "frost", "fog")
    assert set(shift.FAMILIES) == {"weather", "blur", "noise", "digital"}
    assert all(len(shift.PARAMETERS[c]) == 5 for c in shift.CORRUPTIONS)
    assert shift.tfds_name("snow", 5) == "cifar10_corrupted/snow_5"


def test_frost_photographs_ship_with_imagecorruptions():
    textures = shift._frost_textures()
    assert len(textures) == 5
    for texture in textures:
        assert texture.dtype == np.uint8 and texture.ndim == 3 and texture.shape[2] == 3
        assert min(texture.shape[:2]) > 32


# --- corrupt --------------------------------------------------------------------------------


@pytest.mark.parametrize("corruption", shift.CORRUPTIONS)
def test_same_seed_same_bytes_shape_and_dtype_kept_input_untouched(images, corruption):
    before = images.copy()
    for severity in (1, 5):
        first = shift.corrupt(images, corruption, severity, seed=3)
        second = shift.corrupt(images, corruption, severity, seed=3)
        assert first.dtype == np.uint8 and first.shape == images.shape
        assert first.tobytes() == second.tobytes()
    assert np.array_equal(images, before)


@pytest.mark.parametrize("corruption", RANDOM)
def test_another_seed_gives_other_pixels_where_the_corruption_is_random(images, corruption):
    assert not np.array_equal(shift.corrupt(images, corruption, 3, seed=0),
                              shift.corrupt(images, corruption, 3, seed=1))


@pytest.mark.parametrize("corruption", FIXED)
def test_deterministic_corruptions_ignore_the_seed(images, corruption):
    assert np.array_equal(shift.corrupt(images, corruption, 3, seed=0),
                          shift.corrupt(images, corruption, 3, seed=1))


@pytest.mark.parametrize("corruption", shift.CORRUPTIONS)
def test_severity_5_changes_the_images_more_than_severity_1(images, corruption):
    change = {s: np.abs(shift.corrupt(images, corruption, s).astype(int) - images).mean()
              for s in (1, 5)}
    assert change[5] > change[1] > 0


def test_severity_grows_change_almost_everywhere(images):
    """Mean absolute change per severity: non-decreasing for most corruptions (frost's image
    weight and crop make it noisy), and up from 1 to 5 for all."""
    monotone = 0
    for corruption in shift.CORRUPTIONS:
        change = [np.abs(shift.corrupt(images, corruption, s).astype(int) - images).mean()
                  for s in shift.SEVERITIES]
        monotone += all(b >= a - 0.5 for a, b in zip(change, change[1:]))
    assert monotone >= 8


@pytest.mark.parametrize("corruption", RANDOM)
def test_an_image_is_corrupted_the_same_whatever_follows_it(monkeypatch, corruption):
    """Draws depend on (seed, corruption, severity, position) only, across chunk borders too."""
    monkeypatch.setattr(shift, "CHUNK", 4)
    batch = synthetic(10, seed=5)
    whole = shift.corrupt(batch, corruption, 4, seed=2)
    assert np.array_equal(shift.corrupt(batch[:6], corruption, 4, seed=2), whole[:6])
    assert np.array_equal(shift.corrupt(batch[:3], corruption, 4, seed=2), whole[:3])


def test_an_empty_batch_comes_back_empty():
    empty = np.zeros((0, 32, 32, 3), dtype=np.uint8)
    for corruption in shift.CORRUPTIONS:
        assert shift.corrupt(empty, corruption, 2).shape == (0, 32, 32, 3)


@pytest.mark.parametrize("bad, error, words", [
    ({"corruption": "blizzard"}, ValueError, ["'blizzard'", "snow", "pixelate"]),
    ({"severity": 0}, ValueError, ["severity", "(1, 2, 3, 4, 5)"]),
    ({"severity": 6}, ValueError, ["severity"]),
    ({"severity": 2.0}, ValueError, ["severity"]),
    ({"severity": True}, ValueError, ["severity"]),
    ({"seed": -1}, ValueError, ["seed"]),
    ({"seed": 1.5}, ValueError, ["seed"]),
    ({"images": [[0]]}, TypeError, ["numpy array"]),
    ({"images": np.zeros((2, 32, 32, 3), dtype=np.float32)}, TypeError, ["uint8", "float32"]),
    ({"images": np.zeros((32, 32, 3), dtype=np.uint8)}, ValueError, ["(n, 32, 32, 3)"]),
    ({"images": np.zeros((2, 28, 28, 3), dtype=np.uint8)}, ValueError, ["(2, 28, 28, 3)"]),
    ({"images": np.zeros((2, 32, 32, 1), dtype=np.uint8)}, ValueError, ["(n, 32, 32, 3)"]),
])
def test_bad_arguments_raise_errors_that_name_the_valid_choices(images, bad, error, words):
    arguments = {"images": images[:2], "corruption": "snow", "severity": 1, "seed": 0} | bad
    with pytest.raises(error) as raised:
        shift.corrupt(**arguments)
    for word in words:
        assert word in str(raised.value)


def test_the_same_bytes_in_fresh_processes(images):
    """Two new interpreters produce exactly what this one does, for every corruption."""
    script = (
        "import hashlib, sys, numpy as np\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.test_corruptions import synthetic\n"
        "from helpers import corruptions as shift\n"
        "x = synthetic(12)\n"
        "h = hashlib.sha256()\n"
        "for c in shift.CORRUPTIONS:\n"
        "    h.update(shift.corrupt(x, c, 3, seed=7).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    here = hashlib.sha256()
    for corruption in shift.CORRUPTIONS:
        here.update(shift.corrupt(images, corruption, 3, seed=7).tobytes())
    digests = [subprocess.run([sys.executable, "-c", script, root], capture_output=True,
                              text=True, check=True, cwd=root).stdout.strip() for _ in range(2)]
    assert digests == [here.hexdigest()] * 2


# --- the batched helpers against imagecorruptions' reference ones -----------------------------


def test_batched_motion_blur_matches_imagecorruptions(images):
    reference = _reference_module()
    angles = np.random.default_rng(0).uniform(-135, 45, size=len(images))
    for radius, sigma in ((6, 1), (9, 2.5), (14, 12)):
        ours = shift._motion_blur(images.astype(np.float64), radius, sigma, angles)
        theirs = np.stack([reference._motion_blur(image, radius, sigma, angle)
                           for image, angle in zip(images, angles)])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_defocus_kernel_is_imagecorruptions_disk_cropped_to_its_support():
    reference = _reference_module()
    for radius, alias_blur in shift.PARAMETERS["defocus_blur"]:
        ours = shift._disk(radius, alias_blur)
        half = ours.shape[0] // 2
        full = reference.disk(radius, alias_blur)
        assert np.array_equal(full[8 - half:9 + half, 8 - half:9 + half], ours)
        assert full.sum() == pytest.approx(ours.sum(), abs=1e-7)


def test_batched_zoom_matches_cifar10c_clipped_zoom():
    reference = _reference_module()
    layers = np.random.default_rng(1).normal(size=(3, 32, 32))
    for zoom in (1, 1.25, 1.75, 2.25):
        theirs = np.stack([reference.clipped_zoom(layer[..., None], zoom)[..., 0]
                           for layer in layers])
        trim = (theirs.shape[1] - 32) // 2  # make_cifar_c.py trims the centre, as ours
        np.testing.assert_array_equal(shift._clipped_zoom(layers, zoom),
                                      theirs[:, trim:trim + 32, trim:trim + 32])


def test_batched_plasma_fractal_matches_the_reference_given_the_same_draws(monkeypatch):
    reference = _reference_module()
    monkeypatch.setattr(np, "float_", np.float64, raising=False)  # removed in numpy 2
    for decay in (3, 1.75):
        np.random.seed(5)
        theirs = reference.plasma_fractal(32, decay)
        np.random.seed(5)
        uniforms = np.random.random_sample(shift.PLASMA_DRAWS) * 2 - 1
        np.testing.assert_allclose(shift._plasma_fractal(uniforms[None], decay)[0], theirs,
                                   rtol=0, atol=1e-12)


def test_jpeg_is_what_pillow_writes_as_in_make_cifar_c(images):
    from PIL import Image

    for severity, quality in enumerate(shift.PARAMETERS["jpeg_compression"], start=1):
        ours = shift.corrupt(images, "jpeg_compression", severity)
        for image, mine in zip(images, ours):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
            assert np.array_equal(np.asarray(Image.open(buffer).convert("RGB")), mine)


def test_brightness_closed_form_is_the_hsv_round_trip():
    from skimage.color import hsv2rgb, rgb2hsv

    batch = np.concatenate([synthetic(6), np.zeros((1, 32, 32, 3), dtype=np.uint8)])
    for severity, c in enumerate(shift.PARAMETERS["brightness"], start=1):
        hsv = rgb2hsv(batch / 255.0)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        theirs = (np.clip(hsv2rgb(hsv), 0, 1) * 255).astype(int)
        difference = shift.corrupt(batch, "brightness", severity).astype(int) - theirs
        assert np.abs(difference).max() <= 1 and (difference != 0).mean() < 0.05


# --- cache, subset, scoring ------------------------------------------------------------------


def test_shifted_sets_are_cached_per_process_and_read_only(images):
    shift.clear_cache()
    first = shift.shifted_test_set(images, "fog", 2, seed=1)
    assert shift.shifted_test_set(images.copy(), "fog", 2, seed=1) is first  # by content
    assert np.array_equal(first, shift.corrupt(images, "fog", 2, seed=1))
    assert not first.flags.writeable
    assert shift.shifted_test_set(images, "fog", 2, seed=2) is not first
    shift.clear_cache()
    assert shift.shifted_test_set(images, "fog", 2, seed=1) is not first


def test_the_cache_drops_the_oldest_sets_beyond_its_budget(images, monkeypatch):
    shift.clear_cache()
    monkeypatch.setattr(shift, "CACHE_BYTES", 2 * images.nbytes)
    for severity in shift.SEVERITIES:
        shift.shifted_test_set(images, "contrast", severity)
    assert len(shift._cache) == 2
    shift.clear_cache()


def test_stratified_subset_is_fixed_balanced_and_sorted():
    labels = np.repeat(np.arange(10), 50)[np.random.default_rng(0).permutation(500)]
    chosen = shift.stratified_subset(labels, 100)
    assert len(chosen) == 100 and np.all(np.diff(chosen) > 0)
    assert np.array_equal(np.bincount(labels[chosen], minlength=10), [10] * 10)
    assert np.array_equal(chosen, shift.stratified_subset(labels, 100))
    assert np.array_equal(shift.stratified_subset(labels, None), np.arange(500))
    assert np.array_equal(shift.stratified_subset(labels, 900), np.arange(500))
    odd = shift.stratified_subset(np.array([0] * 70 + [1] * 30), 11)
    assert len(odd) == 11 and np.bincount(np.array([0] * 70 + [1] * 30)[odd]).tolist() == [8, 3]
    with pytest.raises(ValueError, match="subset"):
        shift.stratified_subset(labels, 0)


def _scoring_data(n=60):
    labels = np.tile(np.arange(10), n // 10)
    return synthetic(n, seed=9), labels


def test_an_oracle_scores_one_and_a_constant_predictor_a_tenth_everywhere():
    images, labels = _scoring_data()
    expected = labels[shift.stratified_subset(labels, 30)]
    # one call on all 50 sets, concatenated in order: the oracle repeats the labels per set
    oracle = shift.score_shifted(lambda x: np.eye(10)[np.tile(expected, len(x) // 30)], images,
                                 labels, subset=30)
    assert oracle["images_per_set"] == 30
    assert oracle["corruption_accuracy"] == 1.0 and oracle["corruption_macro_f1"] == 1.0
    assert list(oracle["per_corruption"]) == list(shift.CORRUPTIONS)
    for by_severity in oracle["per_corruption"].values():
        assert list(by_severity) == ["1", "2", "3", "4", "5"]
        assert all(cell["accuracy"] == 1.0 and cell["macro_f1"] == 1.0
                   for cell in by_severity.values())
        assert all(np.trace(cell["confusion_matrix"]) == 30 for cell in by_severity.values())
    assert set(oracle["seconds"]) == {"generate", "predict"}
    assert all(isinstance(s, float) and s >= 0 for s in oracle["seconds"].values())
    json.dumps(oracle)  # a record can store it as it is

    constant = shift.score_shifted(lambda x: np.full((len(x), 10), 0.1), images, labels,
                                   corruptions=("snow", "pixelate"), severities=(1, 5),
                                   subset=None)
    assert constant["images_per_set"] == 60
    assert constant["corruption_accuracy"] == pytest.approx(0.1)
    assert set(constant["per_corruption"]) == {"snow", "pixelate"}
    assert set(constant["per_corruption"]["snow"]) == {"1", "5"}


def test_scoring_sees_the_shifted_images_and_reuses_the_cache():
    images, labels = _scoring_data()
    seen = []
    shift.clear_cache()
    shift.score_shifted(lambda x: seen.append(x) or np.zeros((len(x), 10)), images, labels,
                        corruptions=("gaussian_noise",), severities=(2,), subset=20, seed=4)
    chosen = shift.stratified_subset(labels, 20)
    assert np.array_equal(seen[0], shift.corrupt(images[chosen], "gaussian_noise", 2, seed=4))
    again = shift.score_shifted(lambda x: np.zeros((len(x), 10)), images, labels,
                                corruptions=("gaussian_noise",), severities=(2,), subset=20,
                                seed=4)
    assert again["seconds"]["generate"] < 0.05  # cached
    shift.clear_cache()


def test_scoring_rejects_bad_predictions_labels_and_choices():
    images, labels = _scoring_data(20)
    with pytest.raises(ValueError, match="predict_proba"):
        shift.score_shifted(lambda x: np.zeros(len(x)), images, labels, corruptions=("fog",),
                            severities=(1,))
    with pytest.raises(ValueError, match="labels"):
        shift.score_shifted(lambda x: np.zeros((len(x), 10)), images, labels[:5])
    with pytest.raises(ValueError, match="snow"):
        shift.score_shifted(lambda x: np.zeros((len(x), 10)), images, labels,
                            corruptions=("rain",))
    with pytest.raises(ValueError, match="severity"):
        shift.score_shifted(lambda x: np.zeros((len(x), 10)), images, labels, severities=(7,))
    with pytest.raises(ValueError, match="empty"):
        shift.score_shifted(lambda x: np.zeros((len(x), 10)), images, labels, corruptions=())


# --- the augmentation that mimics a family ---------------------------------------------------


def test_mimic_augmentation_corrupts_a_share_of_the_batch_reproducibly():
    batch = synthetic(40, seed=3)
    augment = shift.mimic_augmentation("weather", seed=0, probability=0.5)
    out = augment(batch, seed=11)
    assert out.dtype == np.uint8 and out.shape == batch.shape
    assert np.array_equal(out, augment(batch, seed=11))
    changed = (out != batch).any(axis=(1, 2, 3))
    assert 5 < changed.sum() < 35
    first, second = augment(batch), augment(batch)  # the transform's own generator moves on
    assert not np.array_equal(first, second)
    again = shift.mimic_augmentation("weather", seed=0, probability=0.5)
    assert np.array_equal(again(batch), first) and np.array_equal(again(batch), second)


def test_mimic_augmentation_draws_only_from_its_family():
    batch = synthetic(30, seed=4)
    out = shift.mimic_augmentation("digital", seed=1, probability=1.0)(batch, seed=5)
    candidates = [shift.corrupt(batch, c, s, seed=0) for c in shift.FAMILIES["digital"]
                  for s in shift.SEVERITIES]  # the digital family draws no random numbers
    for i in range(len(batch)):
        assert any(np.array_equal(out[i], candidate[i]) for candidate in candidates)
    assert np.array_equal(shift.mimic_augmentation("weather", probability=0.0)(batch), batch)


def test_mimic_augmentation_rejects_unknown_families_and_probabilities():
    with pytest.raises(ValueError, match="weather"):
        shift.mimic_augmentation("rain")
    with pytest.raises(ValueError, match="probability"):
        shift.mimic_augmentation(probability=1.5)
    with pytest.raises(TypeError):
        shift.mimic_augmentation()(np.zeros((2, 32, 32, 3), dtype=np.float32))


def test_mimic_augmentation_runs_inside_tf_data_through_numpy_function():
    tf = pytest.importorskip("tensorflow")
    augment = shift.mimic_augmentation("weather", seed=0, probability=1.0)

    def augment_batch(x):
        out = tf.numpy_function(augment, [x], tf.uint8)
        out.set_shape(x.shape)
        return out

    batch = synthetic(8, seed=6)
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(4).map(augment_batch)
    out = np.concatenate([b.numpy() for b in dataset])
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert (out != batch).any(axis=(1, 2, 3)).all()


# --- the figure and real images --------------------------------------------------------------


def test_corruption_grid_labels_rows_by_corruption_and_columns_by_severity(images):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import plots

    fig = plots.corruption_grid(images[:3], ["snow", "motion_blur"], [1, 5], seed=0)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["snow", "motion blur"]
    assert [ax.get_title() for ax in axes[0]] == ["clean", "severity 1", "severity 5"]
    shown = axes[1, 2].get_images()[0].get_array()
    assert np.array_equal(shown[:, :32], shift.corrupt(images[:3], "motion_blur", 5)[0])
    plt.close(fig)


@pytest.mark.needs_data
def test_on_real_test_images_every_corruption_grows_with_severity():
    """Mean absolute pixel change on 200 CIFAR-10 test images: up from severity 1 to 3 to 5,
    except frost, whose severity 3 brightens more than 5 (image weight 0.9 + frost 0.4 clips
    to white more often than 0.75 + 0.45) while its frost covers more at 5."""
    from helpers.data import load_split

    test = load_split("test")
    images = test.images[shift.stratified_subset(test.labels, 200)]
    for corruption in shift.CORRUPTIONS:
        change = [np.abs(shift.corrupt(images, corruption, s).astype(int) - images).mean()
                  for s in (1, 3, 5)]
        assert change[0] < change[2], (corruption, change)
        if corruption != "frost":
            assert change[0] < change[1] < change[2], (corruption, change)

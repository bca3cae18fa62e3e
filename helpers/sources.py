"""Where data and weights come from: the real sources (Colab, any machine with network) or
the offline copies in a ``shared/`` folder. Configuration only; one code path.

Environment variables (all optional):

- ``DCAI_SHARED``: folder with the offline copies (``tensorflow_datasets/``, ``weights/``,
  ``label_quality/``). Defaults to ``../shared`` beside the repository when that exists;
  set it to ``none`` to ignore it.
- ``TFDS_DATA_DIR``: where tfds looks for CIFAR-10 (default: the shared copy if any, else
  tfds's own default, which downloads).
- ``DCAI_WEIGHTS``: ``imagenet`` (download), or a path to a ``.weights.h5`` file for
  ``MobileNetV2(include_top=False)`` (default: the shared approximate weights if any).
- ``DCAI_OFFLINE=1``: never try to download; fail at once with a message naming the fix.

This module never imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_WEIGHTS_FILE = "weights/mobilenet_v2_1.0_imagenet_approx_no_top.weights.h5"
SHARED_LABEL_ERRORS = "label_quality/cifar10_test_label_errors"
JPEG_COPY_NOTE = "JPEG copy of CIFAR-10"
APPROX_WEIGHTS_NOTE = "approximate ImageNet weights"
LABEL_ERRORS_URL = (
    "https://raw.githubusercontent.com/cleanlab/label-errors/main/mturk/cifar10_mturk.json"
)


def shared_dir() -> Path | None:
    """The offline folder in use, or None when the real sources are used."""
    configured = os.environ.get("DCAI_SHARED")
    if configured is not None:
        if configured.strip().lower() in ("", "none", "0"):
            return None
        path = Path(configured).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(
                f"DCAI_SHARED={configured!r} is not a folder: point it at the offline "
                "shared/ folder, or set DCAI_SHARED=none to use the real sources"
            )
        return path
    default = REPO_ROOT.parent / "shared"
    return default.resolve() if (default / "tensorflow_datasets").is_dir() else None


def offline() -> bool:
    return os.environ.get("DCAI_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def tfds_data_dir() -> str | None:
    """The tfds data dir to use (None: tfds's default)."""
    if os.environ.get("TFDS_DATA_DIR"):
        return os.environ["TFDS_DATA_DIR"]
    shared = shared_dir()
    return str(shared / "tensorflow_datasets") if shared else None


def _inside(path: str | Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        Path(path).resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def data_source() -> str:
    """A one-line description of where CIFAR-10 comes from, for provenance."""
    data_dir = tfds_data_dir()
    if data_dir and _inside(data_dir, shared_dir()):
        return f"{JPEG_COPY_NOTE} (tfds format, offline, {data_dir})"
    if data_dir:
        return f"tfds cifar10 from {data_dir}"
    return "tfds cifar10 (downloaded original)"


def data_source_name() -> str:
    """A short name of where CIFAR-10 comes from, without machine paths, for pages.

    One of ``"JPEG copy of CIFAR-10"`` (the offline shared copy), ``"CIFAR-10 from a local
    tfds folder"`` (``TFDS_DATA_DIR`` elsewhere) or ``"tfds download of CIFAR-10"``. Records
    keep the full :func:`data_source` string."""
    data_dir = tfds_data_dir()
    if data_dir and _inside(data_dir, shared_dir()):
        return JPEG_COPY_NOTE
    if data_dir:
        return "CIFAR-10 from a local tfds folder"
    return "tfds download of CIFAR-10"


def weights_setting() -> str:
    """``imagenet`` or the path of a weights file."""
    configured = os.environ.get("DCAI_WEIGHTS")
    if configured:
        return configured
    shared = shared_dir()
    if shared and (shared / SHARED_WEIGHTS_FILE).is_file():
        return str(shared / SHARED_WEIGHTS_FILE)
    return "imagenet"


def weights_source(setting: str | None = None) -> str:
    setting = setting or weights_setting()
    if setting == "imagenet":
        return "official Keras ImageNet weights (weights='imagenet')"
    if "approx" in Path(setting).name:
        return f"{APPROX_WEIGHTS_NOTE} ({setting})"
    return f"weights file {setting}"


def weights_source_name(setting: str | None = None) -> str:
    """A short name of the ImageNet weights, without machine paths, for pages.

    ``"official Keras ImageNet weights"``, ``"approximate ImageNet weights"`` or
    ``"weights file <file name>"``. Records keep the full :func:`weights_source` string."""
    setting = setting or weights_setting()
    if setting == "imagenet":
        return "official Keras ImageNet weights"
    if "approx" in Path(setting).name:
        return APPROX_WEIGHTS_NOTE
    return f"weights file {Path(setting).name}"


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def weights_fingerprint(setting: str | None = None) -> str:
    """What identifies the weights by content, for experiment keys.

    ``"imagenet"`` for the download setting, else ``"sha256:"`` and the first 16 hex digits
    of the SHA-256 of the file's bytes (so a renamed copy gets the same key, and a different
    file under the same name a different one). Cached per path, size and modification time
    for the life of the process. Raises FileNotFoundError, naming DCAI_WEIGHTS, when the
    file does not exist."""
    setting = setting or weights_setting()
    if setting == "imagenet":
        return "imagenet"
    path = Path(setting).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise FileNotFoundError(
            f"weights file {setting!r} not found: set DCAI_WEIGHTS to a MobileNetV2 "
            f"(include_top=False) .weights.h5 file, e.g. /path/to/shared/{SHARED_WEIGHTS_FILE}, "
            "or to imagenet to download the official weights"
        ) from None
    cache_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if cache_key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        _FINGERPRINTS[cache_key] = "sha256:" + digest.hexdigest()[:16]
    return _FINGERPRINTS[cache_key]


def label_errors_dir() -> Path | None:
    shared = shared_dir()
    if shared and (shared / SHARED_LABEL_ERRORS).is_dir():
        return shared / SHARED_LABEL_ERRORS
    return None

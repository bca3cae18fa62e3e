"""Shared code for the Data-Centric AI book: data, noise, the frozen model, training,
evaluation, plots and the experiment registry.

Import the sub-modules by role (``from helpers import data, noise``); importing ``helpers``
itself stays cheap and never imports TensorFlow.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, CPU feature notes) would
# fill every notebook's output; Python-level errors and warnings still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Path variables that are relative (or start with ~) are resolved once, against the working
# directory of the process that imported helpers first, and written back absolute: papermill
# kernels run in notebooks/ and inherit the environment, so without this
# `DCAI_RESULTS_DIR=relreg python -m helpers.run` would write into notebooks/relreg/.
PATH_VARIABLES = ("DCAI_RESULTS_DIR", "DCAI_WEIGHTS", "TFDS_DATA_DIR", "DCAI_SHARED")
_SPECIAL_VALUES = ("", "none", "0", "imagenet")  # settings, not paths: left as they are


def _resolve_path_variables(environ=_os.environ) -> None:
    """Make the path variables of ``environ`` absolute (see ``PATH_VARIABLES``)."""
    for variable in PATH_VARIABLES:
        value = environ.get(variable)
        if value is None or value.strip().lower() in _SPECIAL_VALUES or "://" in value:
            continue  # unset, a setting (imagenet, none) or a URL (gs://...)
        expanded = _os.path.expanduser(value)
        if expanded != value or not _os.path.isabs(expanded):
            environ[variable] = _os.path.abspath(expanded)


_resolve_path_variables()

__version__ = "0.1.0"

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
NUM_CLASSES = len(CLASS_NAMES)


def class_id(name: str) -> int:
    """The CIFAR-10 label id of a class name; a clear error for names that do not exist."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown class name {name!r}: use one of {', '.join(CLASS_NAMES)}"
        ) from None

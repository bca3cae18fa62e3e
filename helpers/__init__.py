"""Shared code for the Data-Centric AI book: data, noise, the frozen model, training,
evaluation, plots and the experiment registry.

Import the sub-modules by role (``from helpers import data, noise``); importing ``helpers``
itself stays cheap and never imports TensorFlow.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, CPU feature notes) would
# fill every notebook's output; Python-level errors and warnings still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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

"""Grading and repair arithmetic of the confident-learning chapter, on hand-made labels."""

import numpy as np
import pytest

from helpers import confident

#            0  1  2  3  4  5
TRUE = np.array([0, 1, 2, 3, 4, 5])
GIVEN = np.array([0, 1, 2, 3, 9, 8])  # the last two labels are wrong
NOISE = GIVEN != TRUE


def test_label_accuracy_after_repair_counts_fixes_and_breakages():
    # flags: one real error (4) whose suggestion is right, one error (5) missed,
    # one false alarm (1) whose suggestion is wrong, one false alarm (0) suggested correctly
    flagged = np.array([True, True, False, False, True, False])
    suggested = np.array([0, 7, 2, 3, 4, 8])
    acc = confident.label_accuracy_after_repair(GIVEN, TRUE, flagged, suggested)
    assert acc["noisy"] == 4 / 6
    assert acc["pruned_size"] == 3 and acc["pruned"] == 2 / 3  # kept 2, 3, 5; 5 is wrong
    assert acc["fixed"] == 1 and acc["broken"] == 1
    assert acc["relabelled"] == 4 / 6  # fixed one, broke one


def test_detection_scores_against_the_injected_mask():
    flagged = np.array([True, True, False, False, True, False])
    graded = confident.detection_scores(flagged, NOISE, TRUE)
    scores, per_class = graded["overall"], graded["per_class"]
    assert scores["caught"] == 1 and scores["flagged"] == 3 and scores["injected"] == 2
    assert scores["precision"] == 1 / 3 and scores["recall"] == 1 / 2
    assert per_class["deer"]["caught"] == 1 and per_class["truck"]["flagged"] == 0  # class 4; absent


def test_recovered_fraction_is_undefined_when_noise_cost_nothing():
    assert confident.recovered_fraction(0.70, 0.72, 0.71) is None
    assert confident.recovered_fraction(0.70, 0.60, 0.65) == pytest.approx(0.5)

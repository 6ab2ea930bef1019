"""The churn job's drift handling: the prior shift, the binary ECE and the reference cut-offs."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from bot.shopper_history import LOOKBACK_DAYS
from finetune.churn import HORIZON, prior_offset, reference_cutoffs
from finetune.report import binary_calibration_error, expected_calibration_error


def test_the_prior_offset_moves_the_mean_prediction_to_the_target() -> None:
    logits = np.random.default_rng(0).normal(-0.4, 1.2, 3000)
    for target in (0.1, 0.52, 0.9):
        b = prior_offset(logits, target)
        assert float(np.mean(1 / (1 + np.exp(-(logits + b))))) == pytest.approx(target, abs=1e-6)
    assert prior_offset(logits, 0.3) < prior_offset(logits, 0.6)  # monotone: more churn, larger shift


def test_binary_ece_sees_under_prediction_that_top_label_ece_folds_away() -> None:
    # predictions of 0.45 and 0.55 whose true rates are 0.55 and 0.65: every one 0.1 too low
    p = np.array([0.45] * 20 + [0.55] * 20)
    y = np.array([1] * 11 + [0] * 9 + [1] * 13 + [0] * 7)
    assert binary_calibration_error(p, y) == pytest.approx(0.1)
    assert expected_calibration_error(np.c_[1 - p, p], y) == pytest.approx(0.0, abs=1e-9)


def test_reference_cutoffs_have_a_full_look_back_and_labels_before_the_test() -> None:
    first, test = datetime(2010, 12, 1), datetime(2011, 6, 10)
    cuts = reference_cutoffs(first, test)
    assert cuts[0] == first + timedelta(days=LOOKBACK_DAYS) and len(cuts) >= 4
    assert all(c + HORIZON <= test for c in cuts)
    assert all(b - a == timedelta(days=7) for a, b in zip(cuts, cuts[1:], strict=False))
    assert reference_cutoffs(first, first + timedelta(days=LOOKBACK_DAYS + 89)) == []

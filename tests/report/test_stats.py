"""Paired t-intervals over seeds: numbers pinned against a hand computation and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from asymtune.confirm.stats import paired_difference, t_summary


@pytest.mark.parametrize(
    ("values", "confidence", "mean", "sd"),
    [
        ([0.70, 0.72, 0.74], 0.95, 0.72, 0.02),
        ([1.0, 3.0], 0.90, 2.0, math.sqrt(2.0)),
        ([0.5, 0.5, 0.5, 0.5], 0.95, 0.5, 0.0),
    ],
)
def test_t_summary_matches_the_student_t_formula(
    values: list[float], confidence: float, mean: float, sd: float
) -> None:
    summary = t_summary(values, confidence)
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * sd / math.sqrt(len(values))
    assert summary.mean == pytest.approx(mean)
    assert summary.sd == pytest.approx(sd)
    assert (summary.low, summary.high) == pytest.approx((mean - half, mean + half))
    assert summary.n == len(values)


def test_three_seeds_at_95_percent_use_t_with_two_degrees_of_freedom() -> None:
    summary = t_summary([0.70, 0.72, 0.74])
    assert summary.high - summary.mean == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)


def test_one_seed_has_a_mean_and_no_interval() -> None:
    summary = t_summary([0.8])
    assert summary.mean == 0.8 and math.isnan(summary.sd) and math.isnan(summary.low) and math.isnan(summary.high)


def test_paired_difference_pairs_by_seed() -> None:
    selected, baseline = [0.80, 0.70, 0.90], [0.75, 0.60, 0.88]
    summary = paired_difference(selected, baseline)
    differences = [0.05, 0.10, 0.02]
    assert summary.mean == pytest.approx(sum(differences) / 3)
    assert summary.sd == pytest.approx(stats.tstd(differences))
    # pairing removes the between-seed spread that an unpaired comparison would keep
    assert summary.high - summary.low < t_summary(selected).high - t_summary(selected).low


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: paired_difference([1.0, 2.0], [1.0]), "one pair per seed"),
        (lambda: t_summary([]), "at least one finite value"),
        (lambda: t_summary([1.0, math.nan]), "at least one finite value"),
        (lambda: t_summary([1.0, 2.0], confidence=1.0), r"confidence=1.0: expected a value in \(0, 1\)"),
    ],
)
def test_bad_inputs_are_refused(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_case_bootstrap_resamples_cases_and_keeps_the_seeds_paired() -> None:
    from asymtune.confirm.stats import paired_bootstrap

    # One seed, two cases with differences 0 and 1: resampled means are 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1] around the mean 0.5.
    s = paired_bootstrap(np.array([[0.5, 1.0]]), np.array([[0.5, 0.0]]))
    assert (s.mean, s.low, s.high, s.n) == (0.5, 0.0, 1.0, 2)
    assert s.sd == pytest.approx(np.sqrt(0.125), rel=0.1)  # sd of the mean of 2 draws of {0, 1}
    # Two seeds whose differences cancel case by case: drawing the same cases for both seeds gives
    # 0 in every resample; drawing them independently per seed would not.
    paired = paired_bootstrap(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert (paired.mean, paired.low, paired.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same \\(seeds, cases\\) shape"):
        paired_bootstrap(np.zeros((2, 3)), np.zeros((2, 4)))

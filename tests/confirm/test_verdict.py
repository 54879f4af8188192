"""The verdict says a gain only when the paired interval excludes 0, and says so in words."""

from __future__ import annotations

import math

import pytest

from asymtune.confirm.stats import paired_difference
from asymtune.confirm.verdict import decide, held_out_metric

METRIC = "test/mean_fg_dice"


def test_a_gain_inside_the_noise_is_not_claimed() -> None:
    # differences 0.04 and 0.05: mean 0.045, sd 0.00707, t(0.975, 1) = 12.706 -> half-width 0.0635
    verdict = decide(METRIC, "max", 0.95, paired_difference([0.55, 0.57], [0.51, 0.52]), is_baseline=False)
    assert not verdict.significant
    assert verdict.smallest_detectable_gain == pytest.approx(12.7062 * math.sqrt(0.00005) / math.sqrt(2), rel=1e-4)
    assert verdict.sentence.startswith("Not better than the baseline at 95% confidence")
    assert "[-0.019, +0.109]" in verdict.sentence and "above 0.064" in verdict.sentence
    block = verdict.to_dict()
    assert block["significant"] is False and block["seeds_per_setting"] == 2
    assert block["interval"]["low"] < 0 < block["interval"]["high"]


def test_a_gain_whose_interval_excludes_zero_is_claimed() -> None:
    selected, baseline = [0.60, 0.61, 0.62], [0.50, 0.505, 0.51]  # differences 0.10, 0.105, 0.11
    verdict = decide(METRIC, "max", 0.95, paired_difference(selected, baseline), is_baseline=False)
    assert verdict.significant and verdict.sentence.startswith("Better than the baseline at 95% confidence")


def test_a_loss_whose_interval_excludes_zero_is_called_worse() -> None:
    verdict = decide(METRIC, "max", 0.95, paired_difference([0.50, 0.505, 0.51], [0.60, 0.61, 0.62]), False)
    assert not verdict.significant and verdict.sentence.startswith("Worse than the baseline")


def test_for_a_minimised_objective_lower_is_better() -> None:
    lower = paired_difference([0.40, 0.41, 0.42], [0.50, 0.505, 0.51])
    assert decide("test/loss", "min", 0.95, lower, False).significant
    assert not decide("test/loss", "max", 0.95, lower, False).significant


@pytest.mark.parametrize(
    ("difference", "is_baseline", "start"),
    [
        (None, False, "Not shown to be better than the baseline: the confirmation has no paired test result"),
        (paired_difference([0.6], [0.5]), False, "Not shown to be better than the baseline"),
        (paired_difference([0.6, 0.6], [0.6, 0.6]), True, "The export is the baseline itself"),
    ],
)
def test_nothing_is_claimed_without_an_interval(difference, is_baseline: bool, start: str) -> None:
    verdict = decide(METRIC, "max", 0.95, difference, is_baseline)
    assert not verdict.significant and verdict.sentence.startswith(start)
    assert math.isnan(verdict.smallest_detectable_gain) or is_baseline


def test_held_out_metric() -> None:
    assert held_out_metric("val/mean_fg_dice") == "test/mean_fg_dice"
    assert held_out_metric("val/sensitivity/lesion") == "test/sensitivity/lesion"

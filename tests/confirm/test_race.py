"""The race's stopping rule, against hand-computed paired intervals."""

from __future__ import annotations

import dataclasses

import pytest

from asymtune.confirm.race import race_stop, verdict_seed_count

RULE = {"mode": "max", "confidence": 0.95, "min_gain": 0.01, "max_seeds": 4}


def test_the_baseline_leading_ends_the_race_at_once() -> None:
    stop = race_stop([0.5, 0.5], [0.5, 0.5], leader_is_baseline=True, seeds=2, **RULE)
    assert stop is not None and stop.reason == "baseline_leads" and stop.gain is None


def test_an_interval_above_zero_decides_for_the_leader() -> None:
    # gains 0.10 and 0.105: mean 0.1025, sd 0.003536, t(0.975, 1) = 12.706 -> [0.0707, 0.1343]
    stop = race_stop([0.60, 0.61], [0.50, 0.505], leader_is_baseline=False, seeds=2, **RULE)
    assert stop is not None and stop.reason == "better"
    assert stop.gain is not None and stop.gain.low == pytest.approx(0.1025 - 12.7062 * 0.0035355 / 2 ** 0.5, abs=1e-4)


def test_an_interval_below_the_smallest_useful_gain_ends_the_race() -> None:
    # gains 0.000, -0.002, 0.001, -0.001: mean -0.0005, sd 0.001291, t(0.975, 3) = 3.182 -> high 0.00155 < 0.01
    stop = race_stop([0.50, 0.498, 0.501, 0.499], [0.50, 0.50, 0.50, 0.50], leader_is_baseline=False, seeds=4,
                     **{**RULE, "max_seeds": 8})
    assert stop is not None and stop.reason == "no_useful_gain"
    assert stop.gain is not None and stop.gain.high == pytest.approx(-0.0005 + 3.1824 * 0.0012910 / 2, abs=1e-5)


def test_an_undecided_race_trains_one_more_seed_until_the_budget() -> None:
    leader, baseline = [0.60, 0.50, 0.58], [0.55, 0.55, 0.55]  # gains +0.05, -0.05, +0.03: undecided
    assert race_stop(leader[:2], baseline[:2], leader_is_baseline=False, seeds=2, **RULE) is None
    assert race_stop(leader, baseline, leader_is_baseline=False, seeds=3, **RULE) is None
    stop = race_stop(leader + [0.52], baseline + [0.55], leader_is_baseline=False, seeds=4, **RULE)
    assert stop is not None and stop.reason == "budget" and "budget of 4 seeds" in stop.sentence


def test_one_seed_gives_no_interval_so_the_race_goes_on() -> None:
    assert race_stop([0.9], [0.1], leader_is_baseline=False, seeds=1, **RULE) is None


def test_a_minimised_objective_gains_downwards() -> None:
    rule = {**RULE, "mode": "min"}
    stop = race_stop([0.40, 0.41], [0.50, 0.515], leader_is_baseline=False, seeds=2, **rule)
    assert stop is not None and stop.reason == "better" and stop.gain is not None and stop.gain.mean > 0


def test_a_leader_better_on_validation_gets_the_verdicts_seeds_and_says_so() -> None:
    stop = race_stop([0.60, 0.61], [0.50, 0.505], leader_is_baseline=False, seeds=2, **RULE)
    assert stop is not None and stop.reason == "better"
    assert verdict_seed_count(stop, 8) == 8 and verdict_seed_count(stop, 1) == 2, "never fewer than the race's"
    assert "up to" not in stop.sentence, "not said before it is decided"
    extended = dataclasses.replace(stop, verdict_seeds=8)
    assert extended.sentence.endswith("The leader and the baseline were then trained up to 8 seeds for the test.")
    assert extended.to_dict()["verdict_seeds"] == 8
    undecided = race_stop([0.60, 0.50, 0.55, 0.52], [0.55, 0.55, 0.50, 0.56], leader_is_baseline=False, seeds=4,
                          **RULE)
    assert undecided is not None and undecided.reason == "budget" and verdict_seed_count(undecided, 8) == 4
    leads = race_stop([0.5, 0.5], [0.5, 0.5], leader_is_baseline=True, seeds=2, **RULE)
    assert leads is not None and verdict_seed_count(leads, 8) == 2

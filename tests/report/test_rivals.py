"""The rivals table: each rival's paired intervals against the baseline and the export's against it."""

from __future__ import annotations

import pytest

from asymtune.confirm.retrain import OFFSET_RIVAL, Confirmation
from asymtune.confirm.stats import paired_difference
from asymtune.report.results import ConfirmedResults
from asymtune.report.rivals import best_rival, rivals
from asymtune.tracking.confirmation import ConfirmationRun

METRIC = "test/mean_fg_dice"
CLASSES = ("background", "lesion")


def _setup(offset_values: list[float]) -> tuple[Confirmation, ConfirmedResults]:
    runs = [ConfirmationRun(f"b{s}", "base", s, "baseline", "tested",
                            {METRIC: 0.50 + s / 100, f"{OFFSET_RIVAL}/{METRIC}": offset_values[s],
                             f"{OFFSET_RIVAL}/offset/lesion": 0.25 * s})
            for s in range(3)]
    confirmation = Confirmation("sel", "base", ["sel"], "sel", [0, 1, 2], runs)
    results = ConfirmedResults(seeds=[0, 1, 2], values={
        "selected": {METRIC: [0.56, 0.58, 0.57]}, "baseline": {METRIC: [0.50, 0.51, 0.52]}})
    return confirmation, results


def test_rivals_are_paired_by_seed() -> None:
    confirmation, results = _setup([0.55, 0.57, 0.59])
    baseline, offset, export = rivals(confirmation, results, METRIC, CLASSES, 0.95)
    assert [baseline["name"], offset["name"], export["name"]] == ["baseline", "logit_offset", "export"]
    expected = paired_difference([0.55, 0.57, 0.59], [0.50, 0.51, 0.52], 0.95)
    assert offset["vs_baseline"]["mean"] == pytest.approx(expected.mean)
    assert offset["vs_baseline"]["low"] == pytest.approx(expected.low)
    assert offset["export_vs_it"]["mean"] == pytest.approx((0.01 + 0.01 - 0.02) / 3)
    assert offset["offsets"] == {"lesion": [0.0, 0.25, 0.5]}
    assert export["vs_baseline"]["mean"] == pytest.approx(0.06)
    assert best_rival([baseline, offset, export], "max")["name"] == "logit_offset"
    assert best_rival([baseline, offset, export], "min")["name"] == "baseline"


def test_a_rival_without_values_for_every_seed_is_left_out() -> None:
    confirmation, results = _setup([0.55, 0.57, 0.59])
    confirmation.runs[2].metrics.pop(f"{OFFSET_RIVAL}/{METRIC}")
    assert [entry["name"] for entry in rivals(confirmation, results, METRIC, CLASSES, 0.95)] == ["baseline", "export"]

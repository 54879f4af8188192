"""Rung fidelity: Spearman's rho between a rung's ranking and the last epoch's, the sweep's action
read from the trials' histories, and the early signals' rho, hand-computed."""

from __future__ import annotations

import math

import pytest

from asymtune.method.settings import baseline
from asymtune.report.fidelity import NOT_CHECKED, PROBES_ONLY, SIGNALS, rung_fidelity, spearman
from asymtune.results.layout import FIXED_KEY
from asymtune.results.spec import TrialSpec
from asymtune.results.trials import TrialRecord
from asymtune.search.scheduler import (
    DISABLED,
    KEPT,
    NOT_ENOUGH_PAIRS,
    PROBE,
    RUNG_ACTION,
    RUNG_PAIRS,
    RUNG_RHO,
    RUNG_STOPPED,
)

CLASSES = ("background", "lesion")
METRIC = "val/mean_fg_dice"
CONFIG = {FIXED_KEY: TrialSpec(
    dataset_name="d", dataset={"source": "synth_lesions", "params": {}}, class_names=CLASSES, rare=(1,),
    model={"name": "unet"}, train={"epochs": 4, "seed": 0}, decision_epochs=(2, 4),
).to_dict()}


def _trial(trial_id: str, values: dict[int, float]) -> TrialRecord:
    history = [{"training_iteration": e, "val/mean_fg_dice": v, "val/dice/lesion": v} for e, v in values.items()]
    return TrialRecord(trial_id, CONFIG, baseline(2), history)


def test_spearman_against_hand_computed_ranks() -> None:
    # ranks [1, 2, 4, 3] against [3, 1, 2, 4]: sum d^2 = 10, rho = 1 - 6 * 10 / (4 * 15) = 0
    assert spearman([0.556, 0.615, 0.697, 0.622], [0.602, 0.571, 0.583, 0.641]) == 0.0
    assert spearman([1, 2, 3], [10, 20, 30]) == 1.0 and spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(spearman([1, 2], [1, 2])), "fewer than 3 pairs"
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])), "a constant side has no ranking"


def test_rung_fidelity_uses_the_trials_that_reached_both_epochs() -> None:
    trials = [
        _trial("a", {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}),
        _trial("b", {1: 0.1, 2: 0.3, 3: 0.3, 4: 0.5}),
        _trial("c", {1: 0.1, 2: 0.4, 3: 0.3, 4: 0.6}),
        _trial("stopped", {1: 0.1, 2: 0.9}),  # stopped by ASHA at the rung: no final value
    ]
    (entry,) = rung_fidelity(trials, "val/mean_fg_dice", CLASSES)
    assert entry["epoch"] == 2 and entry["pairs"] == 3
    assert entry["rho"] == 1.0 and entry["per_class"] == {"lesion": 1.0}
    reversed_order = [_trial(t.trial_id, {2: 1 - t.history[1]["val/mean_fg_dice"], 4: t.last["val/mean_fg_dice"]})
                      for t in trials[:3]]
    assert rung_fidelity(reversed_order, "val/mean_fg_dice", CLASSES)[0]["rho"] == -1.0


def _trial_with(trial_id: str, rows: dict[int, dict[str, object]]) -> TrialRecord:
    history = [{"training_iteration": e, **row} for e, row in rows.items()]
    return TrialRecord(trial_id, CONFIG, baseline(2), history)


def test_the_sweeps_action_is_its_last_decision_about_a_trial_that_was_not_a_probe() -> None:
    decision = {RUNG_ACTION: KEPT, RUNG_RHO: 1.0, RUNG_PAIRS: 3, RUNG_STOPPED: False, "timestamp": 10}
    trials = [
        _trial_with("probe", {2: {METRIC: 0.3, RUNG_ACTION: PROBE, RUNG_RHO: math.nan, RUNG_PAIRS: 0,
                                  RUNG_STOPPED: False, "timestamp": 1}, 4: {METRIC: 0.6}}),
        _trial_with("stopped", {2: {METRIC: 0.1, **decision, RUNG_STOPPED: True}}),
        # the latest decision (most pairs): the rung no longer predicted, it was disabled
        _trial_with("passed", {2: {METRIC: 0.2, **decision, RUNG_ACTION: DISABLED, RUNG_RHO: -0.2, RUNG_PAIRS: 4,
                                   "timestamp": 20}, 4: {METRIC: 0.5}}),
    ]
    (entry,) = rung_fidelity(trials, METRIC, CLASSES)
    assert entry["action"] == DISABLED and entry["decided_with"] == {"rho": -0.2, "pairs": 4}
    assert entry["decisions"] == {PROBE: 1, NOT_ENOUGH_PAIRS: 0, DISABLED: 1, KEPT: 1} and entry["stopped"] == 1
    only_probes = rung_fidelity(trials[:1], METRIC, CLASSES)[0]
    assert only_probes["action"] == PROBES_ONLY and only_probes["decided_with"] is None
    unchecked = [_trial(t, {2: 0.1 * i, 4: 0.2 * i}) for i, t in enumerate("abc")]
    assert rung_fidelity(unchecked, METRIC, CLASSES)[0]["action"] == NOT_CHECKED


def test_early_signals_against_the_final_objective_by_hand() -> None:
    """Three trials, rung at epoch 2 of 4, final objective a 0.4 < b 0.5 < c 0.6.

    - objective at epoch 2: a 0.3, b 0.1, c 0.25: ranks (3, 1, 2) against (1, 2, 3): sum d^2 = 4 + 1 + 1 = 6,
      rho = 1 - 6 * 6 / (3 * 8) = -0.5;
    - rare-class validation margin (diag/median_val/lesion): a -1.0 < b 0.5 < c 2.0: rho 1;
    - minus the logit shift (diag/shift/lesion 3.0, 1.0, 2.0 -> -3, -1, -2): ranks (1, 3, 2): sum d^2 = 2, rho 0.5;
    - rare sensitivity equal for all: no ranking (NaN);
    - curve fit of epochs 1..2 (a + b ln t) extrapolated to t = 4 = 2 * v2 - v1 (ln 4 = 2 ln 2):
      a 2 * 0.3 - 0.2 = 0.4, b 2 * 0.1 - 0.05 = 0.15, c 2 * 0.25 - 0.0 = 0.5: ranks (2, 1, 3), sum d^2 = 2,
      rho 0.5: better than the objective, worse than the margin.
    """
    rung = {"a": (0.2, 0.3, -1.0, 3.0), "b": (0.05, 0.1, 0.5, 1.0), "c": (0.0, 0.25, 2.0, 2.0)}
    final = {"a": 0.4, "b": 0.5, "c": 0.6}
    trials = [
        _trial_with(t, {1: {METRIC: v1}, 2: {METRIC: v2, "diag/median_val/lesion": margin, "diag/shift/lesion": shift,
                                             "val/sensitivity/lesion": 0.7},
                        4: {METRIC: final[t]}})
        for t, (v1, v2, margin, shift) in rung.items()
    ]
    (entry,) = rung_fidelity(trials, METRIC, CLASSES)
    signals = {name: value["rho"] for name, value in entry["signals"].items()}
    assert set(signals) == set(SIGNALS) and entry["rho"] == signals["objective"]
    assert signals["objective"] == pytest.approx(-0.5) and signals["rare_val_margin"] == pytest.approx(1.0)
    assert signals["rare_logit_shift"] == pytest.approx(0.5) and math.isnan(signals["rare_sensitivity"])
    assert signals["curve_fit"] == pytest.approx(0.5)
    assert entry["best_signal"] == "rare_val_margin"
    assert all(value["pairs"] == 3 for value in entry["signals"].values())

"""Rung fidelity: Spearman's rho between a rung's ranking and the last epoch's, hand-computed."""

from __future__ import annotations

import math

from asymtune.method.settings import baseline
from asymtune.report.fidelity import rung_fidelity, spearman
from asymtune.results.layout import FIXED_KEY
from asymtune.results.spec import TrialSpec
from asymtune.results.trials import TrialRecord

CLASSES = ("background", "lesion")
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

"""The epochs where a trial may end are exactly where Ray Tune's ASHA stops a losing trial."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from asymtune.search.sweep import decision_epochs


@dataclass
class _Trial:
    trial_id: str


@pytest.mark.parametrize(
    ("epochs", "grace_period", "reduction_factor"),
    [(30, 6, 3), (2, 1, 3), (3, 3, 3), (3, 2, 3), (100, 1, 2.5), (10, 4, 2), (6, 6, 3)],
)
def test_decision_epochs_are_the_epochs_where_asha_stops_a_losing_trial(
    epochs: int, grace_period: int, reduction_factor: float
) -> None:
    scheduler = ASHAScheduler(
        time_attr="training_iteration", metric="score", mode="max",
        max_t=epochs, grace_period=grace_period, reduction_factor=reduction_factor,
    )
    winner, loser = _Trial("winner"), _Trial("loser")
    for trial in (winner, loser):
        scheduler.on_trial_add(None, trial)
    stopped_at = []
    for epoch in range(1, epochs + 1):
        scheduler.on_trial_result(None, winner, {"training_iteration": epoch, "score": 1.0})
        if scheduler.on_trial_result(None, loser, {"training_iteration": epoch, "score": 0.0}) == TrialScheduler.STOP:
            stopped_at.append(epoch)
    assert decision_epochs(epochs, grace_period, reduction_factor) == stopped_at

"""The report says when a sweep is partial, counting only trials that ended (not interrupted ones)."""

from __future__ import annotations

from asymtune.confirm.options import DecisionOptions
from asymtune.method.settings import baseline
from asymtune.report.build import _sweep_notes
from asymtune.report.render import DatasetReport
from asymtune.results.trials import TrialRecord

HISTORY = [{"training_iteration": 1, "val/mean_fg_dice": 0.5}]


def _notes(statuses: list[str], expected: int) -> list[str]:
    trials = [TrialRecord(f"t{i}", {}, baseline(2), list(HISTORY), status=s) for i, s in enumerate(statuses)]
    report = DatasetReport(
        name="d", class_names=("background", "lesion"), metric="val/mean_fg_dice", trials=trials,
        expected_trials=expected, sweep_choice=trials[0], baseline=trials[0],
    )
    _sweep_notes(report, DecisionOptions(metric="val/mean_fg_dice", mode="max"))
    return report.notes


def test_interrupted_trials_with_results_do_not_count_as_finished() -> None:
    # an interrupted sweep: 3 trials ended, the 4th was running (it had reported an epoch)
    notes = _notes(["TERMINATED", "TERMINATED", "TERMINATED", "RUNNING"], expected=4)
    assert notes == ["partial sweep: 3 of 4 trials have results (1 started without a final result or failed, "
                     "0 never started)."]


def test_trials_that_never_started_are_counted() -> None:
    notes = _notes(["TERMINATED", "PENDING"], expected=4)
    assert notes == ["partial sweep: 1 of 4 trials have results (1 started without a final result or failed, "
                     "2 never started)."]


def test_a_complete_sweep_has_no_note() -> None:
    assert _notes(["TERMINATED"] * 4, expected=4) == []

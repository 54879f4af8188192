"""A resumed trial's history: one row per epoch, the rerun's (:func:`asymtune.results.trials.one_row_per_epoch`).

The rows are those of a result file after a SIGKILL of the driver between an epoch's write and Ray
Tune's snapshot (seen in the two-node journal test under load: epochs 1, 2, 2)."""

from __future__ import annotations

from asymtune.results.trials import one_row_per_epoch


def test_an_epoch_run_again_after_a_resume_is_counted_once_with_the_reruns_values() -> None:
    rows = [{"training_iteration": 1, "dice": 0.1}, {"training_iteration": 2, "dice": 0.2, "done": True},
            {"training_iteration": 2, "dice": 0.25, "done": True}]
    assert one_row_per_epoch(rows) == [rows[0], rows[2]]


def test_a_trial_restarted_from_an_earlier_checkpoint_keeps_epoch_order_and_the_last_rows() -> None:
    rows = [{"training_iteration": epoch, "run": run} for run, epochs in ((0, (1, 2, 3)), (1, (2, 3, 4)))
            for epoch in epochs]
    assert [(row["training_iteration"], row["run"]) for row in one_row_per_epoch(rows)] == [
        (1, 0), (2, 1), (3, 1), (4, 1)]


def test_rows_without_an_epoch_and_an_unbroken_history_are_kept_as_they_are() -> None:
    rows = [{"training_iteration": 1}, {"note": "no epoch"}, {"note": "no epoch"}, {"training_iteration": 2}]
    assert one_row_per_epoch(rows) == rows

"""A trial whose worker dies right after its last epoch's checkpoint restarts from that checkpoint,
reports nothing more and ends TERMINATED: its stored history (``result.json``, ``progress.csv``)
must still end at the last epoch. With Ray Tune's own loggers, the restart copies the stored
history, synced an epoch earlier, over the driver's, and the last epoch's row is lost (the
two-node test's 4th trial without a last-epoch row)."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from epoch_checkpoints import epoch_checkpoints
from ray import tune

from asymtune.search.history import trial_history_loggers

EPOCHS = 3


def _trainable(died: Path) -> Callable[[dict[str, Any]], None]:
    """Reports epochs 1..3, each with a checkpoint, continuing from its checkpoint. Its first attempt
    reports the last epoch only once the storage holds the first two epochs' rows (the sync that
    ``num_to_keep=2`` forces after two checkpoints), then its process dies, as on a lost node."""
    last_epoch, report_with_checkpoint = epoch_checkpoints()

    def trainable(config: dict[str, Any]) -> None:
        start = last_epoch()
        stored = Path(tune.get_context().get_storage().trial_fs_path, "result.json")
        for epoch in range(start + 1, EPOCHS + 1):
            if epoch == EPOCHS and not died.exists():
                deadline = time.monotonic() + 60
                while not (stored.is_file() and len(stored.read_text().splitlines()) >= EPOCHS - 1):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{stored} never held {EPOCHS - 1} rows")
                    time.sleep(0.05)
            report_with_checkpoint({"epoch": epoch}, epoch)
        if not died.exists():
            died.touch()
            os._exit(1)  # after the driver took the last result and checkpoint, before the trial returns

    return trainable


def _fit(tmp_path: Path, callbacks: list[tune.Callback]) -> tune.ResultGrid:
    tuner = tune.Tuner(
        _trainable(tmp_path / "died"),
        run_config=tune.RunConfig(
            name="exp", storage_path=str(tmp_path / "storage"), verbose=0, callbacks=callbacks,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    return tuner.fit()


@pytest.mark.e2e
def test_a_trial_restarted_from_its_last_checkpoint_keeps_its_whole_history(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "600")  # only the forced sync after 2 checkpoints
    grid = _fit(tmp_path, trial_history_loggers())
    (result,) = grid
    assert (tmp_path / "died").exists(), "the first attempt died after its last epoch"
    assert result.error is None and result.metrics["epoch"] == EPOCHS
    trial_dir = Path(result.path)
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3], "result.json lost the rows the storage had not synced"
    with (trial_dir / "progress.csv").open() as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [1, 2, 3]
    assert result.metrics_dataframe["epoch"].tolist() == [1, 2, 3]

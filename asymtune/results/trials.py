"""The trial records of a dataset sweep, read from Ray Tune's experiment folder (local or on an
object store): each with the per-class setting it trained with, its history and checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray import tune

from asymtune.method.settings import AsymmetrySettings
from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY, STATE_FILE
from asymtune.results.spec import TrialSpec, trial_spec


@dataclass
class TrialRecord:
    """One trial as stored.

    Attributes:
        trial_id: Ray Tune's id.
        config: the trial config (fixed part under ``"asymtune"``, the resolved setting under
            ``"settings"``, Optuna values at top level).
        settings: the per-class asymmetry setting it trained with.
        history: one metrics dict per reported epoch.
        error: the error text when the trial failed.
        checkpoint: the latest checkpoint (a folder holding ``state.pt``, on the sweep's storage),
            if any; ``checkpoint.as_directory()`` gives a local folder.
        status: Ray Tune's status of the trial as the experiment's state last recorded it
            (``TERMINATED``: it ended, by its last epoch or by the scheduler; ``RUNNING``,
            ``PENDING``, ``PAUSED``: an interrupted sweep; ``ERROR``).
    """

    trial_id: str
    config: dict[str, Any]
    settings: AsymmetrySettings
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    checkpoint: tune.Checkpoint | None = None
    status: str = "TERMINATED"

    @property
    def checkpoint_file(self) -> Path | None:
        """The latest ``state.pt`` when the checkpoint is on this machine's disk; None otherwise
        (on an object store, read it through ``checkpoint.as_directory()``)."""
        if self.checkpoint is None or not isinstance(self.checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
            return None
        path = Path(self.checkpoint.path) / STATE_FILE
        return path if path.is_file() else None

    @property
    def finished(self) -> bool:
        """The trial ended without an error and reported results: its last result is final (an
        interrupted trial's results are not)."""
        return self.status == "TERMINATED" and self.error is None and bool(self.history)

    @property
    def spec(self) -> TrialSpec:
        """The trial contract's fixed part (dataset, model, train options, class names)."""
        return trial_spec(self.config)

    @property
    def last(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def epochs(self) -> int:
        return int(self.last.get("training_iteration", 0))

    def objective(self, metric: str) -> float:
        value = self.last.get(metric)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def one_row_per_epoch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A trial's history with one row per ``training_iteration``: the last row of each, in epoch order.

    A trial whose epoch was written to its result file after Ray Tune's last snapshot of the
    experiment (the driver killed in between) runs that epoch again when the sweep resumes, and the
    file then holds the epoch twice; the rerun's row is the one its checkpoint and the sweep went on
    from. Rows without an epoch number are kept as they are.

    >>> one_row_per_epoch([{"training_iteration": 1, "v": 0.1}, {"training_iteration": 2, "v": 0.2},
    ...                    {"training_iteration": 2, "v": 0.3}])
    [{'training_iteration': 1, 'v': 0.1}, {'training_iteration': 2, 'v': 0.3}]
    """
    by_epoch: dict[Any, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        epoch = row.get("training_iteration")
        by_epoch[("row", index) if epoch is None else epoch] = row
    return list(by_epoch.values())


def load_trials(experiment_dir: str | Path) -> list[TrialRecord]:
    """All trials of one dataset sweep, finished or not, in creation order.

    ``experiment_dir`` is a local path or a URI (``s3://bucket/prefix/<dataset>``).
    """
    analysis = tune.ExperimentAnalysis(str(experiment_dir))
    records = []
    grid = tune.ResultGrid(analysis)
    for trial, result in zip(analysis.trials, (grid[index] for index in range(len(grid)))):
        config = dict(result.config or {})
        if FIXED_KEY not in config or SETTINGS_KEY not in config:
            continue
        frame = result.metrics_dataframe
        history = one_row_per_epoch(frame.to_dict("records")) if frame is not None and len(frame) else []
        trial_id = str((result.metrics or {}).get("trial_id") or Path(result.path).name)
        records.append(
            TrialRecord(
                trial_id=trial_id,
                config=config,
                settings=AsymmetrySettings.from_dict(config[SETTINGS_KEY]),
                history=history,
                error=str(result.error) if result.error else None,
                checkpoint=result.checkpoint,
                status=str(trial.status),
            )
        )
    return records

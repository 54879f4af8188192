"""Ray Tune's result loggers, except that a retried trial keeps the history the driver already wrote.

Ray Tune (2.60) writes each trial's history (``result.json``, ``progress.csv``) into a staging
folder on the driver and copies that folder to the sweep's storage from time to time (every
``TUNE_GLOBAL_CHECKPOINT_S``, at least 10 s, or after ``num_to_keep`` checkpoints of a trial).
When a trial that has a checkpoint starts again after a failure (its node was lost, its worker
died), its loggers first copy the history back *from the storage over the staging copy*: the
stored copy can be a few epochs behind, so those epochs' rows are lost, for good, since the
staging copy overwrites the stored one at the next sync. A trial whose node is lost right after
its last epoch's checkpoint restarts from that checkpoint and reports nothing more, so it ends
TERMINATED (its last result in Tune's experiment state is the last epoch) while its stored history
stops epochs earlier: the report, which reads the history (:mod:`asymtune.results.trials`), then
takes that trial's objective from an earlier epoch.

The loggers here copy the stored history back only when the driver holds none for the trial (a
sweep resumed by a new driver, whose staging folder starts empty), which is what that copy is for.
A history the driver already holds is the source of the stored one, never older than it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.fs
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

if TYPE_CHECKING:
    from ray.tune import Callback
    from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


def _keeps_driver_copy(file_name: str, trial: Trial) -> bool:
    """Whether the driver's staging folder already has a non-empty ``file_name`` for ``trial`` (then
    it is kept). Logs the rows Ray Tune's own copy from the storage would have lost."""
    if trial.local_path is None:
        return False
    local = Path(trial.local_path, file_name)
    if not (local.is_file() and local.stat().st_size > 0):
        return False
    held = len(local.read_bytes().splitlines())
    stored, storage = 0, trial.storage
    try:
        if storage is not None:
            with storage.storage_filesystem.open_input_stream(f"{storage.trial_fs_path}/{file_name}") as stream:
                stored = len(stream.readall().splitlines())
    except (OSError, pyarrow.ArrowException):  # not synced yet: nothing stored to compare with
        pass
    if stored < held:
        log.info("trial %s restarts: its %s keeps the driver's %d lines (the storage's copy, %d lines, is behind)",
                 trial.trial_id, file_name, held, stored)
    return True


class JsonHistoryLogger(JsonLoggerCallback):
    """``result.json`` as Ray Tune writes it; a retried trial's rows are never replaced by the stored copy."""

    def _restore_from_remote(self, file_name: str, trial: Trial) -> None:
        if not _keeps_driver_copy(file_name, trial):
            super()._restore_from_remote(file_name, trial)


class CSVHistoryLogger(CSVLoggerCallback):
    """``progress.csv`` as Ray Tune writes it; a retried trial's rows are never replaced by the stored copy."""

    def _restore_from_remote(self, file_name: str, trial: Trial) -> None:
        if not _keeps_driver_copy(file_name, trial):
            super()._restore_from_remote(file_name, trial)


def trial_history_loggers() -> list[Callback]:
    """The loggers a sweep passes in ``RunConfig.callbacks`` (Ray Tune then adds no JSON or CSV
    logger of its own; the TensorBoard one stays)."""
    return [JsonHistoryLogger(), CSVHistoryLogger()]  # type: ignore[no-untyped-call]

"""Epoch checkpoints for the search tests' own trainables: each checkpoint holds its epoch."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune


def epoch_checkpoints() -> tuple[Callable[[], int], Callable[[dict[str, Any], int], None]]:
    """``(last_epoch, report_with_checkpoint)`` for a trainable that resumes from its checkpoint.

    ``last_epoch()`` is the epoch of the checkpoint the trial was restored from (0 without one);
    ``report_with_checkpoint(metrics, epoch)`` reports ``metrics`` with a checkpoint of ``epoch``.
    Both are built here, not defined at module level, so that a trainable closing over them is
    shipped to Ray's workers by value with them; a module-level function would be pickled by
    reference, and the workers cannot import this tests module.
    """
    def last_epoch() -> int:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return 0
        with checkpoint.as_directory() as directory:
            return int(Path(directory, "epoch").read_text())

    def report_with_checkpoint(metrics: dict[str, Any], epoch: int) -> None:
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "epoch").write_text(str(epoch))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    return last_epoch, report_with_checkpoint

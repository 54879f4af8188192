"""Choose the setting to export: best validation objective; find the baseline trial."""

from __future__ import annotations

import math
from collections.abc import Sequence

from asymtune.report.collect import TrialRecord


def select_best(trials: Sequence[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    """The trial with the best last-reported validation ``metric`` (failed trials excluded).

    Ties go to the trial that trained more epochs, then to the earlier trial.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"objective.mode={mode!r}: expected 'max' or 'min'")
    sign = 1.0 if mode == "max" else -1.0
    candidates = [t for t in trials if t.error is None and not math.isnan(t.objective(metric))]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (sign * t.objective(metric), t.epochs, -trials.index(t)))


def find_baseline(trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The first successful trial with no asymmetry (cross-entropy + soft Dice)."""
    for trial in trials:
        if trial.settings.is_baseline and trial.error is None and trial.history:
            return trial
    return None

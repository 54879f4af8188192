"""How well did ASHA's early rungs predict the final ranking? Measured on the sweep's own trials.

For each rung (an epoch where ASHA may stop a trial, before the last epoch), the Spearman rank
correlation between the trials' validation values at that epoch and at the last epoch, over the
trials that reached both; for the objective and for each foreground class's Dice. A rho near 0
(or below) means the rung ranked trials no better than chance: the trials it stopped were stopped
blindly. Trials that ASHA stopped at a rung never reach the last epoch, so the correlation is
measured among the trials it let through (a truncated sample: read it as an upper bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from asymtune.results.trials import TrialRecord

MIN_PAIRS = 3
"""Fewer trials than this reached both epochs: no correlation is computed (NaN)."""

ACTION = "none: measured after the sweep; the sweep's course is not changed by it yet"


def _value_at(trial: TrialRecord, epoch: int, key: str) -> float:
    for row in trial.history:
        if row.get("training_iteration") == epoch:
            value = row.get(key)
            return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan
    return math.nan


def spearman(early: Sequence[float], final: Sequence[float]) -> float:
    """Spearman's rho of paired values; NaN for fewer than :data:`MIN_PAIRS` pairs or a constant side.

    >>> round(spearman([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.4, 0.3]), 3)
    0.6
    """
    if len(early) < MIN_PAIRS or len(set(early)) < 2 or len(set(final)) < 2:
        return math.nan
    rho = stats.spearmanr(np.asarray(early, dtype=float), np.asarray(final, dtype=float)).statistic
    return float(rho)


def rung_fidelity(trials: Sequence[TrialRecord], metric: str, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per rung: ``{"epoch", "rho", "pairs", "per_class": {class: rho}, "action"}``.

    The rungs and the last epoch come from the trials' contract (``decision_epochs``, ``train.epochs``).
    """
    finished = [t for t in trials if t.error is None and t.history]
    if not finished:
        return []
    spec = finished[0].spec
    last = spec.epochs
    entries = []
    for epoch in (e for e in spec.decision_epochs if e < last):
        keys = {"objective": metric, **{c: f"val/dice/{c}" for c in class_names[1:]}}
        rhos, pairs = {}, 0
        for label, key in keys.items():
            points = [(_value_at(t, epoch, key), _value_at(t, last, key)) for t in finished]
            points = [(a, b) for a, b in points if math.isfinite(a) and math.isfinite(b)]
            rhos[label] = spearman([a for a, _ in points], [b for _, b in points])
            pairs = len(points) if label == "objective" else pairs
        entries.append({
            "epoch": epoch, "rho": rhos.pop("objective"), "pairs": pairs, "per_class": rhos, "action": ACTION,
        })
    return entries

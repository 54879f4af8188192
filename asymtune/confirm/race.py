"""Confirmation that races to a verdict, on the validation split.

The confirmation starts with ``confirm.seeds`` seeds per setting. After each round it compares
the validation objective of the leader (the setting chosen so far) with the baseline's, paired by
seed: the gain ``g_s = leader_s - baseline_s`` (``baseline_s - leader_s`` for a minimised
objective) and its Student-t interval. It stops when

- the baseline leads: nothing to race;
- the interval excludes 0 (``low > 0``): the leader beats the baseline on validation;
- the interval's upper bound is below ``confirm.min_gain``: no gain worth having is left;
- ``confirm.max_seeds`` seeds are spent;

and otherwise trains one more seed of every confirmed setting (the candidates, the trained rivals
and the baseline). The race reads the validation split only; the test split is read once, after
the race, for the verdict (:mod:`asymtune.confirm.verdict`), so the race's repeated looks do not
bias the test interval.

A race that ends with the leader better on validation often ends after few seeds (2 to 4), too
few for the test interval to confirm a gain of the size validation showed. So the leader and the
baseline, and only they, are then trained up to ``confirm.verdict_seeds`` seeds
(:func:`verdict_seed_count`) before the test split is read. The rule reads validation only and is
fixed before any test number exists; the choice stays the race's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asymtune.confirm.stats import Summary, paired_difference

RULE = (
    "after each round of seeds: stop when the baseline leads on validation, when the leader's paired validation "
    "interval against the baseline excludes 0, when its upper bound is below confirm.min_gain, or when "
    "confirm.max_seeds seeds are spent; else train one more seed of the candidates, the rivals and the baseline. "
    "When the leader beats the baseline on validation, train it and the baseline up to confirm.verdict_seeds seeds "
    "before the test"
)
REASONS = ("baseline_leads", "better", "no_useful_gain", "budget")


@dataclass(frozen=True)
class RaceStop:
    """Why the race stopped.

    Attributes:
        reason: one of :data:`REASONS`.
        seeds: the seeds per setting when it stopped.
        gain: the leader's paired validation gain over the baseline (None when the baseline leads
            or fewer than two seeds were paired), signed so that positive is better.
        min_gain: ``confirm.min_gain``.
        max_seeds: ``confirm.max_seeds``.
        verdict_seeds: the seeds of the leader and the baseline for the test
            (:func:`verdict_seed_count`); 0 when not given.
    """

    reason: str
    seeds: int
    gain: Summary | None
    min_gain: float
    max_seeds: int
    verdict_seeds: int = 0

    @property
    def sentence(self) -> str:
        g = self.gain
        interval = (f"validation gain {g.mean:+.3f}, {round(g.confidence * 100)}% interval [{g.low:+.3f}, "
                    f"{g.high:+.3f}] over {g.n} paired seeds" if g is not None and g.n >= 2 else "")
        if self.reason == "baseline_leads":
            return f"The baseline leads on validation after {self.seeds} seeds: nothing to race."
        if self.reason == "better":
            more = (f" The leader and the baseline were then trained up to {self.verdict_seeds} seeds for the test."
                    if self.verdict_seeds > self.seeds else "")
            return f"Stopped at {self.seeds} seeds: the leader beats the baseline on validation ({interval}).{more}"
        if self.reason == "no_useful_gain":
            return (f"Stopped at {self.seeds} seeds: no gain of {self.min_gain} or more is left on validation "
                    f"({interval}).")
        return (f"Stopped at the budget of {self.max_seeds} seeds without a decision on validation"
                + (f" ({interval})." if interval else "."))

    def to_dict(self) -> dict[str, Any]:
        g = self.gain
        return {
            "rule": RULE, "reason": self.reason, "seeds": self.seeds, "max_seeds": self.max_seeds,
            "verdict_seeds": max(self.seeds, self.verdict_seeds), "min_gain": self.min_gain, "sentence": self.sentence,
            "validation_interval": None if g is None else {"mean": g.mean, "low": g.low, "high": g.high, "n": g.n},
        }


def race_stop(
    leader: Sequence[float], baseline: Sequence[float], *, leader_is_baseline: bool, seeds: int, mode: str,
    confidence: float, min_gain: float, max_seeds: int,
) -> RaceStop | None:
    """Why the race stops after a round, or None to train one more seed.

    Args:
        leader, baseline: the validation objective per paired seed (the same seeds, in order).
        leader_is_baseline: the baseline is the setting chosen so far.
        seeds: seeds per setting in this round.
        mode: ``"max"`` or ``"min"``.
        confidence, min_gain, max_seeds: ``confirm.confidence``, ``confirm.min_gain``, ``confirm.max_seeds``.

    Example:
        >>> race_stop([0.60, 0.61], [0.50, 0.505], leader_is_baseline=False, seeds=2, mode="max",
        ...           confidence=0.95, min_gain=0.01, max_seeds=4).reason
        'better'
        >>> race_stop([0.60, 0.50], [0.55, 0.55], leader_is_baseline=False, seeds=2, mode="max",
        ...           confidence=0.95, min_gain=0.01, max_seeds=4) is None
        True
    """
    if leader_is_baseline:
        return RaceStop("baseline_leads", seeds, None, min_gain, max_seeds)
    gain = None
    pairs = [(a, b) for a, b in zip(leader, baseline) if math.isfinite(a) and math.isfinite(b)]
    if len(pairs) >= 2:
        sign = 1.0 if mode == "max" else -1.0
        gain = paired_difference([sign * a for a, _ in pairs], [sign * b for _, b in pairs], confidence)
        if gain.low > 0:
            return RaceStop("better", seeds, gain, min_gain, max_seeds)
        if gain.high < min_gain:
            return RaceStop("no_useful_gain", seeds, gain, min_gain, max_seeds)
    if seeds >= max_seeds:
        return RaceStop("budget", seeds, gain, min_gain, max_seeds)
    return None


def verdict_seed_count(stop: RaceStop, verdict_seeds: int) -> int:
    """Seeds of the leader and the baseline for the test once the race stopped: ``confirm.verdict_seeds``
    after a leader better on validation, else the race's own seeds (never fewer).

    Example:
        >>> better = RaceStop("better", 3, None, 0.01, 4)
        >>> verdict_seed_count(better, 8), verdict_seed_count(better, 2)
        (8, 3)
        >>> verdict_seed_count(RaceStop("budget", 4, None, 0.01, 4), 8)
        4
    """
    return max(stop.seeds, verdict_seeds) if stop.reason == "better" else stop.seeds

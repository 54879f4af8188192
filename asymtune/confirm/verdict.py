"""The verdict: is the exported setting better than the baseline on the test split, at the stated
confidence? Said in words, with the interval, and with the smallest gain the budget could detect.

A gain counts only when the paired interval of ``selected - baseline`` (over the confirmation's
seeds, :func:`asymtune.confirm.stats.paired_difference`) excludes 0 in the better direction.
Otherwise the setting is "not better than the baseline at this confidence". The interval's
half-width, ``t_{(1 + c) / 2, n - 1} * sd(d) / sqrt(n)``, is the smallest gain that this number of
seeds could have told from 0 at the observed seed-to-seed spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from asymtune.confirm.stats import Summary

RULE = (
    "paired Student-t interval of (selected - baseline) over the confirmation's seeds on the test split; "
    "a gain counts only when the interval excludes 0"
)


@dataclass(frozen=True)
class Verdict:
    """The decision about one dataset's export.

    Attributes:
        metric: the test metric compared (the objective on the test split, e.g. ``test/mean_fg_dice``).
        mode: ``"max"`` or ``"min"`` (the objective's direction).
        seeds: the number of paired seeds.
        confidence: the interval's level.
        difference: the paired difference (None when nothing was confirmed).
        is_baseline: the export is the baseline itself.
        sentence: the verdict in words.
    """

    metric: str
    mode: str
    seeds: int
    confidence: float
    difference: Summary | None
    is_baseline: bool
    sentence: str

    @property
    def smallest_detectable_gain(self) -> float:
        """The interval's half-width (NaN with fewer than two seeds)."""
        if self.difference is None or self.difference.n < 2:
            return math.nan
        return (self.difference.high - self.difference.low) / 2

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 on the better side."""
        d = self.difference
        if self.is_baseline or d is None or d.n < 2 or not math.isfinite(d.low):
            return False
        return d.low > 0 if self.mode == "max" else d.high < 0

    def to_dict(self) -> dict[str, Any]:
        """The ``decision`` block of ``report.json`` and of an export's provenance."""
        d = self.difference
        return {
            "rule": RULE, "metric": self.metric, "mode": self.mode, "seeds_per_setting": self.seeds,
            "confidence": self.confidence,
            "interval": None if d is None else {"mean": d.mean, "low": d.low, "high": d.high},
            "smallest_detectable_gain": self.smallest_detectable_gain, "significant": self.significant,
            "verdict": self.sentence,
        }


def _signed(value: float) -> str:
    return f"{value:+.3f}" if math.isfinite(value) else "n/a"


def decide(metric: str, mode: str, confidence: float, difference: Summary | None, is_baseline: bool) -> Verdict:
    """The verdict on ``difference`` (selected - baseline on ``metric``, paired over seeds).

    Example:
        >>> from asymtune.confirm.stats import paired_difference
        >>> d = paired_difference([0.55, 0.57], [0.51, 0.52])
        >>> print(decide("test/mean_fg_dice", "max", 0.95, d, False).sentence)  # doctest: +NORMALIZE_WHITESPACE
        Not better than the baseline at 95% confidence: test/mean_fg_dice gain +0.045, 95% interval
        [-0.019, +0.109] over 2 paired seeds; with this spread these seeds could only have shown a gain
        above 0.064.
    """
    level = f"{round(confidence * 100)}%"
    if is_baseline:
        sentence = ("The export is the baseline itself: no asymmetric setting beat it on validation, so "
                    "nothing is claimed.")
    elif difference is None:
        sentence = (f"Not shown to be better than the baseline: the confirmation has no paired test result, "
                    f"so no {level} interval exists.")
    elif difference.n < 2:
        sentence = (f"Not shown to be better than the baseline: {metric} gain {_signed(difference.mean)} over 1 "
                    f"paired seed, which gives no {level} interval (confirm.seeds >= 2).")
    else:
        verdict = Verdict(metric, mode, difference.n, confidence, difference, False, "")
        interval = (f"{metric} gain {_signed(difference.mean)}, {level} interval "
                    f"[{_signed(difference.low)}, {_signed(difference.high)}] over {difference.n} paired seeds")
        worse = difference.high < 0 if mode == "max" else difference.low > 0
        if verdict.significant:
            sentence = f"Better than the baseline at {level} confidence: {interval}."
        elif worse:
            sentence = f"Worse than the baseline at {level} confidence: {interval}."
        else:
            sentence = (f"Not better than the baseline at {level} confidence: {interval}; with this spread these "
                        f"seeds could only have shown a gain above {verdict.smallest_detectable_gain:.3f}.")
    seeds = 0 if difference is None else difference.n
    return Verdict(metric, mode, seeds, confidence, difference, is_baseline, sentence)


def held_out_metric(objective: str) -> str:
    """The test-split key of a validation objective (``val/mean_fg_dice`` -> ``test/mean_fg_dice``).

    >>> held_out_metric("val/dice/lesion")
    'test/dice/lesion'
    """
    split, _, rest = objective.partition("/")
    return f"test/{rest}" if split == "val" and rest else objective

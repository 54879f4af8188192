"""Summaries over seeds: mean and spread of one setting, and the paired difference to the baseline.

The confirmation trains the selected setting and the baseline with the same seeds, so the
seeds pair them: for each class the differences ``d_s = selected_s - baseline_s`` over seeds
``s = 1..n`` give the mean difference and a Student-t interval

    mean(d) +- t_{(1 + confidence) / 2, n - 1} * sd(d) / sqrt(n)

(``sd`` with ``n - 1`` degrees of freedom). With one seed the interval is undefined (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """Mean and spread of one quantity over seeds.

    Attributes:
        mean: the mean over seeds.
        sd: the sample standard deviation (``n - 1`` degrees of freedom; NaN for one seed).
        low, high: the Student-t confidence interval of the mean (NaN for one seed).
        n: the number of seeds.
        confidence: the interval's confidence level.
    """

    mean: float
    sd: float
    low: float
    high: float
    n: int
    confidence: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high, "n": self.n,
                "confidence": self.confidence}


def t_summary(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, standard deviation and t-interval of ``values`` (NaN values are an error).

    Example:
        >>> s = t_summary([0.70, 0.72, 0.74])
        >>> round(s.mean, 3), round(s.sd, 3), round(s.high - s.mean, 3)
        (0.72, 0.02, 0.05)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: expected a value in (0, 1)")
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"values {array.tolist()}: expected at least one finite value")
    n = int(array.size)
    mean = float(array.mean())
    if n == 1:
        return Summary(mean, math.nan, math.nan, math.nan, 1, confidence)
    sd = float(array.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(mean, sd, mean - half, mean + half, n, confidence)


def paired_difference(selected: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> Summary:
    """:func:`t_summary` of ``selected[i] - baseline[i]`` (the same seed ``i`` on both sides)."""
    if len(selected) != len(baseline):
        raise ValueError(
            f"{len(selected)} selected values and {len(baseline)} baseline values: expected one pair per seed"
        )
    return t_summary([s - b for s, b in zip(selected, baseline)], confidence)

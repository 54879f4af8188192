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


def paired_bootstrap(
    selected: np.ndarray, baseline: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Summary:
    """Interval over test cases: the paired percentile bootstrap of the mean difference.

    The per-case differences ``d[s, i] = selected[s, i] - baseline[s, i]`` (seed ``s``, test case
    ``i``) are averaged over seeds and cases; each resample draws ``n`` cases with replacement (the
    same cases for every seed, keeping the pairing) and recomputes that mean. The interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means, ``sd``
    their standard deviation, ``n`` the number of cases. It answers a different question from
    :func:`paired_difference`: how much the gain depends on which test cases were drawn, for these
    trained models, where the seeds' interval asks how much it depends on the training's randomness.

    Args:
        selected, baseline: ``(seeds, cases)`` per-case values (the same cases, the same seeds).

    Example:
        >>> s = paired_bootstrap(np.array([[0.6, 0.7, 0.8]]), np.array([[0.5, 0.6, 0.7]]))
        >>> round(s.mean, 6), round(s.low, 6), round(s.high, 6), s.n
        (0.1, 0.1, 0.1, 3)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: expected a value in (0, 1)")
    a, b = np.asarray(selected, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] < 1:
        raise ValueError(f"selected {a.shape} and baseline {b.shape}: expected the same (seeds, cases) shape")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("per-case values: expected finite values only")
    per_case = (a - b).mean(axis=0)  # (cases,): the seeds' mean difference on each case
    cases = per_case.size
    draws = np.random.default_rng(seed).integers(0, cases, size=(resamples, cases))
    means = per_case[draws].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Summary(float(per_case.mean()), float(means.std(ddof=1)), float(low), float(high), cases, confidence)

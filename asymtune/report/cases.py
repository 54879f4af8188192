"""The export's gain over the baseline with an interval over test cases (a paired bootstrap), next
to the interval over seeds that the verdict uses.

Each tested confirmation run holds every test case's Dice per class as a metric series
(:data:`asymtune.results.layout.CASE_SERIES`, the case's index as the step). Per run, the mean
over foreground classes gives one value per case; the selected and baseline runs of each seed pair
them; :func:`asymtune.confirm.stats.paired_bootstrap` resamples the cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from asymtune.confirm.stats import paired_bootstrap
from asymtune.report.results import ConfirmedResults
from asymtune.results.layout import CASE_SERIES
from asymtune.tracking.confirmation import metric_series

METRIC = "mean foreground Dice per test case"


def _case_values(client: Any, run_id: str, foreground: Sequence[str]) -> np.ndarray | None:
    """``(cases,)`` mean over foreground classes of each case's Dice; None when not logged."""
    series = [metric_series(client, run_id, f"{CASE_SERIES}/{name}") for name in foreground]
    lengths = {len(values) for values in series}
    if len(lengths) != 1 or 0 in lengths:
        return None
    values: np.ndarray = np.asarray(series, dtype=np.float64).mean(axis=0)
    return values


def case_bootstrap(
    client: Any, results: ConfirmedResults, class_names: Sequence[str], confidence: float
) -> dict[str, Any] | None:
    """``report.json``'s ``decision.over_cases``: the paired bootstrap over test cases of
    selected - baseline (mean foreground case Dice, averaged over the confirmation's seeds), or
    None when a run has no per-case series (a sweep made before they were logged)."""
    sides = []
    for label in ("selected", "baseline"):
        values = [_case_values(client, run_id, class_names[1:]) for run_id in results.run_ids[label]]
        if any(v is None for v in values) or len({v.size for v in values if v is not None}) != 1:
            return None
        sides.append(np.stack([v for v in values if v is not None]))
    if sides[0].shape != sides[1].shape:
        return None
    summary = paired_bootstrap(sides[0], sides[1], confidence)
    return {"metric": METRIC, "resamples": 2000, "cases": summary.n, "seeds": len(results.seeds),
            **summary.to_dict()}


def case_sentence(entry: dict[str, Any]) -> str:
    """The bootstrap in words, e.g. ``Over test cases (paired bootstrap of 12 cases, 2 seeds): ...``."""
    level = f"{round(entry['confidence'] * 100)}%"
    return (f"Over test cases (paired bootstrap of the {entry['cases']} test cases, {entry['resamples']} "
            f"resamples, mean over {entry['seeds']} seeds): {entry['metric']} gain {entry['mean']:+.3f}, {level} "
            f"interval [{entry['low']:+.3f}, {entry['high']:+.3f}]. This interval says how much the gain depends on "
            "which test cases were drawn; the verdict's interval over seeds says how much it depends on training.")

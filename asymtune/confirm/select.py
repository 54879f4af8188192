"""Choose the setting to export: rank the sweep's trials on validation, then confirm over seeds.

Only validation metrics enter here; the test split is evaluated after the choice is made
(:mod:`asymtune.confirm.retrain`), so it cannot influence it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from asymtune.results.trials import TrialRecord

CONSTRAINTS = ("no_class_below_baseline",)
"""``no_class_below_baseline``: every foreground class's validation Dice at least the baseline's."""


def check_constraint(constraint: str | None) -> None:
    """Refuse an unknown ``selection.constraint``."""
    if constraint is not None and constraint not in CONSTRAINTS:
        raise ValueError(f"selection.constraint={constraint!r}: expected null or one of {list(CONSTRAINTS)}")


def _check_mode(mode: str) -> float:
    if mode not in ("max", "min"):
        raise ValueError(f"objective.mode={mode!r}: expected 'max' or 'min'")
    return 1.0 if mode == "max" else -1.0


def class_dice(values: Mapping[str, float], class_names: Sequence[str], prefix: str = "val") -> list[float]:
    """The ``{prefix}/dice/<class>`` values of the foreground classes (NaN where missing)."""
    return [float(values.get(f"{prefix}/dice/{name}", math.nan)) for name in class_names[1:]]


def meets_constraint(
    values: Mapping[str, float], baseline_values: Mapping[str, float] | None, constraint: str | None,
    class_names: Sequence[str],
) -> bool:
    """Whether validation ``values`` satisfy ``constraint`` against the baseline's (True without one)."""
    check_constraint(constraint)
    if constraint is None or baseline_values is None:
        return True
    ours, theirs = class_dice(values, class_names), class_dice(baseline_values, class_names)
    return all(a >= b for a, b in zip(ours, theirs))


def rank_trials(
    trials: Sequence[TrialRecord], metric: str, mode: str, constraint: str | None = None,
    baseline: TrialRecord | None = None,
) -> list[TrialRecord]:
    """Successful trials, best last-reported validation ``metric`` first.

    Trials that break ``constraint`` (judged against ``baseline``'s last validation values) are
    left out; the baseline itself always meets it. Ties go to the trial that trained more
    epochs, then to the earlier trial.
    """
    sign = _check_mode(mode)
    check_constraint(constraint)
    reference = baseline.last if baseline is not None else None
    names = trials[0].spec.class_names if trials else ()
    candidates = [
        t for t in trials
        if t.error is None and not math.isnan(t.objective(metric))
        and (t is baseline or meets_constraint(t.last, reference, constraint, names))
    ]
    order = {id(t): i for i, t in enumerate(trials)}
    return sorted(candidates, key=lambda t: (-sign * t.objective(metric), -t.epochs, order[id(t)]))


def select_best(
    trials: Sequence[TrialRecord], metric: str, mode: str, constraint: str | None = None,
    baseline: TrialRecord | None = None,
) -> TrialRecord | None:
    """The first trial of :func:`rank_trials`, or None when no trial has a result."""
    ranked = rank_trials(trials, metric, mode, constraint, baseline)
    return ranked[0] if ranked else None


def find_baseline(trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The first successful trial with no asymmetry (cross-entropy + soft Dice)."""
    for trial in trials:
        if trial.settings.is_baseline and trial.error is None and trial.history:
            return trial
    return None


def select_confirmed(
    runs: Mapping[str, Sequence[Mapping[str, float]]], baseline_key: str, metric: str, mode: str,
    constraint: str | None, class_names: Sequence[str],
) -> str:
    """The confirmed choice among retrained settings, from their validation metrics only.

    Args:
        runs: per setting (in the sweep's ranking order, baseline included) the validation
            metrics of each seed.
        baseline_key: the baseline's key in ``runs``.
        metric, mode: the objective; the mean over seeds is compared.
        constraint: as in :func:`rank_trials`, on the per-class means over seeds.
        class_names: the dataset's classes (background first).

    Returns:
        the key of the setting with the best mean objective that meets the constraint (ties go
        to the earlier key); the baseline when nothing else qualifies.
    """
    sign = _check_mode(mode)

    def mean(key: str) -> dict[str, float]:
        names = {name for seed in runs[key] for name in seed}
        return {name: float(np.mean([seed.get(name, math.nan) for seed in runs[key]])) for name in names}

    means = {key: mean(key) for key in runs if runs[key]}
    reference = means.get(baseline_key)
    best, best_value = baseline_key, -math.inf
    for key, values in means.items():
        value = sign * values.get(metric, math.nan)
        if math.isnan(value):
            continue
        if key != baseline_key and not meets_constraint(values, reference, constraint, class_names):
            continue
        if value > best_value:
            best, best_value = key, value
    return best


def pareto_front(points: Mapping[str, Sequence[float]]) -> list[str]:
    """Keys of the points no other point dominates (every coordinate maximised).

    Example:
        >>> pareto_front({"a": [0.8, 0.2], "b": [0.5, 0.5], "c": [0.4, 0.4]})
        ['a', 'b']
    """
    front = []
    for key, values in points.items():
        dominated = any(
            all(o >= v for o, v in zip(other, values)) and any(o > v for o, v in zip(other, values))
            for other_key, other in points.items() if other_key != key
        )
        if not dominated:
            front.append(key)
    return front


def classes_disagree(points: Mapping[str, Sequence[float]]) -> bool:
    """True when no single point is best for every coordinate (the Pareto front has several points)."""
    return len(pareto_front(points)) > 1

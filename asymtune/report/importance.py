"""How much each searched value matters for each class: Optuna's PED-ANOVA importance per class.

The sweep's Optuna study stores one objective per trial; the per-class validation Dice of each
trial comes from Ray Tune's results (:class:`asymtune.results.trials.TrialRecord`). For each
foreground class an in-memory study is built from the trials' searched values and that class's
Dice, and ``optuna.importance.get_param_importances`` with ``PedAnovaImportanceEvaluator``
(Watanabe et al., IJCAI 2023) says which values separate the best trials from the rest. PED-ANOVA
needs no extra package (fANOVA needs scikit-learn) and works from a handful of trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from asymtune.results.trials import TrialRecord
from asymtune.search.space import SearchSpace

MIN_TRIALS = 3
"""Fewer trials with a result than this and no importance is computed (PED-ANOVA needs two
trials in its top quantile and at least one more in the region around it)."""


def distributions(trial: TrialRecord) -> dict[str, BaseDistribution]:
    """The Optuna distribution of every searched value of the sweep ``trial`` belongs to."""
    spec = trial.spec
    space = SearchSpace.from_mapping(spec.space, spec.space_path).bind(spec.class_names, spec.rare)
    result: dict[str, BaseDistribution] = {}
    for dim in space.dimensions:
        if dim.low == dim.high and dim.type in ("float", "int"):
            continue  # a value that cannot vary has no importance
        if dim.type == "float":
            result[dim.key] = FloatDistribution(dim.low, dim.high, log=dim.log)
        elif dim.type == "int":
            result[dim.key] = IntDistribution(int(dim.low), int(dim.high), log=dim.log)
        elif dim.type == "categorical":
            result[dim.key] = CategoricalDistribution(list(dim.choices))
        else:
            result[dim.key] = CategoricalDistribution([False, True])
    return result


def class_importances(trials: Sequence[TrialRecord], class_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{class: {searched value: importance}}`` (each class's importances sum to 1) from the trials'
    last validation Dice; empty when fewer than :data:`MIN_TRIALS` trials have a result."""
    finished = [t for t in trials if t.error is None and t.history]
    if len(finished) < MIN_TRIALS:
        return {}
    dists = distributions(finished[0])
    result: dict[str, dict[str, float]] = {}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per class
    try:
        for name in class_names[1:]:
            _add_class(result, name, finished, dists)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return result


def _add_class(
    result: dict[str, dict[str, float]], name: str, finished: Sequence[TrialRecord], dists: dict[str, BaseDistribution]
) -> None:
    """Add ``result[name]``: the importances for one class's validation Dice."""
    study = optuna.create_study(direction="maximize")
    for trial in finished:
        value = trial.last.get(f"val/dice/{name}")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        params = {key: _cast(trial.config[key], dist) for key, dist in dists.items() if key in trial.config}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: dists[k] for k in params}, value=float(value)
        ))
    if len(study.trials) < MIN_TRIALS:
        return
    with warnings.catch_warnings():  # "importances will be equal" when the Dice does not vary
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    # most important first; ties by name, not by Optuna's order of them (a set's: it differs between
    # processes, and so would report.json)
    ranked = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    result[name] = {key: float(value) for key, value in ranked}


def _cast(value: object, dist: BaseDistribution) -> object:
    if isinstance(dist, FloatDistribution):
        return float(value)  # type: ignore[arg-type]
    if isinstance(dist, IntDistribution):
        return int(value)  # type: ignore[call-overload]
    return value


def searched_keys(trials: Sequence[TrialRecord]) -> list[str]:
    """The searched values (Optuna parameter names) that vary in the sweep, in space order."""
    finished = [t for t in trials if t.history]
    return list(distributions(finished[0])) if finished else []

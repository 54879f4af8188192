"""How well did ASHA's rungs predict the final ranking, what did the sweep do about it, and would a
method-aware early signal have predicted better? Measured on the sweep's own trials.

For each rung (an epoch where the scheduler may stop a trial, before the last epoch):

- ``rho``, ``pairs``, ``per_class``: the Spearman rank correlation between the trials' validation
  values at the rung and at the last epoch, over the trials that reached both; for the objective
  and for each foreground class's Dice. Near 0 or below: the rung ranked trials no better than
  chance. Trials stopped at a rung never reach the last epoch, so it is measured among the trials
  let through (a truncated sample).
- ``action``: what the fidelity-checked scheduler (:mod:`asymtune.search.scheduler`) did at the
  rung, read from the decisions it wrote into the trials' histories (``rung/...``): the action of
  its last decision about a trial that was not a probe (``kept``: the rung stopped trials by ASHA's
  rule; ``disabled``: its rho was below ``search.scheduler.min_rho``, every trial passed; ``not
  enough pairs``), with the rho and pairs it decided on (``decided_with``), how many decisions of
  each kind it made (``decisions``) and how many trials it stopped (``stopped``).
- ``signals``: the rho against the final objective of early signals that reflect the method,
  beside the objective's own, each at the rung's epoch (:data:`SIGNALS`); ``best_signal`` names the
  one that predicted best, the objective unless another did strictly better. The scheduler stops on
  the objective either way: the comparison says whether another signal would be worth using.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from asymtune.results.trials import TrialRecord
from asymtune.search.scheduler import ACTIONS, PROBE, RUNG_ACTION, RUNG_PAIRS, RUNG_RHO, RUNG_STOPPED, spearman

__all__ = ["NOT_CHECKED", "PROBES_ONLY", "SIGNALS", "rung_fidelity", "spearman"]

NOT_CHECKED = "none recorded: the sweep's scheduler did not check its rungs"
PROBES_ONLY = "probe trials only: none stopped"

SIGNALS = {
    "objective": "the objective at the rung (what the scheduler ranks by)",
    "rare_val_margin": "median validation boundary distance of the rare classes' voxels (diag/median_val)",
    "rare_logit_shift": "minus the rare classes' logit shift, train median - validation median (diag/shift)",
    "rare_sensitivity": "validation sensitivity of the rare classes",
    "curve_fit": "the objective extrapolated to the last epoch by a + b log(epoch) fitted on epochs 1..rung",
}
"""Early signals measured against the final objective, each higher = expected better; rare classes
are the dataset's (all foreground classes when it names none), averaged."""


def _number(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan


def _row_at(trial: TrialRecord, epoch: int) -> dict[str, Any]:
    """The trial's first result at ``epoch`` (a restarted trial may have reported it twice)."""
    return next((row for row in trial.history if row.get("training_iteration") == epoch), {})


def _value_at(trial: TrialRecord, epoch: int, key: str) -> float:
    return _number(_row_at(trial, epoch).get(key))


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.nan


def _curve_fit(trial: TrialRecord, epoch: int, last: int, metric: str) -> float:
    """The objective at ``last`` predicted by least squares ``a + b ln(t)`` over epochs 1..``epoch``."""
    points = [(t, _value_at(trial, t, metric)) for t in range(1, epoch + 1)]
    points = [(t, v) for t, v in points if math.isfinite(v)]
    if len(points) < 2:
        return math.nan
    slope, intercept = np.polyfit(np.log([t for t, _ in points]), [v for _, v in points], 1)
    return float(intercept + slope * math.log(last))


def _signal(name: str, trial: TrialRecord, epoch: int, last: int, metric: str, rare: Sequence[str]) -> float:
    if name == "objective":
        return _value_at(trial, epoch, metric)
    if name == "curve_fit":
        return _curve_fit(trial, epoch, last, metric)
    key = {"rare_val_margin": "diag/median_val", "rare_logit_shift": "diag/shift",
           "rare_sensitivity": "val/sensitivity"}[name]
    value = _mean([_value_at(trial, epoch, f"{key}/{c}") for c in rare])
    return -value if name == "rare_logit_shift" else value


def _correlation(early: Sequence[float], final: Sequence[float]) -> tuple[float, int]:
    points = [(a, b) for a, b in zip(early, final) if math.isfinite(a) and math.isfinite(b)]
    return spearman([a for a, _ in points], [b for _, b in points]), len(points)


def _decisions(trials: Sequence[TrialRecord], epoch: int) -> dict[str, Any]:
    """The scheduler's decisions at the rung, read from the trials' results at ``epoch``."""
    made = []
    for index, trial in enumerate(trials):
        row = _row_at(trial, epoch)
        if isinstance(row.get(RUNG_ACTION), str):
            pairs = _number(row.get(RUNG_PAIRS))
            made.append((int(pairs) if math.isfinite(pairs) else 0, _number(row.get("timestamp")), index, row))
    counts = {action: sum(1 for *_, row in made if row[RUNG_ACTION] == action) for action in ACTIONS}
    stopped = sum(1 for *_, row in made if isinstance(row.get(RUNG_STOPPED), (bool, np.bool_)) and row[RUNG_STOPPED])
    judged = sorted((m for m in made if m[3][RUNG_ACTION] != PROBE), key=lambda m: (m[0], np.nan_to_num(m[1]), m[2]))
    if not made:
        return {"action": NOT_CHECKED, "decided_with": None, "decisions": counts, "stopped": 0}
    if not judged:
        return {"action": PROBES_ONLY, "decided_with": None, "decisions": counts, "stopped": stopped}
    last = judged[-1][3]  # pairs only grow during a sweep: the most pairs is the latest state
    return {
        "action": last[RUNG_ACTION], "decided_with": {"rho": _number(last.get(RUNG_RHO)), "pairs": judged[-1][0]},
        "decisions": counts, "stopped": stopped,
    }


def rung_fidelity(trials: Sequence[TrialRecord], metric: str, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per rung: ``{"epoch", "rho", "pairs", "per_class": {class: rho}, "action",
    "decided_with", "decisions", "stopped", "signals": {name: {"rho", "pairs"}}, "best_signal"}``
    (see the module's docstring).

    The rungs and the last epoch come from the trials' contract (``decision_epochs``, ``train.epochs``).
    """
    finished = [t for t in trials if t.error is None and t.history]
    if not finished:
        return []
    spec = finished[0].spec
    last = spec.epochs
    rare = [class_names[i] for i in spec.rare if 0 < i < len(class_names)] or list(class_names[1:])
    final = [_value_at(t, last, metric) for t in finished]
    entries = []
    for epoch in (e for e in spec.decision_epochs if e < last):
        per_class = {
            c: _correlation([_value_at(t, epoch, f"val/dice/{c}") for t in finished],
                            [_value_at(t, last, f"val/dice/{c}") for t in finished])[0]
            for c in class_names[1:]
        }
        signals = {}
        for name in SIGNALS:
            rho, pairs = _correlation([_signal(name, t, epoch, last, metric, rare) for t in finished], final)
            signals[name] = {"rho": rho, "pairs": pairs}
        base = signals["objective"]["rho"]
        better = [n for n, s in signals.items() if math.isfinite(s["rho"]) and math.isfinite(base) and s["rho"] > base]
        entries.append({
            "epoch": epoch, "rho": base, "pairs": signals["objective"]["pairs"], "per_class": per_class,
            **_decisions([t for t in trials if t.history], epoch),
            "signals": signals,
            "best_signal": max(better, key=lambda n: signals[n]["rho"]) if better else
            ("objective" if math.isfinite(base) else None),
        })
    return entries

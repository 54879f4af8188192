"""The honest rivals of the export (method.md section 8), on the test split, paired by seed.

- ``baseline``: cross-entropy + soft Dice, no asymmetry (the confirmation's baseline runs);
- the rivals of ``confirm.rivals`` (the authors' fixed defaults, plain losses, the baseline's
  models with per-class logit offsets fitted on the validation split: :mod:`asymtune.confirm.rivals`),
  tested after the choice like the baseline (the logit-offset rival with its offsets per seed);
- ``export``: the exported setting (``is`` says what it is: a tuned trial, a rival, the baseline).

Each rival gets its test objective over seeds, its paired interval against the baseline, and the
export's paired interval against it, over the seeds it shares with them: the race's seeds (the
export and the baseline may have more, ``confirm.verdict_seeds``). The best rival is the one with
the largest paired gain over the baseline.
"""

from __future__ import annotations

import math
from typing import Any

from asymtune.confirm.jobs import OFFSET_METRIC
from asymtune.confirm.retrain import Confirmation
from asymtune.confirm.rivals import RIVALS
from asymtune.confirm.stats import paired_difference, t_summary
from asymtune.report.results import ConfirmedResults


def rivals(
    confirmation: Confirmation, results: ConfirmedResults, metric: str, class_names: tuple[str, ...],
    confidence: float,
) -> list[dict[str, Any]]:
    """The rivals' entries of ``report.json`` (see the module docstring), for the test ``metric``."""
    seeds = results.seeds
    baseline = results.values["baseline"].get(metric)
    export = results.values["selected"].get(metric)
    if baseline is None or export is None or not all(math.isfinite(v) for v in baseline + export):
        return []
    entries: list[dict[str, Any]] = [{
        "name": "baseline", "description": "cross-entropy + soft Dice, no asymmetry", "values": baseline,
        "seeds": seeds, "test": t_summary(baseline, confidence).to_dict(), "vs_baseline": None,
        "export_vs_it": paired_difference(export, baseline, confidence).to_dict(),
    }]
    exported_rival = confirmation.rival_of(confirmation.selected)
    for name, trial in confirmation.rivals.items():
        if trial.trial_id == confirmation.selected:
            continue  # the export itself
        tested = {run.seed: run for run in confirmation.runs_of(trial.trial_id) if run.tested}
        shared = [s for s in seeds if s in confirmation.seeds_of(trial.trial_id)]
        values = [float(tested[s].metrics.get(metric, math.nan)) if s in tested else math.nan for s in shared]
        if not values or not all(math.isfinite(v) for v in values):
            continue  # not tested on every seed (an interrupted or failed confirmation: the notes say so)
        at = [seeds.index(s) for s in shared]
        entry = {
            "name": name, "description": RIVALS[name].description, "trial_id": trial.trial_id, "values": values,
            "seeds": shared, "test": t_summary(values, confidence).to_dict(),
            "vs_baseline": paired_difference(values, [baseline[i] for i in at], confidence).to_dict(),
            "export_vs_it": paired_difference([export[i] for i in at], values, confidence).to_dict(),
        }
        if RIVALS[name].offsets:
            entry["offsets"] = _offsets(confirmation, trial.trial_id, shared, class_names)
        entries.append(entry)
    if exported_rival is not None:
        what = f"the rival {exported_rival}: {RIVALS[exported_rival].description}"
    elif confirmation.selected == confirmation.baseline:
        what = "the baseline"
    else:
        what = f"the tuned setting of trial {confirmation.selected}"
    entries.append({
        "name": "export", "description": f"the exported setting ({what})", "is": exported_rival or (
            "baseline" if confirmation.selected == confirmation.baseline else "tuned"),
        "trial_id": confirmation.selected, "values": export, "seeds": seeds,
        "test": t_summary(export, confidence).to_dict(),
        "vs_baseline": paired_difference(export, baseline, confidence).to_dict(), "export_vs_it": None,
        **({"offsets": _offsets(confirmation, confirmation.selected, seeds, class_names)}
           if exported_rival is not None and RIVALS[exported_rival].offsets else {}),
    })
    return entries


def _offsets(
    confirmation: Confirmation, trial_id: str, seeds: list[int], class_names: tuple[str, ...]
) -> dict[str, list[float]]:
    """``{class: [the logit offset fitted on validation, per seed]}`` of a setting with ``train.logit_offsets``."""
    tested = {run.seed: run for run in confirmation.runs_of(trial_id) if run.tested}
    return {name: [float(tested[seed].metrics.get(f"{OFFSET_METRIC}/{name}", math.nan)) if seed in tested
                   else math.nan for seed in seeds] for name in class_names[1:]}


def best_rival(entries: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """The rival (not the export) with the best mean paired test gain over the baseline (the
    baseline's own is 0): rivals may have fewer seeds than the baseline, so their means are
    compared on their shared seeds."""
    others = [e for e in entries if e["name"] != "export"]
    if not others:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(others, key=lambda e: sign * (e["vs_baseline"]["mean"] if e["vs_baseline"] else 0.0))


def rivals_sentence(entries: list[dict[str, Any]], mode: str, confidence: float) -> str | None:
    """What the export is and how it stands against the best rival, in words (None without rivals).

    Example: ``the export (the tuned setting of trial 3) against the best rival, authors_focal:
    +0.021 [-0.012, +0.054] test Dice, not better at 95%``.
    """
    export = next((e for e in entries if e["name"] == "export"), None)
    best = best_rival(entries, mode)
    if export is None or best is None:
        return None
    d = best["export_vs_it"]
    level = f"{round(confidence * 100)}%"
    better = d["n"] >= 2 and math.isfinite(d["low"]) and (d["low"] > 0 if mode == "max" else d["high"] < 0)
    worse = d["n"] >= 2 and math.isfinite(d["low"]) and (d["high"] < 0 if mode == "max" else d["low"] > 0)
    judgement = f"better at {level}" if better else f"worse at {level}" if worse else f"not better at {level}"
    return (f"{export['description'].replace('the exported setting', 'the export')} against the best rival, "
            f"{best['name']}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}], {judgement}")

"""The honest rivals of the export (method.md section 8), on the test split, paired by seed.

- ``baseline``: cross-entropy + soft Dice, no asymmetry (the confirmation's baseline runs);
- ``logit_offset``: the baseline's own models with per-class logit offsets fitted on the
  validation split (:mod:`asymtune.train.offsets`; logged on the baseline runs at test time);
- ``export``: the exported setting.

Each rival gets its test objective over seeds, its paired interval against the baseline, and the
export's paired interval against it.
"""

from __future__ import annotations

import math
from typing import Any

from asymtune.confirm.retrain import OFFSET_RIVAL, Confirmation
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
        "test": t_summary(baseline, confidence).to_dict(), "vs_baseline": None,
        "export_vs_it": paired_difference(export, baseline, confidence).to_dict(),
    }]
    runs = {run.seed: run for run in confirmation.runs_of(confirmation.baseline) if run.tested}
    offset = [float(runs[s].metrics.get(f"{OFFSET_RIVAL}/{metric}", math.nan)) if s in runs else math.nan
              for s in seeds]
    if all(math.isfinite(v) for v in offset):
        entries.append({
            "name": "logit_offset",
            "description": "the baseline's models with per-class logit offsets fitted on the validation split",
            "offsets": {name: [float(runs[s].metrics.get(f"{OFFSET_RIVAL}/offset/{name}", math.nan)) for s in seeds]
                        for name in class_names[1:]},
            "values": offset, "test": t_summary(offset, confidence).to_dict(),
            "vs_baseline": paired_difference(offset, baseline, confidence).to_dict(),
            "export_vs_it": paired_difference(export, offset, confidence).to_dict(),
        })
    entries.append({
        "name": "export", "description": "the exported setting", "values": export,
        "test": t_summary(export, confidence).to_dict(),
        "vs_baseline": paired_difference(export, baseline, confidence).to_dict(), "export_vs_it": None,
    })
    return entries


def best_rival(entries: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """The rival (not the export) with the best mean test value."""
    others = [e for e in entries if e["name"] != "export"]
    if not others:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(others, key=lambda e: sign * e["test"]["mean"])

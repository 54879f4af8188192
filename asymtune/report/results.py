"""The confirmed numbers of one dataset: per class and metric, the selected setting and the
baseline over seeds (mean, spread, interval) and their paired difference, read from the
confirmation's MLflow runs (:class:`asymtune.confirm.retrain.Confirmation`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asymtune.confirm.retrain import Confirmation
from asymtune.confirm.stats import Summary, paired_difference, t_summary
from asymtune.method.settings import AsymmetrySettings
from asymtune.results.trials import TrialRecord

TABLE_METRICS = (("dice", "Dice"), ("sensitivity", "sensitivity"), ("precision", "precision"), ("hd95", "HD95 (mm)"))
"""Per-class test metrics of the report: Dice, sensitivity, precision over the pooled voxels of
the test cases, HD95 the mean over test cases (lower is better)."""


def metric_key(metric: str, class_name: str | None, split: str = "test") -> str:
    """``test/dice/<class>``, or ``test/mean_fg_dice`` for the mean over foreground classes (None)."""
    return f"{split}/mean_fg_{metric}" if class_name is None else f"{split}/{metric}/{class_name}"


@dataclass
class ConfirmedResults:
    """Test (and validation) numbers of the selected setting and the baseline over paired seeds.

    Attributes:
        seeds: the seeds tested on both sides, in order.
        values: ``{"selected" | "baseline": {metric key: [one value per seed]}}``.
        summaries: the same as :class:`Summary` (mean, sd, t-interval).
        differences: ``{metric key: Summary}`` of ``selected - baseline`` over the paired seeds.
        run_ids: ``{"selected" | "baseline": [MLflow run id per seed]}``.
    """

    seeds: list[int]
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Summary]] = field(default_factory=dict)
    differences: dict[str, Summary] = field(default_factory=dict)
    run_ids: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "run_ids": self.run_ids,
            "test": {
                label: {
                    key: {"values": self.values[label][key], **summary.to_dict()} for key, summary in per_key.items()
                }
                for label, per_key in self.summaries.items()
            },
            "difference": {key: summary.to_dict() for key, summary in self.differences.items()},
        }


def confirmed_results(
    confirmation: Confirmation, class_names: Sequence[str], objective: str, confidence: float
) -> ConfirmedResults | None:
    """The numbers of the tested seeds that both sides share; None when no seed is tested on both."""
    sides = {"selected": confirmation.selected, "baseline": confirmation.baseline}
    runs = {
        label: {run.seed: run for run in confirmation.runs_of(trial) if run.tested} for label, trial in sides.items()
    }
    seeds = [seed for seed in confirmation.seeds_of(confirmation.baseline)
             if seed in runs["selected"] and seed in runs["baseline"]]
    if not seeds:
        return None
    keys = [metric_key(metric, name) for metric, _ in TABLE_METRICS for name in [*class_names[1:], None]]
    keys += [objective]  # the validation objective of the same models, for the summary
    result = ConfirmedResults(seeds=seeds)
    for label in sides:
        result.run_ids[label] = [runs[label][seed].run_id for seed in seeds]
        result.values[label] = {
            key: [float(runs[label][seed].metrics.get(key, math.nan)) for seed in seeds] for key in keys
        }
        result.summaries[label] = {
            key: t_summary(values, confidence) for key, values in result.values[label].items()
            if all(math.isfinite(v) for v in values)
        }
    for key in result.summaries["selected"]:
        if key in result.summaries["baseline"]:
            result.differences[key] = paired_difference(
                result.values["selected"][key], result.values["baseline"][key], confidence
            )
    return result


def describe_settings(settings: AsymmetrySettings, class_names: Sequence[str]) -> str:
    """A one-line, human description: only the techniques that are switched on.

    Example: ``margin 1.00 (organ_lesion, duct); focal gamma 4.00 (organ); mixup alpha 0.20, mu 0.20``.
    """
    if settings.is_baseline:
        return "baseline (cross-entropy + soft Dice, no asymmetry)"
    parts = []
    for name, vector in (("margin", settings.margin), ("focal gamma", settings.gamma)):
        groups: dict[float, list[str]] = {}
        for cls, value in zip(class_names, vector):
            if value:
                groups.setdefault(round(float(value), 4), []).append(cls)
        parts += [f"{name} {value:.2f} ({', '.join(classes)})" for value, classes in groups.items()]
    rare = [cls for cls, flag in zip(class_names, settings.rare) if flag]
    if settings.mixup_alpha > 0:
        parts.append(f"mixup alpha {settings.mixup_alpha:.2f}, mu {settings.mixup_margin:.2f}")
    if settings.adv_eps > 0:
        parts.append(f"adversarial eps {settings.adv_eps:.3g}")
    if settings.aug_p_bg < 1:
        parts.append(f"augmentation p_bg {settings.aug_p_bg:.2f}")
    if rare and (settings.mixup_alpha > 0 or settings.adv_eps > 0 or settings.aug_p_bg < 1):
        parts.append(f"rare: {', '.join(rare)}")
    return "; ".join(parts)


def describe_trial(trial: TrialRecord, class_names: Sequence[str]) -> str:
    """:func:`describe_settings`, plus what the trial trains differently from the sweep's contract:
    a plain loss (the ``weighted_ce`` rival, ...) and logit offsets fitted on validation.

    Example: ``baseline (cross-entropy + soft Dice, no asymmetry) + per-class logit offsets fitted on
    the validation split``.
    """
    text = describe_settings(trial.settings, class_names)
    train = trial.spec.train if trial.config else {}
    loss = train.get("loss", "asymmetric")
    if loss not in ("asymmetric", "ce_dice"):
        text = f"loss {loss}" if trial.settings.is_baseline else f"{text}; loss {loss}"
    if train.get("logit_offsets"):
        text += " + per-class logit offsets fitted on the validation split"
    return text

"""Per-class segmentation metrics from confusion counts.

Counts are accumulated over every voxel of a split (all cases pooled), so a small class's
score is not dominated by cases where it is tiny. Conventions for empty sets: a class absent from
both prediction and label has Dice 1, sensitivity 1 and precision 1; a class present in the
label but never predicted has precision 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ConfusionCounts:
    """True positives, false positives, false negatives per class, each ``(C,)`` float64."""

    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def confusion_counts(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> ConfusionCounts:
    """Counts per class for hard label maps.

    Args:
        prediction: ``(B, *spatial)`` int64 predicted classes.
        target: ``(B, *spatial)`` int64 true classes.
        num_classes: ``C``.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    pair = (target.reshape(-1) * num_classes + prediction.reshape(-1)).to(torch.int64)
    matrix = torch.bincount(pair, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    matrix = matrix.to(torch.float64)  # rows: true class, columns: predicted class
    tp = matrix.diagonal()
    return ConfusionCounts(tp=tp, fp=matrix.sum(0) - tp, fn=matrix.sum(1) - tp)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, numerator / safe, empty)


def per_class_scores(counts: ConfusionCounts) -> dict[str, torch.Tensor]:
    """Dice, sensitivity and precision per class, each ``(C,)`` float64."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    ones = torch.ones_like(tp)
    label_present = (tp + fn) > 0
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, ones),
        "sensitivity": _ratio(tp, tp + fn, ones),
        "precision": _ratio(tp, tp + fp, torch.where(label_present, torch.zeros_like(tp), ones)),
    }


def metrics_dict(counts: ConfusionCounts, class_names: tuple[str, ...], prefix: str) -> dict[str, float]:
    """Flat metrics ``{prefix}/{metric}/{class}`` for foreground classes and ``{prefix}/mean_fg_dice``."""
    scores = per_class_scores(counts)
    flat: dict[str, float] = {}
    for metric, values in scores.items():
        for index in range(1, len(class_names)):
            flat[f"{prefix}/{metric}/{class_names[index]}"] = float(values[index])
    flat[f"{prefix}/mean_fg_dice"] = float(scores["dice"][1:].mean())
    flat[f"{prefix}/mean_fg_sensitivity"] = float(scores["sensitivity"][1:].mean())
    flat[f"{prefix}/mean_fg_precision"] = float(scores["precision"][1:].mean())
    return flat

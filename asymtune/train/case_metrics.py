"""Per-case segmentation metrics: Dice, sensitivity, precision and the 95th percentile Hausdorff
distance (HD95) per case and class.

Conventions (documented in docs/method.md):
- a class absent from both the prediction and the label of a case is a correct "nothing":
  Dice, sensitivity and precision 1, HD95 0;
- a class present in only one of them: Dice 0, and HD95 the diagonal of the case in mm (the
  largest distance the case allows), so a missed structure is penalised, never skipped;
- HD95 is MONAI's symmetric surface distance percentile with the case's voxel spacing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from asymtune.monai_import import monai_module
from asymtune.train.metrics import confusion_counts, per_class_scores

CASE_METRICS = ("dice", "sensitivity", "precision", "hd95")


def hd95(prediction: torch.Tensor, target: torch.Tensor, num_classes: int, spacing: Sequence[float]) -> np.ndarray:
    """HD95 in mm of every foreground class, ``(C - 1,)`` float64.

    Args:
        prediction: ``(*spatial)`` int64 predicted classes of one case.
        target: ``(*spatial)`` int64 true classes.
        num_classes: ``C``.
        spacing: voxel size along each spatial axis (mm).
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(target.shape, spacing)))
    values = np.zeros(num_classes - 1)
    for cls in range(1, num_classes):
        in_prediction, in_target = prediction == cls, target == cls
        has_prediction, has_target = bool(in_prediction.any()), bool(in_target.any())
        if not has_prediction and not has_target:
            values[cls - 1] = 0.0
        elif has_prediction != has_target:
            values[cls - 1] = diagonal
        else:
            compute_hausdorff_distance = monai_module("monai.metrics").compute_hausdorff_distance  # on first use

            with warnings.catch_warnings():  # MONAI warns about its own use of a deprecated argument
                warnings.simplefilter("ignore", FutureWarning)
                distance = compute_hausdorff_distance(
                    in_prediction[None, None].float(), in_target[None, None].float(),
                    include_background=True, percentile=95, spacing=[float(s) for s in spacing],
                )
            values[cls - 1] = float(distance.reshape(-1)[0])
    return values


def case_scores(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, spacing: Sequence[float]
) -> dict[str, np.ndarray]:
    """``{metric: (C - 1,) values}`` for one case, metrics :data:`CASE_METRICS`."""
    scores = {
        name: values[1:].numpy()
        for name, values in per_class_scores(confusion_counts(prediction, target, num_classes)).items()
    }
    scores["hd95"] = hd95(prediction, target, num_classes, spacing)
    return scores


def case_metrics_dict(
    per_case: list[dict[str, np.ndarray]], class_names: tuple[str, ...], prefix: str
) -> dict[str, float]:
    """Means over cases as flat metrics ``{prefix}/case_{metric}/{class}`` (HD95: ``{prefix}/hd95/{class}``)."""
    flat: dict[str, float] = {}
    for metric in CASE_METRICS:
        stacked = np.stack([case[metric] for case in per_case])  # (cases, C - 1)
        key = "hd95" if metric == "hd95" else f"case_{metric}"
        for index, name in enumerate(class_names[1:]):
            flat[f"{prefix}/{key}/{name}"] = float(stacked[:, index].mean())
        flat[f"{prefix}/mean_fg_{key}"] = float(stacked.mean())
    return flat

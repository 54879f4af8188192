"""Logit-shift diagnostics of a trained model (method.md section 4).

For every foreground class: the signed boundary distance of its voxels on the training split and
on a held-out split, their medians, the shift between them, the share across the boundary and a
1-Wasserstein distance.
"""

from __future__ import annotations

import numpy as np
import torch

from asymtune.data.base import Split
from asymtune.method import boundary_distance, logit_shift_summary
from asymtune.train.trainer import SplitLogits, Trainer

SUMMARY_KEYS = ("median_train", "median_val", "shift", "frac_negative_train", "frac_negative_val", "wasserstein")


def split_distances(trainer: Trainer, split: Split, logits: SplitLogits | None = None) -> dict[str, np.ndarray]:
    """Boundary distance of every voxel of each foreground class, ``{class: (K,) float32}``, over
    all cases of ``split``.

    ``logits`` of ``split`` (as :meth:`Trainer.predict_logits` returns them) may be passed when
    already computed.
    """
    logits = trainer.predict_logits(split) if logits is None else logits
    names = trainer.dataset.class_names
    if isinstance(logits, torch.Tensor):
        target = torch.from_numpy(np.asarray(split.labels)).to(torch.int64)
        return {names[c]: boundary_distance(logits, target, c).numpy() for c in range(1, len(names))}
    per_case: dict[str, list[np.ndarray]] = {names[c]: [] for c in range(1, len(names))}
    for case_logits, (_, label) in zip(logits, split.cases()):
        target = torch.from_numpy(np.array(label, dtype=np.int64))[None]
        for c in range(1, len(names)):
            per_case[names[c]].append(boundary_distance(case_logits[None], target, c).numpy())
    return {name: np.concatenate(values) for name, values in per_case.items()}


def shift_metrics(
    train: dict[str, np.ndarray], held_out: dict[str, np.ndarray], prefix: str = "diag"
) -> dict[str, float]:
    """Flat ``{prefix}/{summary}/{class}`` metrics, summaries as in :func:`logit_shift_summary`."""
    metrics = {}
    for name in train:
        summary = logit_shift_summary(train[name], held_out[name])
        for key in SUMMARY_KEYS:
            metrics[f"{prefix}/{key}/{name}"] = float(summary[key])
    return metrics

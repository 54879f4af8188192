"""The logit-offset rival (method.md section 8): a per-class offset added to a trained model's
logits, fitted on the validation split, applied unchanged to the test split.

``z'_ic = z_ic + b_c`` with ``b_background = 0``: it moves each foreground class's decision
boundary, attacking the logit shift of section 1 without retraining. Each ``b_c`` is chosen by a
coordinate search over a grid, maximising that class's validation Dice (voxels pooled) with the
other offsets held; two passes over the classes. Ties go to the offset closest to 0, so a model
that needs no offset keeps ``b = 0``.

Offsets fitted on the validation split score that split optimistically. To choose between the
offsets and a trained setting on validation, :func:`cross_fitted_logits` scores each validation
image or case with offsets fitted on the other half of the split only (2-fold cross-fitting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

GRID = tuple(float(v) for v in np.round(np.linspace(-4.0, 4.0, 33), 6))
"""Candidate offsets: -4 to 4 in steps of 0.25."""


def _items(logits: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One ``(C, *spatial)`` tensor per image or case."""
    return list(logits.unbind(0)) if isinstance(logits, torch.Tensor) else list(logits)


def apply_offsets(
    logits: torch.Tensor | Sequence[torch.Tensor], offsets: Sequence[float]
) -> torch.Tensor | list[torch.Tensor]:
    """``logits + b`` per class: ``(N, C, *spatial)`` in, the same shape out (or one ``(C, *spatial_i)``
    per case in and out)."""
    if isinstance(logits, torch.Tensor):
        shift = torch.tensor(list(offsets), dtype=logits.dtype).view(1, -1, *([1] * (logits.dim() - 2)))
        return logits + shift
    return [item + torch.tensor(list(offsets), dtype=item.dtype).view(-1, *([1] * (item.dim() - 1)))
            for item in logits]


def _class_dice(items: list[torch.Tensor], labels: list[torch.Tensor], offsets: torch.Tensor, cls: int) -> float:
    tp = fp = fn = 0
    for logits, label in zip(items, labels):
        prediction = (logits + offsets.view(-1, *([1] * (logits.dim() - 1)))).argmax(0)
        predicted, actual = prediction == cls, label == cls
        tp += int((predicted & actual).sum())
        fp += int((predicted & ~actual).sum())
        fn += int((~predicted & actual).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def fit_logit_offsets(
    logits: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[np.ndarray] | np.ndarray,
    grid: Sequence[float] = GRID, passes: int = 2,
) -> list[float]:
    """Per-class offsets maximising each foreground class's validation Dice.

    Args:
        logits: validation logits, ``(N, C, *spatial)`` or one ``(C, *spatial_i)`` per case.
        labels: the matching labels, ``(N, *spatial)`` or one ``(*spatial_i)`` per case.
        grid: candidate offsets.
        passes: coordinate-search passes over the foreground classes.

    Returns:
        ``[0.0, b_1, ..., b_{C-1}]``.

    Example:
        >>> z = torch.tensor([[[2.0, 2.0, 2.0, 2.0]], [[1.0, 1.5, 2.5, 3.0]]])  # (C=2, 1, 4): class 1 under-called
        >>> fit_logit_offsets([z], [np.array([[0, 1, 1, 1]])])
        [0.0, 0.75]
    """
    items = [item.float() for item in _items(logits)]
    targets = [torch.as_tensor(np.asarray(label, dtype=np.int64)) for label in labels]
    num_classes = items[0].shape[0]
    offsets = torch.zeros(num_classes)
    ordered = sorted(grid, key=lambda b: (abs(b), b))  # ties: the smallest offset wins
    for _ in range(passes):
        for cls in range(1, num_classes):
            best, best_dice = float(offsets[cls]), -1.0
            for candidate in ordered:
                offsets[cls] = candidate
                dice = _class_dice(items, targets, offsets, cls)
                if dice > best_dice + 1e-12:
                    best, best_dice = candidate, dice
            offsets[cls] = best
    return [float(v) for v in offsets]


def cross_fitted_logits(
    logits: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[np.ndarray] | np.ndarray, folds: int = 2,
    grid: Sequence[float] = GRID,
) -> list[torch.Tensor]:
    """Each item's logits shifted by offsets fitted on the items of the other folds only.

    Item ``i`` (an image of a stacked split, or a case) is in fold ``i % folds``; a split of fewer
    than ``folds`` items has nothing to fit on apart from the item itself, so it is returned
    unshifted (offsets 0).

    Args:
        logits: ``(N, C, *spatial)`` or one ``(C, *spatial_i)`` per case.
        labels: the matching labels, ``(N, *spatial)`` or one ``(*spatial_i)`` per case.
        folds: number of folds.
        grid: candidate offsets of :func:`fit_logit_offsets`.

    Returns:
        one ``(C, *spatial_i)`` tensor per item, in the order given.

    Example:
        >>> z = torch.tensor([[[[2.0, 2.0]], [[2.5, 1.0]]], [[[2.0, 2.0]], [[1.5, 1.0]]]])  # (N=2, C=2, 1, 2)
        >>> y = np.array([[[1, 0]], [[1, 0]]])  # item 0 needs no offset; item 1 needs b_1 > 0.5
        >>> [item[1].tolist() for item in cross_fitted_logits(z, y)]  # item 0 gets item 1's b_1 = 0.75 and back
        [[[3.25, 1.75]], [[1.5, 1.0]]]
    """
    items = _items(logits)
    targets = list(labels)
    if len(items) < folds:
        return [item.float() for item in items]
    shifted: list[torch.Tensor] = [torch.empty(0)] * len(items)
    for fold in range(folds):
        held_out = [i for i in range(len(items)) if i % folds == fold]
        rest = [i for i in range(len(items)) if i % folds != fold]
        offsets = fit_logit_offsets([items[i] for i in rest], [targets[i] for i in rest], grid)
        for i, item in zip(held_out, apply_offsets([items[i].float() for i in held_out], offsets)):
            shifted[i] = item
    return shifted

"""The logit shift of method.md section 4 as numbers.

For a class ``c``, :func:`boundary_distance` gives the signed distance of each voxel of true
class ``c`` to the decision boundary, ``s_i = z_ic - max_{k != c} z_ik`` (negative means
misclassified). Collect it on training and on held-out data with the same model in eval mode and
compare with :func:`logit_shift_summary`: under overfitting the rare classes' held-out
distances move towards and across 0 while the frequent classes' stay put.
:func:`plot_logit_shift` draws both histograms per class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from asymtune.method._checks import check_logits_target


def boundary_distance(logits: Tensor, target: Tensor, cls: int) -> Tensor:
    """Signed distance to the decision boundary of the voxels whose true class is ``cls``.

    Args:
        logits: ``B C H W [D]`` raw scores (computed in float32).
        target: ``B H W [D]`` int64 labels; voxels of other classes (and ignored voxels) are
            left out.
        cls: the class ``c`` in ``0..C-1``.

    Returns:
        ``M`` float32 values ``z_ic - max_{k != c} z_ik``, one per voxel of class ``cls`` in
        row-major order of ``B H W [D]``; differentiable (wrap in ``torch.no_grad`` to measure).

    Raises:
        ValueError: if the shapes do not match or ``cls`` is not a class of the logits.

    Example:
        >>> logits = torch.tensor([[[2.0, 0.0], [1.0, 3.0]]])  # B=1, C=2, W=2
        >>> boundary_distance(logits, torch.tensor([[1, 1]]), cls=1)
        tensor([-1.,  3.])
    """
    check_logits_target(logits, target)
    num_classes = logits.shape[1]
    if isinstance(cls, bool) or not 0 <= cls < num_classes:
        raise ValueError(f"cls = {cls!r} is invalid; expected a class index in [0, {num_classes - 1}]")
    selected = logits.float().movedim(1, -1)[target == cls]  # (M, C)
    others = torch.cat([selected[:, :cls], selected[:, cls + 1 :]], dim=1)  # (M, C - 1)
    return selected[:, cls] - others.amax(dim=1)


def _as_float_array(values: Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().to("cpu", torch.float64).numpy().ravel()
    return np.asarray(values, dtype=np.float64).ravel()


def _wasserstein_1(u: np.ndarray, v: np.ndarray) -> float:
    """1-Wasserstein distance of two empirical distributions: the integral of ``|F_u - F_v|``."""
    u_sorted = np.sort(u)
    v_sorted = np.sort(v)
    points = np.sort(np.concatenate([u_sorted, v_sorted]))
    widths = np.diff(points)
    u_cdf = np.searchsorted(u_sorted, points[:-1], side="right") / u_sorted.size
    v_cdf = np.searchsorted(v_sorted, points[:-1], side="right") / v_sorted.size
    return float(np.sum(np.abs(u_cdf - v_cdf) * widths))


def logit_shift_summary(
    train_distances: Tensor | np.ndarray | Sequence[float],
    val_distances: Tensor | np.ndarray | Sequence[float],
) -> dict[str, float]:
    """Summarise the shift between training and held-out boundary distances of one class.

    Args:
        train_distances: ``M`` values of :func:`boundary_distance` on training data.
        val_distances: ``K`` values on validation or test data (same model, eval mode).

    Returns:
        ``median_train``, ``median_val``, ``shift`` (``median_train - median_val``; positive
        means held-out voxels sit closer to the boundary), ``frac_negative_train`` and
        ``frac_negative_val`` (fraction with ``s < 0``, i.e. ``1 - sensitivity``) and
        ``wasserstein`` (1-Wasserstein distance). A field that needs an empty input is NaN.

    Example:
        >>> summary = logit_shift_summary([1.0, 2.0, 3.0], [-1.0, 0.0, 1.0])
        >>> summary["shift"], summary["wasserstein"]
        (2.0, 2.0)
    """
    train = _as_float_array(train_distances)
    val = _as_float_array(val_distances)
    nan = float("nan")
    median_train = float(np.median(train)) if train.size else nan
    median_val = float(np.median(val)) if val.size else nan
    return {
        "median_train": median_train,
        "median_val": median_val,
        "shift": median_train - median_val,
        "frac_negative_train": float(np.mean(train < 0)) if train.size else nan,
        "frac_negative_val": float(np.mean(val < 0)) if val.size else nan,
        "wasserstein": _wasserstein_1(train, val) if train.size and val.size else nan,
    }


def plot_logit_shift(
    distances: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], path: Path
) -> Path:
    """Histograms of the boundary distance, train against test, per foreground class.

    ``distances[label][split][class]`` with the training split first and the held-out split
    (``"test"`` or ``"val"``) second; one row per label.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(distances)
    classes = list(next(iter(distances.values()))["train"])
    fig, axes = plt.subplots(len(labels), len(classes), figsize=(3.6 * len(classes), 2.8 * len(labels)), squeeze=False)
    for row, label in enumerate(labels):
        for col, name in enumerate(classes):
            ax = axes[row][col]
            splits = list(distances[label])
            train = distances[label][splits[0]][name]
            test = distances[label][splits[1]][name]
            both = np.concatenate([train, test]) if train.size + test.size else np.zeros(1)
            bins = np.linspace(float(both.min()), float(both.max()) + 1e-6, 40)
            ax.hist(train, bins=bins, density=True, alpha=0.5, label=splits[0])
            ax.hist(test, bins=bins, density=True, alpha=0.5, label=splits[1])
            ax.axvline(0.0, color="k", linewidth=1)
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel("z_c - max_k z_k", fontsize=8)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

"""The loss maths of method.md section 3 as pure functions.

Every function takes raw logits ``B C *spatial`` of any float dtype and computes in float32. The
label map ``B *spatial`` holds class indices, ``ignore_index`` marks voxels that count in no term.
The work is shared through :class:`_Terms`: one log-softmax and one one-hot per call, no Python
loop over classes and no host synchronisation. Margin and focal factor add one pass over
``B C N`` (the shift) and a few over the true-class probabilities ``B N``; the focal Dice needs a
single reduction against the one-hot, like plain soft Dice. Picks and per-class sums are products
with the one-hot, not gather or einsum, whose passes over ``B C N`` cost more (bench/loss_alone.py);
so logits must be finite (an infinite logit times a zero of the one-hot is NaN).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from asymtune.method._checks import (
    ClassVector,
    check_logits_soft_target,
    check_logits_target,
    check_positive_scalar,
    class_vector,
)

EPS = 1e-6
"""Floor for the base of focal powers (method.md 3.2: the authors use 1e-6)."""

DEFAULT_SMOOTH = 1e-5
"""The ``s`` of the Dice terms."""


class _Terms(NamedTuple):
    """Per-voxel quantities every hard-label loss needs, computed once."""

    log_q: Tensor
    """``(B, C, N)`` float32 log-softmax of the margin-shifted logits."""
    one_hot: Tensor
    """``(B, C, N)`` float32 one-hot target, all zeros at ignored voxels."""
    target: Tensor
    """``(B, N)`` int64 target, ignored voxels set to class 0 so that it can index."""
    valid: Tensor
    """``(B, N)`` bool, False at ignored voxels."""
    log_q_true: Tensor
    """``(B, N)`` log-probability of the true class (0 at ignored voxels)."""


def _terms(logits: Tensor, target: Tensor, margin: Tensor | None, ignore_index: int) -> _Terms:
    """Shift the true-class logit by its margin and take the log-softmax (method.md 3.1)."""
    logits32 = logits.float().flatten(2)  # (B, C, N)
    labels = target.flatten(1).long()  # (B, N)
    valid = labels != ignore_index
    labels = torch.where(valid, labels, 0)
    index = labels.unsqueeze(1)  # (B, 1, N)
    one_hot = torch.zeros_like(logits32).scatter_(1, index, valid.unsqueeze(1).to(logits32.dtype))
    if margin is not None:
        # z'_ij = z_ij - y_ij m_j: only the ground-truth logit moves.
        logits32 = torch.addcmul(logits32, one_hot, margin.view(1, -1, 1), value=-1.0)
    log_q = F.log_softmax(logits32, dim=1)
    # The product with the one-hot picks the true class (0 at ignored voxels, which every term
    # masks out); cheaper than gather, whose backward scatters into a zeroed (B, C, N) tensor.
    log_q_true = (log_q * one_hot).sum(dim=1)  # (B, N)
    return _Terms(log_q, one_hot, labels, valid, log_q_true)


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values`` over ``valid`` voxels; 0 (still in the graph) when none is valid."""
    total = torch.where(valid, values, values.new_zeros(())).sum()
    return total / valid.sum().clamp_min(1)


def _focal_factor(q_true: Tensor, gamma_true: Tensor | float) -> Tensor:
    """``(1 - q)^gamma`` with the base floored at :data:`EPS` so that its gradient stays finite.

    Written as ``exp(gamma log(base))``: the same number, but about twice as fast forward and
    backward as ``pow`` with a per-voxel exponent, whose backward recomputes a power.
    """
    return torch.exp(gamma_true * torch.log((1.0 - q_true).clamp_min(EPS)))


def _true_class_focal(terms: _Terms, gamma: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``q_it`` and ``(1 - q_it)^{gamma_t}`` (None without focal), shared by the CE and Dice terms."""
    q_true = terms.log_q_true.exp()  # (B, N)
    if gamma is None:
        return q_true, None
    return q_true, _focal_factor(q_true, gamma.take(terms.target))


def _focal_ce(terms: _Terms, factor: Tensor | None) -> Tensor:
    """``-(1/N) sum_i (1 - q_it)^{gamma_t} log q_it`` over valid voxels (method.md 3.1 + 3.2)."""
    nll = -terms.log_q_true
    if factor is not None:
        nll = nll * factor
    return _masked_mean(nll, terms.valid)


def _dice_loss_per_class(
    predicted: Tensor, support: Tensor, true_minus_missed: Tensor, smooth: float
) -> Tensor:
    """``(FP + FN' + s) / (2 TP + FP + FN + s)`` per class, from the three sums it depends on.

    With ``predicted = TP + FP`` and ``support = TP + FN`` the denominator is
    ``predicted + support + s`` and the numerator ``predicted + s - (TP - FN')``.
    """
    return (predicted + smooth - true_minus_missed) / (predicted + support + smooth)


def _focal_dice(terms: _Terms, q_true: Tensor, factor: Tensor | None, smooth: float) -> Tensor:
    """Mean over foreground classes of the focal Dice of method.md 3.2, batch-wide sums."""
    q = terms.log_q.exp()  # (B, C, N)
    # Products and sums rather than einsum: einsum copies its (B, C, N) operand into a (C, B N)
    # layout forward and backward, which costs more than the product (and stays deterministic).
    predicted = (q * terms.valid.to(q.dtype).unsqueeze(1)).sum(dim=(0, 2))  # TP + FP, valid voxels
    support = terms.one_hot.sum(dim=(0, 2))  # TP + FN, no gradient
    # y_ic is one-hot, so TP_c - FN'_c = sum over the voxels of class c of
    # q_it - (1 - q_it)^{1 + gamma_t}: a single reduction against the one-hot.
    missed = 1.0 - q_true if factor is None else (1.0 - q_true) * factor  # (B, N)
    true_minus_missed = (terms.one_hot * (q_true - missed).unsqueeze(1)).sum(dim=(0, 2))
    return _dice_loss_per_class(predicted, support, true_minus_missed, smooth)[1:].mean()


def asymmetric_ce(
    logits: Tensor,
    target: Tensor,
    margin: ClassVector,
    gamma: ClassVector,
    ignore_index: int = -1,
) -> Tensor:
    """Asymmetric large-margin focal cross-entropy (method.md 3.1 and 3.2).

    ``q = softmax(z - y * m)``, the margin subtracted from the ground-truth logit only, and the
    loss is the mean over non-ignored voxels of ``-(1 - q_t)^{gamma_t} log q_t``. With
    ``margin = gamma = 0`` it equals ``F.cross_entropy(logits, target, ignore_index=...)``.

    Args:
        logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
        target: ``B H W [D]`` int64 class indices; ``ignore_index`` marks ignored voxels.
        margin: ``C`` non-negative margins ``m_j`` (sequence or 1-D tensor).
        gamma: ``C`` non-negative focal exponents ``gamma_j`` (sequence or 1-D tensor).
        ignore_index: label value of voxels that count in no term.

    Returns:
        Scalar float32 loss; 0 (connected to the graph) when every voxel is ignored.

    Raises:
        ValueError: if the shapes do not match or ``margin`` / ``gamma`` do not have C values.

    Example:
        >>> logits = torch.randn(2, 3, 8, 8)
        >>> target = torch.randint(0, 3, (2, 8, 8))
        >>> asymmetric_ce(logits, target, margin=[0.0, 1.0, 1.0], gamma=[4.0, 0.0, 0.0]).shape
        torch.Size([])
    """
    check_logits_target(logits, target)
    num_classes = logits.shape[1]
    margin_c = class_vector(margin, num_classes, "margin", logits.device)
    gamma_c = class_vector(gamma, num_classes, "gamma", logits.device)
    terms = _terms(logits, target, margin_c, ignore_index)
    return _focal_ce(terms, _true_class_focal(terms, gamma_c)[1])


def asymmetric_dice(
    logits: Tensor,
    target: Tensor,
    margin: ClassVector,
    gamma: ClassVector,
    ignore_index: int = -1,
    smooth: float = DEFAULT_SMOOTH,
) -> Tensor:
    """Asymmetric focal Dice loss of the authors' 3D U-Net (method.md 3.2).

    With ``q`` the softmax of the margin-shifted logits and sums over the whole batch and all
    non-ignored voxels, per foreground class ``c = 1..C-1``::

        TP_c = sum q_ic y_ic    FP_c = sum q_ic (1 - y_ic)    FN_c = sum (1 - q_ic) y_ic
        FN'_c = sum (1 - q_ic) y_ic (1 - q_ic)^{gamma_c}
        L_c = (FP_c + FN'_c + s) / (2 TP_c + FP_c + FN_c + s)

    and the loss is the mean of ``L_c``. With ``gamma_c = 0`` it is exactly ``1 - soft Dice``
    (``soft Dice = 2 TP / (2 TP + FP + FN + s)``).

    Args:
        logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
        target: ``B H W [D]`` int64 class indices; ``ignore_index`` marks ignored voxels.
        margin: ``C`` non-negative margins (sequence or 1-D tensor).
        gamma: ``C`` non-negative focal exponents (sequence or 1-D tensor).
        ignore_index: label value of voxels masked out of every sum.
        smooth: the ``s`` above, ``> 0`` (it keeps the ratio of a class absent from labels and
            predictions at ``s / s``).

    Returns:
        Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match, ``margin`` / ``gamma`` do not have C values or
            ``smooth <= 0``.

    Example:
        >>> logits = torch.randn(2, 2, 8, 8)
        >>> target = torch.randint(0, 2, (2, 8, 8))
        >>> float(asymmetric_dice(logits, target, [0.0, 0.0], [0.0, 0.0])) <= 1.0
        True
    """
    check_logits_target(logits, target)
    check_positive_scalar("smooth", smooth)
    num_classes = logits.shape[1]
    margin_c = class_vector(margin, num_classes, "margin", logits.device)
    gamma_c = class_vector(gamma, num_classes, "gamma", logits.device)
    terms = _terms(logits, target, margin_c, ignore_index)
    return _focal_dice(terms, *_true_class_focal(terms, gamma_c), smooth)


class _SoftTerms(NamedTuple):
    """Per-voxel quantities of the soft-label losses, computed once."""

    log_q: Tensor
    """``(B, C, N)`` float32 log-softmax of the margin-shifted logits."""
    target: Tensor
    """``(B, C, N)`` float32 soft target, all zeros at ignored voxels."""
    valid: Tensor
    """``(B, N)`` bool, False at ignored voxels (all-zero target rows)."""
    factor: Tensor | None
    """``(B, C, N)`` focal factor ``(1 - q_ij)^{gamma_j}``, None without focal."""


def _soft_terms(
    logits: Tensor, soft_target: Tensor, margin: Tensor | None = None, gamma: Tensor | None = None
) -> _SoftTerms:
    """Shift each logit by its target-weighted margin, take the log-softmax and the focal factor.

    ``z'_ij = z_ij - y_ij m_j`` and ``(1 - q_ij)^{gamma_j}``: with a one-hot ``y`` these are the
    hard-label quantities of :func:`_terms` and :func:`_true_class_focal` at the true class.
    """
    logits32 = logits.float().flatten(2)  # (B, C, N)
    target32 = soft_target.float().flatten(2)  # (B, C, N)
    if margin is not None:
        logits32 = torch.addcmul(logits32, target32, margin.view(1, -1, 1), value=-1.0)
    log_q = F.log_softmax(logits32, dim=1)
    valid = target32.sum(dim=1) > 0  # (B, N)
    factor = None if gamma is None else _focal_factor(log_q.exp(), gamma.view(1, -1, 1))
    return _SoftTerms(log_q, target32, valid, factor)


def _soft_ce(terms: _SoftTerms) -> Tensor:
    """``-(1/N) sum_i sum_j y_ij (1 - q_ij)^{gamma_j} log q_ij`` over valid voxels."""
    weighted = terms.target * terms.log_q  # (B, C, N)
    if terms.factor is not None:
        weighted = weighted * terms.factor
    return _masked_mean(-weighted.sum(dim=1), terms.valid)


def _soft_dice(terms: _SoftTerms, smooth: float) -> Tensor:
    """Mean over foreground classes of the focal Dice of method.md 3.2 against soft targets."""
    q = terms.log_q.exp()  # (B, C, N)
    predicted = torch.einsum("bcn,bn->c", q, terms.valid.to(q.dtype))  # TP + FP, valid voxels
    true_positive = (q * terms.target).sum(dim=(0, 2))
    support = terms.target.sum(dim=(0, 2))  # TP + FN
    if terms.factor is None:
        true_minus_missed = 2 * true_positive - support  # TP - FN
    else:
        # FN'_c = sum_i y_ic (1 - q_ic)^{1 + gamma_c}
        missed = ((1.0 - q) * terms.factor * terms.target).sum(dim=(0, 2))
        true_minus_missed = true_positive - missed
    return _dice_loss_per_class(predicted, support, true_minus_missed, smooth)[1:].mean()


def _soft_class_vectors(
    logits: Tensor, margin: ClassVector | None, gamma: ClassVector | None
) -> tuple[Tensor | None, Tensor | None]:
    num_classes = logits.shape[1]
    margin_c = None if margin is None else class_vector(margin, num_classes, "margin", logits.device)
    gamma_c = None if gamma is None else class_vector(gamma, num_classes, "gamma", logits.device)
    return margin_c, gamma_c


def soft_ce(
    logits: Tensor,
    soft_target: Tensor,
    margin: ClassVector | None = None,
    gamma: ClassVector | None = None,
) -> Tensor:
    """Cross-entropy against per-voxel class probabilities (symmetric mixup, method.md 3.4).

    Mean over voxels of ``-sum_j y_ij (1 - q_ij)^{gamma_j} log q_ij`` with
    ``q = softmax(z - y * m)``: the margin and the focal factor of each class weighted by the soft
    target, as method.md 3.6 keeps them on mixup samples. With one-hot targets it equals
    :func:`asymmetric_ce`; without margin and gamma it is ``-sum_j y_ij log p_ij``. A voxel whose
    target row is all zeros is ignored (:func:`~asymtune.method.soft_mixup_batch` marks ignored
    voxels that way).

    Args:
        logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
        soft_target: ``B C H W [D]`` probabilities summing to 1 (or 0 for ignored voxels).
        margin: ``C`` non-negative margins ``m_j``, or None for none.
        gamma: ``C`` non-negative focal exponents ``gamma_j``, or None for none.

    Returns:
        Scalar float32 loss.

    Raises:
        ValueError: if the two shapes differ or ``margin`` / ``gamma`` do not have C values.

    Example:
        >>> logits = torch.randn(1, 2, 4, 4)
        >>> soft = torch.full((1, 2, 4, 4), 0.5)
        >>> soft_ce(logits, soft, margin=[0.0, 1.0], gamma=[2.0, 0.0]).shape
        torch.Size([])
    """
    check_logits_soft_target(logits, soft_target)
    return _soft_ce(_soft_terms(logits, soft_target, *_soft_class_vectors(logits, margin, gamma)))


def soft_dice(
    logits: Tensor,
    soft_target: Tensor,
    smooth: float = DEFAULT_SMOOTH,
    margin: ClassVector | None = None,
    gamma: ClassVector | None = None,
) -> Tensor:
    """The focal Dice loss of method.md 3.2 against per-voxel class probabilities.

    With ``q = softmax(z - y * m)`` and batch-wide sums, per foreground class ``c``:
    ``TP_c = sum q_ic y_ic``, ``FP_c = sum q_ic (1 - y_ic)``, ``FN_c = sum (1 - q_ic) y_ic``,
    ``FN'_c = sum (1 - q_ic)^{1 + gamma_c} y_ic`` and the loss is the mean of
    ``(FP_c + FN'_c + s) / (2 TP_c + FP_c + FN_c + s)``; without margin and gamma it is
    ``1 - soft Dice``. Voxels whose target row is all zeros are masked out of every sum. With
    one-hot targets it equals :func:`asymmetric_dice`.

    Args:
        logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
        soft_target: ``B C H W [D]`` probabilities summing to 1 (or 0 for ignored voxels).
        smooth: the ``s`` of the ratio, ``> 0``.
        margin: ``C`` non-negative margins ``m_j``, or None for none.
        gamma: ``C`` non-negative focal exponents ``gamma_j``, or None for none.

    Returns:
        Scalar float32 loss.

    Raises:
        ValueError: if the two shapes differ, ``margin`` / ``gamma`` do not have C values or
            ``smooth <= 0``.
    """
    check_logits_soft_target(logits, soft_target)
    check_positive_scalar("smooth", smooth)
    terms = _soft_terms(logits, soft_target, *_soft_class_vectors(logits, margin, gamma))
    return _soft_dice(terms, smooth)


def unified_focal(
    logits: Tensor,
    target: Tensor,
    focal_weight: float = 0.5,
    delta: float = 0.6,
    gamma: float = 0.5,
    ignore_index: int = -1,
) -> Tensor:
    """Asymmetric Unified Focal loss (Yeung et al. 2021), class 0 as the background.

    ``focal_weight * L_aF + (1 - focal_weight) * L_aFT`` with

    - asymmetric focal loss ``L_aF``: mean over voxels of ``(1 - delta)(1 - p_0)^gamma (-log p_0)``
      for background voxels and ``delta (-log p_t)`` for foreground voxels (the focal factor
      suppresses the background only);
    - asymmetric focal Tversky loss ``L_aFT``: per sample and class the Tversky index
      ``TI = (TP + e) / (TP + delta FN + (1 - delta) FP + e)``, the loss ``1 - TI`` for the
      background and ``(1 - TI)^(1 - gamma)`` for each foreground class (enhanced), averaged
      over samples and classes as in the authors' code.

    Reference: M. Yeung, E. Sala, C.-B. Schönlieb, L. Rundo, "Unified Focal loss: Generalising
    Dice and cross entropy-based losses to handle class imbalance in medical image segmentation",
    Computerized Medical Imaging and Graphics 95, 2022 (arXiv 2102.04525).

    Args:
        logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
        target: ``B H W [D]`` int64 class indices; ``ignore_index`` marks ignored voxels.
        focal_weight: the paper's lambda in ``[0, 1]``.
        delta: weight of false negatives in ``(0, 1)``.
        gamma: focal parameter in ``[0, 1]``.
        ignore_index: label value of voxels that count in no term.

    Returns:
        Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match.
    """
    check_logits_target(logits, target)
    terms = _terms(logits, target, None, ignore_index)
    nll = -terms.log_q_true
    background = terms.target == 0
    suppressed = (1.0 - delta) * _focal_factor(terms.log_q_true.exp(), gamma) * nll
    focal = _masked_mean(torch.where(background, suppressed, delta * nll), terms.valid)

    q = terms.log_q.exp()  # (B, C, N)
    valid = terms.valid.unsqueeze(1).to(q.dtype)  # (B, 1, N)
    true_positive = (q * terms.one_hot).sum(dim=2)  # (B, C)
    false_positive = (q * valid).sum(dim=2) - true_positive
    false_negative = terms.one_hot.sum(dim=2) - true_positive
    tversky = (true_positive + EPS) / (
        true_positive + delta * false_negative + (1.0 - delta) * false_positive + EPS
    )
    dissimilarity = 1.0 - tversky  # (B, C)
    enhanced = dissimilarity[:, 1:].clamp_min(EPS).pow(1.0 - gamma)
    focal_tversky = torch.cat([dissimilarity[:, :1], enhanced], dim=1).mean()
    return focal_weight * focal + (1.0 - focal_weight) * focal_tversky

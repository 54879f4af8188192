"""Loss modules over the pure functions of ``_functional``.

Options are checked once in ``__init__`` (a bad value raises ``ValueError`` naming it and the
valid range); ``forward`` checks shapes and never assigns to ``self``. ``_registry`` registers
each of them under a name, through a factory taking the uniform ``LossOptions``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from asymtune.method._checks import (
    check_logits_soft_target,
    check_logits_target,
    check_non_negative,
    check_non_negative_scalar,
    check_positive_scalar,
)
from asymtune.method._functional import (
    DEFAULT_SMOOTH,
    _focal_ce,
    _focal_dice,
    _soft_ce,
    _soft_dice,
    _soft_terms,
    _terms,
    _true_class_focal,
    unified_focal,
)


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes = {num_classes!r} is invalid; expected an integer >= 2")


def _check_in_range(name: str, value: float, low: float, high: float, *, open_low: bool = False) -> None:
    inside = (low < value if open_low else low <= value) and value <= high
    if not inside:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} = {value!r} is invalid; expected a value in {bracket}{low}, {high}]")


def _check_loss_weights(ce_weight: float, dice_weight: float, smooth: float) -> None:
    check_non_negative_scalar("ce_weight", ce_weight)
    check_non_negative_scalar("dice_weight", dice_weight)
    if ce_weight == 0 and dice_weight == 0:
        raise ValueError("ce_weight = 0 and dice_weight = 0 is invalid; expected at least one > 0")
    # s = 0 makes the Dice ratio of a class absent from labels and predictions 0 / 0 = NaN.
    check_positive_scalar("smooth", smooth)


def _weighted_sum(*terms: tuple[float, Tensor | None]) -> Tensor:
    """``sum weight * term`` over the terms that are not None (at least one is).

    A weight of 1 is not multiplied and no zero is added: the same number as
    ``0 + w1 * t1 + w2 * t2``, with fewer operations in the graph of a small loss.
    """
    loss: Tensor | None = None
    for weight, term in terms:
        if term is None:
            continue
        scaled = term if weight == 1.0 else weight * term
        loss = scaled if loss is None else loss + scaled
    if loss is None:
        raise ValueError("every loss term is switched off; expected at least one weight > 0")
    return loss


class SegmentationLoss(nn.Module, ABC):
    """A segmentation loss on raw logits and an integer label map.

    Contract of :meth:`forward`: ``logits`` ``B C H W [D]`` (any float dtype) and ``target``
    ``B H W [D]`` int64 with values in ``0..C-1`` or ``ignore_index``; returns a differentiable
    float32 scalar in which ignored voxels play no part. Shape mismatches raise ``ValueError``.

    Losses that also accept per-voxel class probabilities (symmetric mixup) set
    ``supports_soft_targets = True`` and implement :meth:`forward_soft`.

    Attributes:
        num_classes: ``C``, including the background class 0.
        ignore_index: label value of ignored voxels.
    """

    supports_soft_targets: ClassVar[bool] = False

    def __init__(self, num_classes: int, ignore_index: int = -1) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        self.ignore_index = int(ignore_index)

    @abstractmethod
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss of ``logits`` ``B C H W [D]`` against ``target`` ``B H W [D]``."""

    def forward_soft(self, logits: Tensor, soft_target: Tensor) -> Tensor:
        """Scalar loss against ``soft_target`` ``B C H W [D]`` probabilities, if supported.

        Raises:
            NotImplementedError: for losses with ``supports_soft_targets = False``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not accept soft targets; symmetric mixup needs a loss "
            "with supports_soft_targets = True (e.g. 'asymmetric' or 'ce_dice')"
        )


class AsymmetricLoss(SegmentationLoss):
    """Asymmetric large-margin focal CE + asymmetric focal Dice (method.md 3.1 and 3.2).

    ``ce_weight * asymmetric_ce + dice_weight * asymmetric_dice`` with per-class margins
    ``m_j`` and focal exponents ``gamma_j``; the shifted logits feed both terms, as in the
    authors' 3D U-Net. The paper's settings are ``m_j = m r_j`` and ``gamma_j = gamma (1 - r_j)``
    (see :meth:`from_rare_classes`); zeros everywhere give plain CE + soft Dice.

    Reference: Z. Li, K. Kamnitsas, B. Glocker, "Analyzing Overfitting under Class Imbalance in
    Neural Networks for Image Segmentation", IEEE TMI 40(3), 2021 (arXiv 2102.10365).

    Args:
        margin: ``C`` margins ``m_j >= 0`` subtracted from the ground-truth logit in training.
        gamma: ``C`` focal exponents ``gamma_j >= 0``.
        ce_weight: weight ``>= 0`` of the cross-entropy term.
        dice_weight: weight ``>= 0`` of the Dice term.
        ignore_index: label value of ignored voxels.
        smooth: the ``s`` of the Dice ratio, ``> 0``.

    Raises:
        ValueError: if ``margin`` and ``gamma`` differ in length or have fewer than two values, a
            value is negative, both weights are 0 or ``smooth <= 0``.

    Example:
        >>> loss = AsymmetricLoss(margin=[0.0, 1.0], gamma=[4.0, 0.0])
        >>> logits = torch.randn(2, 2, 16, 16, requires_grad=True)
        >>> loss(logits, torch.randint(0, 2, (2, 16, 16))).backward()
    """

    supports_soft_targets: ClassVar[bool] = True
    margin: Tensor
    gamma: Tensor

    def __init__(
        self,
        margin: Sequence[float],
        gamma: Sequence[float],
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: int = -1,
        smooth: float = DEFAULT_SMOOTH,
    ) -> None:
        margins = [float(value) for value in margin]
        gammas = [float(value) for value in gamma]
        if len(margins) != len(gammas):
            raise ValueError(
                f"margin has {len(margins)} values {margins} and gamma {len(gammas)} values "
                f"{gammas}; expected one of each per class"
            )
        if len(margins) < 2:
            raise ValueError(f"margin = {margins} is invalid; expected at least 2 classes")
        check_non_negative("margin", margins)
        check_non_negative("gamma", gammas)
        _check_loss_weights(ce_weight, dice_weight, smooth)
        super().__init__(len(margins), ignore_index)
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        # Hyper-parameters, not state: rebuilt from the config, so left out of the state dict.
        self.register_buffer("margin", torch.tensor(margins, dtype=torch.float32), persistent=False)
        self.register_buffer("gamma", torch.tensor(gammas, dtype=torch.float32), persistent=False)
        # Decided here, on the host, so that forward skips the unused work without a sync.
        self._has_margin = any(value != 0.0 for value in margins)
        self._has_focal = any(value != 0.0 for value in gammas)

    @classmethod
    def from_rare_classes(
        cls, rare: Sequence[float], margin: float, gamma: float, **kwargs: Any
    ) -> AsymmetricLoss:
        """The paper's setting: ``m_j = margin * r_j`` and ``gamma_j = gamma * (1 - r_j)``.

        Args:
            rare: ``C`` rareness values ``r_j`` in ``[0, 1]`` (the authors use 0/1).
            margin: the margin ``m >= 0`` of the rare classes.
            gamma: the focal exponent ``gamma >= 0`` of the frequent classes.
            **kwargs: the other arguments of :class:`AsymmetricLoss`.

        Raises:
            ValueError: if an ``r_j`` is outside ``[0, 1]``, or as :class:`AsymmetricLoss`.
        """
        rareness = [float(value) for value in rare]
        for index, value in enumerate(rareness):
            _check_in_range(f"rare[{index}]", value, 0.0, 1.0)
        check_non_negative_scalar("margin", margin)
        check_non_negative_scalar("gamma", gamma)
        return cls(
            margin=[margin * value for value in rareness],
            gamma=[gamma * (1.0 - value) for value in rareness],
            **kwargs,
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss.

        Args:
            logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
            target: ``B H W [D]`` int64 labels, ``ignore_index`` for ignored voxels.

        Raises:
            ValueError: naming both shapes if they do not match or ``C != len(margin)``.
        """
        check_logits_target(logits, target, self.num_classes)
        # .to() is a no-op when the module already sits on the logits' device.
        margin = self.margin.to(logits.device) if self._has_margin else None
        gamma = self.gamma.to(logits.device) if self._has_focal else None
        terms = _terms(logits, target, margin, self.ignore_index)
        q_true, factor = _true_class_focal(terms, gamma)
        ce = _focal_ce(terms, factor) if self.ce_weight else None
        dice = _focal_dice(terms, q_true, factor, self.smooth) if self.dice_weight else None
        return _weighted_sum((self.ce_weight, ce), (self.dice_weight, dice))

    def forward_soft(self, logits: Tensor, soft_target: Tensor) -> Tensor:
        """``ce_weight * soft_ce + dice_weight * soft_dice`` with this loss's margins and gammas.

        For the symmetric mixup control (soft labels ``lam e_a + (1 - lam) e_b``, method.md 3.4).
        Margin and focal factor shape the loss on mixup samples too (method.md 3.6), each class's
        weighted by the soft target: ``z'_ij = z_ij - y_ij m_j`` and ``(1 - q_ij)^{gamma_j}`` on
        each class's term (see :func:`~asymtune.method.soft_ce`). With one-hot targets this is
        :meth:`forward`; with zero margins and gammas, plain soft CE + soft Dice.

        Args:
            logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
            soft_target: ``B C H W [D]`` probabilities (all-zero rows are ignored voxels).

        Raises:
            ValueError: naming both shapes if they differ or ``C != len(margin)``.
        """
        check_logits_soft_target(logits, soft_target, self.num_classes)
        margin = self.margin.to(logits.device) if self._has_margin else None
        gamma = self.gamma.to(logits.device) if self._has_focal else None
        terms = _soft_terms(logits, soft_target, margin, gamma)
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.ce_weight:
            loss = loss + self.ce_weight * _soft_ce(terms)
        if self.dice_weight:
            loss = loss + self.dice_weight * _soft_dice(terms, self.smooth)
        return loss

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin.tolist()}, gamma={self.gamma.tolist()}, "
            f"ce_weight={self.ce_weight}, dice_weight={self.dice_weight}, "
            f"ignore_index={self.ignore_index}"
        )


class CEDiceLoss(AsymmetricLoss):
    """The baseline: cross-entropy + soft Dice, no asymmetry (``AsymmetricLoss`` with zeros).

    Args:
        num_classes: ``C >= 2``.
        ce_weight: weight ``>= 0`` of the cross-entropy term.
        dice_weight: weight ``>= 0`` of the ``1 - soft Dice`` term (mean over foreground).
        ignore_index: label value of ignored voxels.
        smooth: the ``s`` of the Dice ratio, ``> 0``.

    Example:
        >>> loss = CEDiceLoss(num_classes=3)
        >>> loss(torch.randn(1, 3, 8, 8), torch.randint(0, 3, (1, 8, 8))).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: int = -1,
        smooth: float = DEFAULT_SMOOTH,
    ) -> None:
        _check_num_classes(num_classes)
        zeros = [0.0] * num_classes
        super().__init__(zeros, zeros, ce_weight, dice_weight, ignore_index, smooth)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, ce_weight={self.ce_weight}, "
            f"dice_weight={self.dice_weight}, ignore_index={self.ignore_index}"
        )


class WeightedCEDiceLoss(SegmentationLoss):
    """Class-weighted cross-entropy + soft Dice, the usual class-imbalance baseline.

    The cross-entropy is ``sum_i w_t(i) (-log p_it) / sum_i w_t(i)`` over non-ignored voxels,
    as ``F.cross_entropy(weight=...)`` computes it; the Dice term is ``1 - soft Dice`` averaged
    over foreground classes, unweighted.

    Args:
        class_weights: ``C`` weights ``>= 0``, not all 0 (see :meth:`from_class_fractions`).
        ce_weight: weight ``>= 0`` of the cross-entropy term.
        dice_weight: weight ``>= 0`` of the Dice term.
        ignore_index: label value of ignored voxels.
        smooth: the ``s`` of the Dice ratio, ``> 0``.

    Raises:
        ValueError: if a class weight is negative, all are 0, or fewer than 2 are given, or
            ``smooth <= 0``.

    Example:
        >>> loss = WeightedCEDiceLoss.from_class_fractions([0.99, 0.01])
        >>> [round(w, 3) for w in loss.class_weights.tolist()]
        [0.02, 1.98]
    """

    class_weights: Tensor

    def __init__(
        self,
        class_weights: Sequence[float],
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: int = -1,
        smooth: float = DEFAULT_SMOOTH,
    ) -> None:
        weights = [float(value) for value in class_weights]
        if len(weights) < 2:
            raise ValueError(f"class_weights = {weights} is invalid; expected at least 2 classes")
        check_non_negative("class_weights", weights)
        if sum(weights) == 0:
            raise ValueError(f"class_weights = {weights} is invalid; expected at least one > 0")
        _check_loss_weights(ce_weight, dice_weight, smooth)
        super().__init__(len(weights), ignore_index)
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.smooth = float(smooth)
        self.register_buffer(
            "class_weights", torch.tensor(weights, dtype=torch.float32), persistent=False
        )

    @classmethod
    def from_class_fractions(
        cls, fractions: Sequence[float], **kwargs: Any
    ) -> WeightedCEDiceLoss:
        """Inverse-frequency weights ``w_c ∝ 1 / f_c``, scaled to average 1 over classes.

        Args:
            fractions: ``C`` fractions ``f_c > 0`` of the voxels in each class.
            **kwargs: the other arguments of :class:`WeightedCEDiceLoss`.

        Raises:
            ValueError: if a fraction is not in ``(0, 1]``.
        """
        values = [float(value) for value in fractions]
        for index, value in enumerate(values):
            _check_in_range(f"fractions[{index}]", value, 0.0, 1.0, open_low=True)
        inverse = [1.0 / value for value in values]
        scale = len(inverse) / sum(inverse)
        return cls(class_weights=[value * scale for value in inverse], **kwargs)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss.

        Args:
            logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
            target: ``B H W [D]`` int64 labels, ``ignore_index`` for ignored voxels.

        Raises:
            ValueError: naming both shapes if they do not match or ``C != len(class_weights)``.
        """
        check_logits_target(logits, target, self.num_classes)
        terms = _terms(logits, target, None, self.ignore_index)
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.ce_weight:
            class_weights = self.class_weights.to(logits.device)
            zero = terms.log_q_true.new_zeros(())
            voxel_weight = torch.where(terms.valid, class_weights.take(terms.target), zero)  # (B, N)
            total_weight = voxel_weight.sum()
            # No valid voxel means a zero numerator too; keep 0 / 1 instead of 0 / 0.
            total_weight = torch.where(total_weight > 0, total_weight, torch.ones_like(total_weight))
            weighted_nll = (voxel_weight * -terms.log_q_true).sum()
            loss = loss + self.ce_weight * weighted_nll / total_weight
        if self.dice_weight:
            q_true = terms.log_q_true.exp()
            loss = loss + self.dice_weight * _focal_dice(terms, q_true, None, self.smooth)
        return loss

    def extra_repr(self) -> str:
        return (
            f"class_weights={self.class_weights.tolist()}, ce_weight={self.ce_weight}, "
            f"dice_weight={self.dice_weight}, ignore_index={self.ignore_index}"
        )


class UnifiedFocalLoss(SegmentationLoss):
    """Asymmetric Unified Focal loss of Yeung et al., an extra baseline (method.md 3.2 note).

    ``focal_weight * asymmetric focal + (1 - focal_weight) * asymmetric focal Tversky``, with
    class 0 the suppressed background and every other class enhanced; see
    :func:`~asymtune.losses.unified_focal` for the formulas. Not the asymmetric focal loss of
    Li et al.: this one adds the class weight ``delta`` and a Tversky term.

    Reference: M. Yeung, E. Sala, C.-B. Schönlieb, L. Rundo, "Unified Focal loss: Generalising
    Dice and cross entropy-based losses to handle class imbalance in medical image segmentation",
    Computerized Medical Imaging and Graphics 95, 2022 (arXiv 2102.04525).

    Args:
        num_classes: ``C >= 2``.
        focal_weight: the paper's lambda in ``[0, 1]``.
        delta: weight of false negatives in ``(0, 1)``; default 0.6 as in the paper.
        gamma: focal parameter in ``[0, 1]``; default 0.5 as in the paper.
        ignore_index: label value of ignored voxels.

    Raises:
        ValueError: if an option is out of its range.

    Example:
        >>> loss = UnifiedFocalLoss(num_classes=2)
        >>> loss(torch.randn(1, 2, 8, 8), torch.randint(0, 2, (1, 8, 8))).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        focal_weight: float = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        ignore_index: int = -1,
    ) -> None:
        _check_in_range("focal_weight", focal_weight, 0.0, 1.0)
        _check_in_range("gamma", gamma, 0.0, 1.0)
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta = {delta!r} is invalid; expected a value in (0, 1)")
        super().__init__(num_classes, ignore_index)
        self.focal_weight = float(focal_weight)
        self.delta = float(delta)
        self.gamma = float(gamma)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss.

        Args:
            logits: ``B C H W [D]`` raw scores, any float dtype (computed in float32).
            target: ``B H W [D]`` int64 labels, ``ignore_index`` for ignored voxels.

        Raises:
            ValueError: naming both shapes if they do not match or ``C != num_classes``.
        """
        check_logits_target(logits, target, self.num_classes)
        return unified_focal(
            logits, target, self.focal_weight, self.delta, self.gamma, self.ignore_index
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, focal_weight={self.focal_weight}, "
            f"delta={self.delta}, gamma={self.gamma}, ignore_index={self.ignore_index}"
        )


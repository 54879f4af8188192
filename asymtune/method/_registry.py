"""Name -> loss registry (timm style): ``register_loss``, ``create_loss``, ``list_losses``.

Configs name a loss (``train.loss: asymmetric``); these three functions are the only way from a
name to a module, so that tests parametrised over :func:`list_losses` cover a new loss the day it
is registered. Every registered factory receives the same :class:`LossOptions` (the class count,
the per-class margins and focal exponents, the class fractions, the term weights) and reads what
it needs, so that a caller builds any loss with one call and no branch on its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from asymtune.method._functional import DEFAULT_SMOOTH
from asymtune.method._modules import (
    AsymmetricLoss,
    CEDiceLoss,
    SegmentationLoss,
    UnifiedFocalLoss,
    WeightedCEDiceLoss,
)

ClassFractions = Iterable[float] | Callable[[], Iterable[float]]
"""The voxel share of each class, or a function returning it (called only by a loss that uses it)."""


@dataclass(frozen=True)
class LossOptions:
    """The one set of arguments every registered loss factory receives.

    Attributes:
        num_classes: ``C >= 2``, background included.
        margin: ``C`` margins ``m_j`` (method.md 3.1); None means all 0. Only ``asymmetric``
            reads it.
        gamma: ``C`` focal exponents ``gamma_j`` (method.md 3.2); None means all 0. Only
            ``asymmetric`` reads it.
        class_fractions: the voxel share of each class in the training split, or a function
            returning it, so that losses that do not use it never scan the labels. Only
            ``weighted_ce`` reads it.
        ce_weight: weight of the cross-entropy term.
        dice_weight: weight of the Dice term.
        ignore_index: label value of ignored voxels.
        smooth: the ``s`` of the Dice ratio, ``> 0``.

    Raises:
        ValueError: if ``num_classes`` is not an integer >= 2 or ``margin`` / ``gamma`` do not
            have ``num_classes`` values.
    """

    num_classes: int
    margin: tuple[float, ...] | None = None
    gamma: tuple[float, ...] | None = None
    class_fractions: ClassFractions | None = None
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    ignore_index: int = -1
    smooth: float = DEFAULT_SMOOTH

    def __post_init__(self) -> None:
        count = self.num_classes
        if isinstance(count, bool) or not isinstance(count, int) or count < 2:
            raise ValueError(f"num_classes = {count!r} is invalid; expected an integer >= 2")
        for name in ("margin", "gamma"):
            values = getattr(self, name)
            if values is None:
                continue
            floats = tuple(float(value) for value in values)
            if len(floats) != count:
                raise ValueError(
                    f"{name} has {len(floats)} values {list(floats)}; expected num_classes = {count}, "
                    "one per class"
                )
            object.__setattr__(self, name, floats)

    def ce_dice_options(self) -> dict[str, Any]:
        """The options every cross-entropy + Dice loss takes: its weights, ``ignore_index``, ``smooth``."""
        return {"ce_weight": self.ce_weight, "dice_weight": self.dice_weight, "ignore_index": self.ignore_index,
                "smooth": self.smooth}

    def margin_or_zeros(self) -> tuple[float, ...]:
        """``margin``, or ``C`` zeros when it is None."""
        return self.margin if self.margin is not None else (0.0,) * self.num_classes

    def gamma_or_zeros(self) -> tuple[float, ...]:
        """``gamma``, or ``C`` zeros when it is None."""
        return self.gamma if self.gamma is not None else (0.0,) * self.num_classes

    def fractions(self, loss: str) -> list[float]:
        """The class fractions as ``C`` floats (calling the function when one was given).

        Raises:
            ValueError: naming ``loss`` when no fractions were given or their count is not ``C``.
        """
        if self.class_fractions is None:
            raise ValueError(
                f"loss {loss!r} needs class_fractions (the voxel share of each class); got None"
            )
        given = self.class_fractions() if callable(self.class_fractions) else self.class_fractions
        values = [float(value) for value in given]
        if len(values) != self.num_classes:
            raise ValueError(
                f"class_fractions has {len(values)} values {values}; expected num_classes = "
                f"{self.num_classes}, one per class"
            )
        return values


LossFactory = Callable[[LossOptions], SegmentationLoss]
"""What :func:`register_loss` registers: :class:`LossOptions` in, a loss module out."""

_Factory = TypeVar("_Factory", bound=LossFactory)

_LOSSES: dict[str, LossFactory] = {}


def register_loss(name: str) -> Callable[[_Factory], _Factory]:
    """Decorator registering a loss factory, ``(LossOptions) -> SegmentationLoss``, under ``name``.

    Raises:
        ValueError: if ``name`` is empty or already registered.

    Example (a plug-in module registering its own loss)::

        @register_loss("my_loss")
        def _my_loss(options: LossOptions) -> SegmentationLoss:
            return MyLoss(options.num_classes, ignore_index=options.ignore_index)
    """
    if not name:
        raise ValueError("a loss name must be a non-empty string, got ''")

    def decorator(factory: _Factory) -> _Factory:
        if name in _LOSSES:
            raise ValueError(
                f"loss name {name!r} is already registered to {_LOSSES[name]!r}; "
                "choose another name"
            )
        _LOSSES[name] = factory
        return factory

    return decorator


def list_losses() -> list[str]:
    """The registered loss names, sorted."""
    return sorted(_LOSSES)


def create_loss(
    name: str,
    *,
    num_classes: int,
    margin: Sequence[float] | None = None,
    gamma: Sequence[float] | None = None,
    class_fractions: ClassFractions | None = None,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    ignore_index: int = -1,
    smooth: float = DEFAULT_SMOOTH,
) -> SegmentationLoss:
    """Build the loss registered under ``name``; every loss takes these same arguments.

    Each loss reads what it needs (see :class:`LossOptions`): ``asymmetric`` the margins and
    focal exponents, ``weighted_ce`` the class fractions; the plain baselines ignore the
    asymmetry.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the known names), or an argument
            is invalid for the loss.

    Example:
        >>> loss = create_loss("asymmetric", num_classes=2, margin=[0.0, 1.0], gamma=[4.0, 0.0])
        >>> loss.margin.tolist(), loss.gamma.tolist()
        ([0.0, 1.0], [4.0, 0.0])
    """
    try:
        factory = _LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {list_losses()}") from None
    options = LossOptions(
        num_classes=num_classes,
        margin=None if margin is None else tuple(margin),
        gamma=None if gamma is None else tuple(gamma),
        class_fractions=class_fractions,
        ce_weight=ce_weight,
        dice_weight=dice_weight,
        ignore_index=ignore_index,
        smooth=smooth,
    )
    return factory(options)


# ------------------------------------------------------------------------- shipped losses
# One factory per name, each taking the same LossOptions; the plain baselines ignore the
# asymmetry (margin, gamma) and UnifiedFocalLoss also the term weights, which it does not have.


@register_loss("asymmetric")
def _create_asymmetric(options: LossOptions) -> AsymmetricLoss:
    """:class:`AsymmetricLoss` with ``options.margin`` and ``options.gamma`` (zeros if None)."""
    return AsymmetricLoss(
        margin=options.margin_or_zeros(),
        gamma=options.gamma_or_zeros(),
        **options.ce_dice_options(),
    )


@register_loss("ce_dice")
def _create_ce_dice(options: LossOptions) -> CEDiceLoss:
    """:class:`CEDiceLoss`, the baseline."""
    return CEDiceLoss(
        num_classes=options.num_classes,
        **options.ce_dice_options(),
    )


CLASS_FRACTION_FLOOR = 1e-8
"""Smallest class fraction used for inverse-frequency weights: a class absent from the training
split gets a large finite weight instead of a division by zero."""


@register_loss("weighted_ce")
def _create_weighted_ce(options: LossOptions) -> WeightedCEDiceLoss:
    """:class:`WeightedCEDiceLoss` with inverse-frequency weights from ``options.class_fractions``."""
    fractions = [max(value, CLASS_FRACTION_FLOOR) for value in options.fractions("weighted_ce")]
    return WeightedCEDiceLoss.from_class_fractions(
        fractions,
        **options.ce_dice_options(),
    )


@register_loss("unified_focal")
def _create_unified_focal(options: LossOptions) -> UnifiedFocalLoss:
    """:class:`UnifiedFocalLoss` with the paper's defaults (its own weights, no Dice ``s``)."""
    return UnifiedFocalLoss(num_classes=options.num_classes, ignore_index=options.ignore_index)

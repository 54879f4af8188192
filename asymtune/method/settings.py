"""Per-class asymmetry settings: the values one trial trains with and one export records.

The paper's scalar form (a margin ``m``, a focal exponent ``gamma``, a rare set ``r``) maps to
per-class vectors ``m_j = m * r_j`` and ``gamma_j = gamma * (1 - r_j)`` (method.md section 2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

SCHEDULES = ("separate", "summed")


@dataclass(frozen=True)
class AsymmetrySettings:
    """What one trial trains with.

    Attributes:
        margin: per-class large margin ``m_j`` (length ``C``), subtracted from the true logit.
        gamma: per-class focal exponent ``gamma_j`` (length ``C``).
        rare: per-class rare flag (length ``C``), used by mixup, adversarial training and augmentation.
        mixup_alpha: Beta(alpha, alpha) parameter of mixup; 0 disables mixup.
        mixup_margin: the mixup margin ``mu`` in ``[0, 1)``.
        mixup_symmetric: ordinary mixup with soft labels instead of the asymmetric label rule.
        adv_eps: adversarial magnitude (L2 norm per sample); 0 disables adversarial training.
        adv_xi: initial radius of the adversarial probe.
        aug_p_bg: probability that a patch without a rare class is augmented (1 = symmetric).
        schedule: ``"separate"`` optimiser steps on clean, adversarial and mixup batches (the
            authors' schedule) or one ``"summed"`` step.
    """

    margin: tuple[float, ...]
    gamma: tuple[float, ...]
    rare: tuple[bool, ...]
    mixup_alpha: float = 0.0
    mixup_margin: float = 0.0
    mixup_symmetric: bool = False
    adv_eps: float = 0.0
    adv_xi: float = 1e-5
    aug_p_bg: float = 1.0
    schedule: str = "separate"

    def __post_init__(self) -> None:
        n = len(self.margin)
        if n < 2 or len(self.gamma) != n or len(self.rare) != n:
            raise ValueError(
                f"margin has {len(self.margin)} values, gamma {len(self.gamma)}, rare {len(self.rare)}: "
                "expected one value per class (at least 2 classes) in each"
            )
        for name, values in (("margin", self.margin), ("gamma", self.gamma)):
            for index, value in enumerate(values):
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"{name}[{index}]={value}: expected a finite value >= 0")
        if self.mixup_alpha < 0 or not 0 <= self.mixup_margin < 1:
            raise ValueError(
                f"mixup_alpha={self.mixup_alpha}, mixup_margin={self.mixup_margin}: "
                "expected mixup_alpha >= 0 and 0 <= mixup_margin < 1"
            )
        if self.adv_eps < 0 or self.adv_xi <= 0:
            raise ValueError(f"adv_eps={self.adv_eps}, adv_xi={self.adv_xi}: expected adv_eps >= 0 and adv_xi > 0")
        if not 0 <= self.aug_p_bg <= 1:
            raise ValueError(f"aug_p_bg={self.aug_p_bg}: expected a probability in [0, 1]")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}: expected one of {SCHEDULES}")

    @property
    def num_classes(self) -> int:
        return len(self.margin)

    @property
    def is_baseline(self) -> bool:
        """True when no technique is active: plain cross-entropy + soft Dice."""
        return (
            not any(self.margin)
            and not any(self.gamma)
            and self.mixup_alpha == 0
            and self.adv_eps == 0
            and self.aug_p_bg == 1.0
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (lists, floats, bools) for YAML export and trial configs."""
        data = asdict(self)
        for key in ("margin", "gamma", "rare"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AsymmetrySettings:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"settings: unknown keys {sorted(unknown)}: expected a subset of {sorted(known)}")
        values = dict(data)
        for key, cast in (("margin", float), ("gamma", float), ("rare", bool)):
            if key in values:
                values[key] = tuple(cast(v) for v in values[key])
        return cls(**values)

    def flat_params(self, class_names: Sequence[str]) -> dict[str, Any]:
        """Readable flat parameters for MLflow: ``margin.<class>``, ``gamma.<class>``, ``rare.<class>``."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        params: dict[str, Any] = {}
        for index, name in enumerate(class_names):
            params[f"margin.{name}"] = self.margin[index]
            params[f"gamma.{name}"] = self.gamma[index]
            params[f"rare.{name}"] = self.rare[index]
        for key in ("mixup_alpha", "mixup_margin", "mixup_symmetric", "adv_eps", "adv_xi", "aug_p_bg", "schedule"):
            params[key] = getattr(self, key)
        return params


def from_paper_form(
    num_classes: int,
    rare: Sequence[bool],
    margin: float = 0.0,
    gamma: float = 0.0,
    **options: Any,
) -> AsymmetrySettings:
    """Per-class settings from the paper's scalar form: ``m_j = m r_j``, ``gamma_j = gamma (1 - r_j)``."""
    if len(rare) != num_classes:
        raise ValueError(f"rare has {len(rare)} flags: expected one per class ({num_classes})")
    rare_t = tuple(bool(r) for r in rare)
    return AsymmetrySettings(
        margin=tuple(float(margin) if r else 0.0 for r in rare_t),
        gamma=tuple(0.0 if r else float(gamma) for r in rare_t),
        rare=rare_t,
        **options,
    )


def baseline(num_classes: int) -> AsymmetrySettings:
    """Cross-entropy + soft Dice, no asymmetry."""
    return AsymmetrySettings(margin=(0.0,) * num_classes, gamma=(0.0,) * num_classes, rare=(False,) * num_classes)


AUTHORS_STRENGTHS: dict[str, float] = {"margin": 1.0, "gamma": 4.0, "mixup_alpha": 0.2, "mixup_margin": 0.2}
"""The authors' fixed defaults (method.md section 8): large margin 1 on the rare classes, focal
gamma 4 on the frequent classes, mixup alpha 0.2 with mu 0.2."""
TECHNIQUES = ("margin", "focal", "mixup")


def authors_default(base: AsymmetrySettings, rare: Sequence[bool], techniques: Sequence[str]) -> AsymmetrySettings:
    """``base`` (a baseline: its schedule and other options are kept) with the authors' fixed
    strength of each technique in ``techniques`` (a subset of :data:`TECHNIQUES`) and the rare set
    ``rare`` (one flag per class).

    >>> s = authors_default(baseline(3), [False, True, False], ["margin", "focal"])
    >>> s.margin, s.gamma, s.mixup_alpha
    ((0.0, 1.0, 0.0), (4.0, 0.0, 4.0), 0.0)
    """
    unknown = sorted(set(techniques) - set(TECHNIQUES))
    if unknown:
        raise ValueError(f"techniques {unknown}: expected a subset of {TECHNIQUES}")
    paper = from_paper_form(
        base.num_classes, rare,
        margin=AUTHORS_STRENGTHS["margin"] if "margin" in techniques else 0.0,
        gamma=AUTHORS_STRENGTHS["gamma"] if "focal" in techniques else 0.0,
    )
    mixup = "mixup" in techniques
    return replace(
        base, margin=paper.margin, gamma=paper.gamma, rare=paper.rare,
        mixup_alpha=AUTHORS_STRENGTHS["mixup_alpha"] if mixup else 0.0,
        mixup_margin=AUTHORS_STRENGTHS["mixup_margin"] if mixup else 0.0,
    )

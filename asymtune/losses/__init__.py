"""The method: asymmetric losses and training techniques for imbalanced segmentation.

Li, Kamnitsas, Glocker, "Analyzing Overfitting under Class Imbalance in Neural Networks for Image
Segmentation", IEEE TMI 2021 (see ``method.md``). Pure functions hold the maths, modules wrap
them, and the registry maps config names to modules:

>>> loss = create_loss("asymmetric", margin=[0.0, 1.0], gamma=[4.0, 0.0])
>>> sorted(list_losses())
['asymmetric', 'ce_dice', 'unified_focal', 'weighted_ce']
"""

from __future__ import annotations

from asymtune.losses._functional import (
    asymmetric_ce,
    asymmetric_dice,
    soft_ce,
    soft_dice,
    unified_focal,
)
from asymtune.losses._modules import (
    AsymmetricLoss,
    CEDiceLoss,
    SegmentationLoss,
    UnifiedFocalLoss,
    WeightedCEDiceLoss,
)
from asymtune.losses._registry import create_loss, list_losses, register_loss
from asymtune.losses.adversarial import adversarial_perturbation
from asymtune.losses.diagnostics import boundary_distance, logit_shift_summary
from asymtune.losses.mixup import (
    MixupBatch,
    SoftMixupBatch,
    mixup_batch,
    mixup_labels,
    soft_mixup_batch,
)

__all__ = [
    "AsymmetricLoss",
    "CEDiceLoss",
    "MixupBatch",
    "SegmentationLoss",
    "SoftMixupBatch",
    "UnifiedFocalLoss",
    "WeightedCEDiceLoss",
    "adversarial_perturbation",
    "asymmetric_ce",
    "asymmetric_dice",
    "boundary_distance",
    "create_loss",
    "list_losses",
    "logit_shift_summary",
    "mixup_batch",
    "mixup_labels",
    "register_loss",
    "soft_ce",
    "soft_dice",
    "soft_mixup_batch",
    "unified_focal",
]

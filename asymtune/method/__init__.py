"""The method, in one package: asymmetric losses, mixup, adversarial training, the augmentation
rule, the per-class settings (the paper's form -> per-class vectors) and the logit-shift
diagnostics.

Li, Kamnitsas, Glocker, "Analyzing Overfitting under Class Imbalance in Neural Networks for Image
Segmentation", IEEE TMI 2021 (see ``method.md``). Pure functions hold the maths, modules wrap
them, and the registry maps config names to modules:

>>> loss = create_loss("asymmetric", num_classes=2, margin=[0.0, 1.0], gamma=[4.0, 0.0])
>>> sorted(list_losses())
['asymmetric', 'ce_dice', 'unified_focal', 'weighted_ce']
"""

from __future__ import annotations

from asymtune.method._functional import (
    asymmetric_ce,
    asymmetric_dice,
    soft_ce,
    soft_dice,
    unified_focal,
)
from asymtune.method._modules import (
    AsymmetricLoss,
    CEDiceLoss,
    SegmentationLoss,
    UnifiedFocalLoss,
    WeightedCEDiceLoss,
)
from asymtune.method._registry import LossOptions, create_loss, list_losses, register_loss
from asymtune.method.adversarial import adversarial_perturbation
from asymtune.method.augmentation import samples_to_augment
from asymtune.method.diagnostics import boundary_distance, logit_shift_summary, plot_logit_shift
from asymtune.method.mixup import (
    MixupBatch,
    SoftMixupBatch,
    mixup_batch,
    mixup_labels,
    soft_mixup_batch,
)
from asymtune.method.settings import AsymmetrySettings, baseline, from_paper_form

__all__ = [
    "AsymmetricLoss",
    "AsymmetrySettings",
    "CEDiceLoss",
    "LossOptions",
    "MixupBatch",
    "SegmentationLoss",
    "SoftMixupBatch",
    "UnifiedFocalLoss",
    "WeightedCEDiceLoss",
    "adversarial_perturbation",
    "asymmetric_ce",
    "asymmetric_dice",
    "baseline",
    "boundary_distance",
    "create_loss",
    "from_paper_form",
    "list_losses",
    "logit_shift_summary",
    "mixup_batch",
    "mixup_labels",
    "plot_logit_shift",
    "register_loss",
    "samples_to_augment",
    "soft_ce",
    "soft_dice",
    "soft_mixup_batch",
    "unified_focal",
]

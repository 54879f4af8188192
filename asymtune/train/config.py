"""The optimisation part of a training run, as plain values.

:class:`TrainConfig` is the one place of the ``train`` keys' defaults and meanings: the config
schema (``asymtune.config.schema``) derives the ``train`` section of ``conf/`` from its fields and
its docstring, so ``asymtune tune --cfg`` shows exactly these defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained: the ``train`` section of ``conf/tune.yaml`` and ``conf/train.yaml``.

    Attributes:
        epochs: number of epochs; an epoch is ``iterations_per_epoch`` optimiser iterations
            (as in nnU-Net), each on ``batch_size`` images sampled from the training split.
            In a sweep, the most a trial trains (ASHA may stop it earlier).
        iterations_per_epoch: iterations per epoch.
        batch_size: images per batch.
        learning_rate: Adam learning rate.
        weight_decay: Adam weight decay.
        seed: seeds weights, batch order, augmentation, mixup and adversarial draws.
        num_threads: torch intra-op threads (1 keeps CPU runs reproducible and lets trials share cores).
        augment: apply the (asymmetric) augmentation pipeline (method.md 3.5).
        patch_size: train on patches of this spatial size instead of whole images (so that
            some patches hold no rare class and the augmentation probability ``p_bg`` matters),
            and, for datasets of cases with different sizes, the sliding-window size of
            validation and test; null trains equal-size images whole and picks a patch for cases
            of different sizes (:func:`asymtune.data.patches.default_patch_size`).
        oversample_foreground: share of each batch of patches centred on a foreground voxel
            (nnU-Net's 0.33 by default); the rest are placed uniformly at random.
        loss: the registered loss (``asymtune.method.list_losses()``): ``asymmetric`` (margin and
            focal from the settings; the baseline when both are 0), or the plain baselines
            ``ce_dice``, ``weighted_ce`` (inverse-frequency weights from the training split),
            ``unified_focal`` (Yeung et al.).
        ce_weight: weight of the cross-entropy term.
        dice_weight: weight of the Dice term.
        eval_batch_size: images per forward pass during evaluation.
        device: ``"auto"`` (CUDA when a GPU is visible, e.g. one Ray assigned to the trial), ``"cpu"``
            or ``"cuda"``.
        mixed_precision: on CUDA, run the network under autocast (bfloat16 where supported, else
            float16 with a gradient scaler); the loss maths stays float32. Ignored on CPU.
        channels_last: on CUDA, keep 2-D activations channels-last. Ignored on CPU.
        logit_offsets: after training, fit a per-class logit offset on the validation split
            (method.md section 8, :mod:`asymtune.train.offsets`) and add it to the logits of every
            later evaluation and prediction; the logit-offset rival exports this.
        simulate_epoch_seconds: 0 trains the network for real; > 0 is a simulation for scale
            benchmarks (:mod:`asymtune.train.simulated`): each epoch sleeps this long, no network
            is trained, and the metrics follow a simulated learning curve.
    """

    epochs: int = 30
    iterations_per_epoch: int = 20
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    seed: int = 0
    num_threads: int = 1
    augment: bool = False
    loss: str = "asymmetric"
    patch_size: tuple[int, ...] | None = field(default=None)
    oversample_foreground: float = 0.33
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    eval_batch_size: int = 32
    device: str = "auto"
    mixed_precision: bool = True
    channels_last: bool = True
    logit_offsets: bool = False
    simulate_epoch_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.patch_size is not None:
            patch = tuple(self.patch_size)
            if not patch or any(not isinstance(v, int) or v < 1 for v in patch):
                raise ValueError(f"train.patch_size={list(patch)}: expected a list of positive integers or null")
            object.__setattr__(self, "patch_size", patch)
        for name in ("epochs", "iterations_per_epoch", "batch_size", "num_threads", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"train.{name}={value!r}: expected an integer >= 1")
        if not 0.0 <= self.oversample_foreground <= 1.0:
            raise ValueError(f"train.oversample_foreground={self.oversample_foreground}: expected a value in [0, 1]")
        seconds = self.simulate_epoch_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise ValueError(
                f"train.simulate_epoch_seconds={self.simulate_epoch_seconds!r}: expected a number of seconds >= 0 "
                "(0 trains for real)"
            )
        if not isinstance(self.logit_offsets, bool):
            raise ValueError(f"train.logit_offsets={self.logit_offsets!r}: expected true or false")
        if not self.learning_rate > 0:
            raise ValueError(f"train.learning_rate={self.learning_rate}: expected a value > 0")
        from asymtune.method import list_losses

        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r}: expected 'auto', 'cpu' or 'cuda'")

        if self.loss not in list_losses():
            raise ValueError(f"train.loss={self.loss!r}: expected one of {list_losses()}")
        if self.weight_decay < 0 or self.ce_weight < 0 or self.dice_weight < 0:
            raise ValueError(
                f"train.weight_decay={self.weight_decay}, ce_weight={self.ce_weight}, "
                f"dice_weight={self.dice_weight}: expected values >= 0"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a config node; unknown keys are refused with their names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"train: unknown keys {unknown}: expected a subset of {sorted(known)}")
        return cls(**dict(data))

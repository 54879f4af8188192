"""A simulation of training for scale benchmarks: a :class:`Trainer` that trains no network.

With ``train.simulate_epoch_seconds > 0`` (:func:`asymtune.train.factory.build_trainer`), each
epoch sleeps that long instead of training, and the model's logits are drawn, not computed: every
voxel of true class ``t`` gets the logit ``z_t ~ N(mu_t, 1)`` against 0 for the background (and
``-3`` for the other foreground classes), so its boundary distance is ``s = z_t`` and the class's
sensitivity is ``Phi(mu_t)``. ``mu_t`` follows a learning curve whose end value depends
deterministically on the asymmetry setting, the class (rare or not, from the training split's
class fractions) and ``train.seed``, with noise: the search, ASHA, the confirmation race and the
report have something real to decide on. Background voxels are predicted as foreground with a
small rate that the margin and the focal exponent raise (asymmetry trades precision for
sensitivity). On the training split ``mu_t`` is higher (the logit shift of method.md section 1);
the better the setting, the smaller the gap.

Everything after the logits is the real code: :meth:`Trainer.evaluate` (per-class and per-case
metrics, the same keys as a real training), the logit-shift diagnostics
(:mod:`asymtune.train.diagnostics`) and the logit-offset rival run on the simulated logits. The
network is built (so that checkpoints, the confirmation's weights and the model registry hold
real, tiny, untrained weights of the configured model) but never trained or run; the losses
reported are a curve, and the loss module is never called (so ``ASYMTUNE_TEST_FAULTS``'s NaN
injection does not apply). The simulation always runs on the CPU.

The response surface is made up, loosely after the paper: margin near 1 on a class, focal
exponent near 4 on the background, asymmetric mixup and adversarial training help the rare
classes; a margin on the background (the symmetric variant) and focal on the rare class hurt.
It is not evidence about the method: use it to measure orchestration, never results.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from asymtune.data.base import SegmentationDataset, Split
from asymtune.method import AsymmetrySettings
from asymtune.train.config import TrainConfig
from asymtune.train.trainer import SplitLogits, Trainer

RARE_FRACTION = 0.02
"""A class under this fraction of training voxels starts from the lower sensitivity."""
START_SENSITIVITY = 0.05
"""Validation sensitivity of every class at epoch 0 of the curve."""
FINAL_SENSITIVITY = {True: 0.55, False: 0.85}
"""Validation sensitivity at the end of a baseline training, for rare (True) and other classes."""
SEED_NOISE = 0.02
"""Standard deviation of the end value between seeds (and between settings), in sensitivity."""
BASE_FALSE_POSITIVE_RATE = 2e-4
"""Share of background voxels predicted as a foreground class by the baseline."""
OTHER_CLASS_LOGIT = -3.0
"""The logit of a foreground class on a voxel of another foreground class."""

_NORMAL = NormalDist()


def _bump(value: float, centre: float, width: float) -> float:
    """1 at ``centre``, falling off as a Gaussian of ``width``."""
    return math.exp(-(((value - centre) / width) ** 2))


def setting_effect(settings: AsymmetrySettings, cls: int, rare: bool, augment: bool) -> float:
    """How much the setting helps foreground class ``cls``, in [-0.5, 1] (0: the baseline).

    Args:
        settings: the asymmetry setting.
        cls: a foreground class index (>= 1).
        rare: whether the class is rare in the training split.
        augment: whether ``train.augment`` is on (only then does ``aug_p_bg`` matter).
    """
    margin, gamma = settings.margin, settings.gamma
    effect = 0.45 * (1 - math.exp(-margin[cls] * 3)) * _bump(margin[cls], 1.0, 1.5)
    effect -= 0.6 * min(margin[0], 1.0)  # a margin on the background: the symmetric variant
    effect += 0.35 * _bump(gamma[0], 4.0, 2.5) * (1 - math.exp(-gamma[0]))
    effect -= 0.2 * min(gamma[cls] / 4.0, 1.0)  # focal on the class itself
    if settings.mixup_alpha > 0:
        effect += -0.1 if settings.mixup_symmetric else 0.2 * settings.rare[cls] * min(settings.mixup_alpha / 0.2, 1.0)
    if settings.adv_eps > 0:
        effect += 0.15 * settings.rare[cls] * (1 - math.exp(-settings.adv_eps / 5))
    if augment:
        effect += 0.1 * settings.rare[cls] * (1 - settings.aug_p_bg)
    if not rare:
        effect *= 0.5  # the frequent classes have less to gain
    return float(min(max(effect, -0.5), 1.0))


def _stable_seed(*parts: Any) -> int:
    """A seed from values, the same in every process (``hash`` of a string is salted per process)."""
    return zlib.crc32(repr(parts).encode())


class SimulatedTrainer(Trainer):
    """A :class:`Trainer` whose epochs sleep ``train.simulate_epoch_seconds`` and whose logits follow
    a simulated learning curve (module docstring). Same interface, same metric keys, same state.

    A trainer at epoch 0 whose logits are asked for holds loaded weights (the confirmation's test
    does exactly that: :func:`asymtune.confirm.jobs.evaluate_job`); the simulation takes it as
    trained for ``train.epochs`` epochs, since the weights themselves say nothing.
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        model_options: dict[str, Any],
        settings: AsymmetrySettings,
        config: TrainConfig,
    ) -> None:
        if not config.simulate_epoch_seconds > 0:
            raise ValueError(
                f"train.simulate_epoch_seconds={config.simulate_epoch_seconds}: a SimulatedTrainer needs a value > 0"
            )
        super().__init__(dataset, model_options, settings, dataclasses.replace(config, device="cpu"))
        fractions = dataset.class_fractions()
        setting_key = tuple(sorted(settings.to_dict().items()))
        self.final_sensitivity: dict[int, float] = {}
        for cls in range(1, dataset.num_classes):
            rare = bool(fractions[cls] < RARE_FRACTION)
            base = FINAL_SENSITIVITY[rare]
            noise = np.random.default_rng(_stable_seed(config.seed, setting_key, cls)).normal(0.0, SEED_NOISE)
            value = base + (1 - base) * 0.6 * setting_effect(settings, cls, rare, config.augment) + noise
            self.final_sensitivity[cls] = float(min(max(value, 0.02), 0.995))
        self.false_positive_rate = {
            cls: BASE_FALSE_POSITIVE_RATE * (1 + 0.5 * settings.margin[cls]) * (1 + 0.1 * settings.gamma[0])
            for cls in range(1, dataset.num_classes)
        }

    # -------------------------------------------------------------------------- the curve
    def _progress(self) -> float:
        """Share of the curve covered at ``self.epoch`` (0 at epoch 0, near 1 at ``train.epochs``)."""
        epoch = self.epoch if self.epoch > 0 else self.config.epochs  # loaded weights: see the class docstring
        return 1 - math.exp(-3 * epoch / self.config.epochs)

    def sensitivity(self, cls: int, on_train: bool = False) -> float:
        """The simulated sensitivity of foreground class ``cls`` at the current epoch; on the
        training split it is higher (overfitting), the less so the better the setting."""
        final = self.final_sensitivity[cls]
        if on_train:
            final = final + (1 - final) * 0.8
        return START_SENSITIVITY + (final - START_SENSITIVITY) * self._progress()

    def train_epoch(self) -> dict[str, float]:
        """Sleep ``train.simulate_epoch_seconds``; returns the simulated mean losses."""
        time.sleep(self.config.simulate_epoch_seconds)
        self.epoch += 1
        loss = 0.1 + 1.2 * (1 - self._progress())
        losses = {"train/loss": loss}
        if self.settings.adv_eps > 0 and self.settings.schedule == "separate":
            losses["train/loss_adversarial"] = 1.2 * loss
        if self.settings.mixup_alpha > 0 and self.settings.schedule == "separate":
            losses["train/loss_mixup"] = 1.1 * loss
        return losses

    # ------------------------------------------------------------------------ the logits
    def _split_index(self, split: Split) -> int:
        for index, known in enumerate((self.dataset.train, self.dataset.val, self.dataset.test)):
            if split is known:
                return index
        return 3

    def _case_logits(self, label: np.ndarray, rng: np.random.Generator, on_train: bool) -> torch.Tensor:
        """Simulated logits ``(C, *spatial)`` float32 of one case, from its label map ``(*spatial)``."""
        num_classes = self.dataset.num_classes
        label = np.asarray(label, dtype=np.int64)
        logits = np.zeros((num_classes, *label.shape), dtype=np.float32)
        background = label == 0
        for cls in range(1, num_classes):
            mu = _NORMAL.inv_cdf(min(max(self.sensitivity(cls, on_train), 1e-4), 1 - 1e-4))
            mu_background = _NORMAL.inv_cdf(1 - self.false_positive_rate[cls])
            noise = rng.standard_normal(label.shape).astype(np.float32)
            own = label == cls
            logits[cls] = np.where(own, mu + noise, np.where(background, noise - mu_background, OTHER_CLASS_LOGIT))
        return torch.from_numpy(logits)

    def predict_logits(self, split: Split) -> SplitLogits:
        """Simulated logits of every image of ``split``, as :meth:`Trainer.predict_logits` returns
        them: ``(N, C, *spatial)`` for a stacked split, else one ``(C, *spatial_i)`` per case."""
        on_train = split is self.dataset.train
        rng = np.random.default_rng(_stable_seed(self.config.seed, self.epoch, self._split_index(split)))
        logits = [self._case_logits(label, rng, on_train) for _, label in split.cases()]
        return torch.stack(logits) if split.is_stacked else logits

"""Train one segmentation model with one asymmetry setting: the body of every trial.

Each iteration follows method.md section 3.6: an optimiser step on the clean (optionally
augmented) batch, then, when enabled, one on its adversarial version and one on a mixup batch
(``schedule="separate"``, the authors' schedule); or one step on the sum of those losses
(``schedule="summed"``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from asymtune.data.base import SegmentationDataset, Split
from asymtune.data.patches import PatchSampler, default_patch_size
from asymtune.method import (
    AsymmetrySettings,
    SegmentationLoss,
    adversarial_perturbation,
    create_loss,
    mixup_batch,
    soft_mixup_batch,
)
from asymtune.models import create_model
from asymtune.train.case_metrics import case_metrics_dict, case_scores
from asymtune.train.config import TrainConfig
from asymtune.train.inference import sliding_window_logits
from asymtune.train.metrics import ConfusionCounts, confusion_counts, metrics_dict
from asymtune.train.offsets import apply_offsets, cross_fitted_logits, fit_logit_offsets

SplitLogits = torch.Tensor | list[torch.Tensor]
"""Logits of a split: ``(N, C, *spatial)`` for a stacked split, else one ``(C, *spatial_i)`` per case."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the trial stops and never counts as a result."""


@dataclass
class EpochRecord:
    """What one epoch produced: ``epoch`` counts from 1; ``metrics`` are flat ``name -> value``."""

    epoch: int
    metrics: dict[str, float]


def build_loss(config: TrainConfig, settings: AsymmetrySettings, dataset: SegmentationDataset) -> SegmentationLoss:
    """The registered loss ``config.loss`` names, given everything any loss may read: the margins and
    gammas of ``settings`` (read by ``asymmetric``) and the training split's class fractions (read by
    ``weighted_ce``, computed only then)."""
    return create_loss(
        config.loss,
        num_classes=dataset.num_classes,
        margin=settings.margin,
        gamma=settings.gamma,
        class_fractions=dataset.class_fractions,
        ce_weight=config.ce_weight,
        dice_weight=config.dice_weight,
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when a GPU is visible to this process, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no GPU is visible to this process (resources.gpu=0?)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (weight init, adversarial probes)."""
    torch.manual_seed(seed)


class Trainer:
    """Owns the model, optimiser, loss and random state of one run.

    Args:
        dataset: the data; only ``train`` and ``val`` are touched during training.
        model_options: ``{"name": ..., **options}`` for :func:`asymtune.models.create_model`.
        settings: the asymmetry setting.
        config: optimisation options.
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        model_options: dict[str, Any],
        settings: AsymmetrySettings,
        config: TrainConfig,
    ) -> None:
        if settings.num_classes != dataset.num_classes:
            raise ValueError(
                f"settings have {settings.num_classes} classes, dataset {dataset.name!r} has "
                f"{dataset.num_classes} ({', '.join(dataset.class_names)})"
            )
        torch.set_num_threads(config.num_threads)
        seed_everything(config.seed)
        self.dataset = dataset
        self.settings = settings
        self.config = config
        options = dict(model_options)
        name = str(options.pop("name"))
        self.device = resolve_device(config.device)
        self.model: nn.Module = create_model(
            name, dataset.spatial_dims, dataset.in_channels, dataset.num_classes, **options
        ).to(self.device)
        on_gpu = self.device.type == "cuda"
        self.memory_format = (
            torch.channels_last if on_gpu and config.channels_last and dataset.spatial_dims == 2
            else torch.contiguous_format
        )
        self.model = self.model.to(memory_format=self.memory_format)  # type: ignore[call-overload]  # missing from torch's stubs
        self.amp_dtype: torch.dtype | None = None
        if on_gpu and config.mixed_precision:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.loss = build_loss(config, settings, dataset)
        self.augmenter = None
        if config.augment:
            from asymtune.data.augment import AsymmetricAugmenter

            self.augmenter = AsymmetricAugmenter(
                rare=settings.rare, p_bg=settings.aug_p_bg, spatial_dims=dataset.spatial_dims
            )
        self.epoch = 0
        self.last_val_logits: SplitLogits | None = None  # of the last validation, as predict_logits returns them
        self.logit_offsets: list[float] | None = None  # per class, once calibrate_logit_offsets fitted them
        self.batch_rng = np.random.default_rng(config.seed)
        self.torch_rng = torch.Generator(device=self.device).manual_seed(config.seed)  # adversarial probes
        self.augment_rng = torch.Generator().manual_seed(config.seed + 1)  # augmentation runs on the CPU
        self.patch_size = self.patch_size_for(dataset, config)
        self.sampler: PatchSampler | None = None
        if self.patch_size is not None:
            self.sampler = PatchSampler(
                dataset.train, self.patch_size, dataset.num_classes, config.oversample_foreground
            )
        else:
            self._train_images = torch.from_numpy(dataset.train.images)
            self._train_labels = torch.from_numpy(dataset.train.labels)

    @staticmethod
    def patch_size_for(dataset: SegmentationDataset, config: TrainConfig) -> tuple[int, ...] | None:
        """Training patch (and sliding-window) size: ``train.patch_size``; for cases of different
        sizes without one, :func:`default_patch_size`; None trains a stacked split on whole images."""
        split = dataset.train
        if config.patch_size is None:
            if split.is_stacked:
                return None
            return default_patch_size([label.shape for _, label in split.cases()], split.spatial_dims)
        stacked_shape = list(split.labels.shape[1:]) if isinstance(split.labels, np.ndarray) else None
        if len(config.patch_size) != split.spatial_dims or (
            stacked_shape is not None and any(p > s for p, s in zip(config.patch_size, stacked_shape))
        ):
            shape = stacked_shape if stacked_shape is not None else f"{split.spatial_dims}-D cases"
            raise ValueError(
                f"train.patch_size={list(config.patch_size)} does not fit images of spatial shape {shape}: "
                f"expected {split.spatial_dims} values, each at most the image size"
            )
        return tuple(config.patch_size)

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-for-bit (model, optimiser, RNGs)."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "batch_rng": self.batch_rng.bit_generator.state,
            "torch_rng": self.torch_rng.get_state(),
            "augment_rng": self.augment_rng.get_state(),
            "torch_global_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batch_rng.bit_generator.state = state["batch_rng"]
        self.torch_rng.set_state(state["torch_rng"])
        self.augment_rng.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_global_rng"])

    # -------------------------------------------------------------------------- training
    def _sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch ``(B, C_in, *spatial)``, ``(B, *spatial)``: whole images drawn without replacement
        when possible, or patches (:class:`PatchSampler`) when a patch size is in use."""
        size = self.config.batch_size
        if self.sampler is not None:
            image_array, label_array = self.sampler.sample(size, self.batch_rng)
            images, labels = torch.from_numpy(image_array), torch.from_numpy(label_array)
        else:
            n = len(self.dataset.train)
            index_t = torch.from_numpy(self.batch_rng.choice(n, size=size, replace=size > n))
            images, labels = self._train_images[index_t], self._train_labels[index_t]
        if self.augmenter is not None:
            images, labels, _ = self.augmenter(images, labels, self.augment_rng)
        return self._to_device(images), labels.to(self.device, non_blocking=True)

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        """Mixed precision for the network on CUDA; a no-op on the CPU."""
        if self.amp_dtype is None:
            yield
        else:
            with torch.autocast("cuda", dtype=self.amp_dtype):
                yield

    def _check_finite(self, loss: torch.Tensor, what: str) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"the {what} loss is {value} at epoch {self.epoch + 1}: training diverged "
                f"(settings: {self.settings.to_dict()})"
            )

    def _step(self, loss: torch.Tensor, what: str) -> float:
        self._check_finite(loss, what)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _mixup_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        settings = self.settings
        if settings.mixup_symmetric:
            mixed = soft_mixup_batch(
                images, labels, alpha=settings.mixup_alpha, num_classes=settings.num_classes,
                generator=self.batch_rng,
            )
            soft: torch.Tensor = self.loss.forward_soft(self._logits(mixed.images), mixed.soft_labels)
            return soft
        batch = mixup_batch(
            images, labels, alpha=settings.mixup_alpha, mu=settings.mixup_margin, rare=settings.rare,
            generator=self.batch_rng, num_classes=settings.num_classes,
        )
        mixed_loss: torch.Tensor = self.loss(self._logits(batch.images), batch.labels)
        return mixed_loss

    def _adversarial_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        delta = adversarial_perturbation(
            self.model, images, labels, rare=self.settings.rare, eps=self.settings.adv_eps, xi=self.settings.adv_xi,
            generator=self.torch_rng,
        )
        adversarial: torch.Tensor = self.loss(self._logits(images + delta), labels)
        return adversarial

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's forward pass (under autocast on CUDA); the loss then runs in float32."""
        with self._autocast():
            logits: torch.Tensor = self.model(images)
        return logits

    def _eval_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's forward pass in float32, with any autocast turned off.

        Evaluation and the logit-shift diagnostics read these logits: bf16 logits tie at
        ``s = 0`` often enough that the share of ``s < 0`` would no longer be ``1 - sensitivity``
        (``argmax`` breaks a tie towards the lower class index).
        """
        with torch.autocast(self.device.type, enabled=False):
            logits: torch.Tensor = self.model(images)
        return logits.float()

    def _iteration(self, images: torch.Tensor, labels: torch.Tensor, sums: dict[str, float]) -> None:
        """One iteration of the schedule (method.md 3.6); adds each step's loss to ``sums``."""
        settings = self.settings
        if settings.schedule == "separate":
            sums["clean"] += self._step(self.loss(self._logits(images), labels), "clean")
            if settings.adv_eps > 0:
                sums["adversarial"] += self._step(self._adversarial_loss(images, labels), "adversarial")
            if settings.mixup_alpha > 0:
                sums["mixup"] += self._step(self._mixup_loss(images, labels), "mixup")
        else:
            total = self.loss(self._logits(images), labels)
            if settings.adv_eps > 0:
                total = total + self._adversarial_loss(images, labels)
            if settings.mixup_alpha > 0:
                total = total + self._mixup_loss(images, labels)
            sums["clean"] += self._step(total, "summed")

    def train_epoch(self) -> dict[str, float]:
        """Run one epoch of iterations; returns mean losses per kind of step."""
        self.model.train()
        settings = self.settings
        sums = {"clean": 0.0, "adversarial": 0.0, "mixup": 0.0}
        for _ in range(self.config.iterations_per_epoch):
            images, labels = self._sample_batch()
            self._iteration(images, labels, sums)
        self.epoch += 1
        iterations = self.config.iterations_per_epoch
        losses = {"train/loss": sums["clean"] / iterations}
        if settings.adv_eps > 0 and settings.schedule == "separate":
            losses["train/loss_adversarial"] = sums["adversarial"] / iterations
        if settings.mixup_alpha > 0 and settings.schedule == "separate":
            losses["train/loss_mixup"] = sums["mixup"] / iterations
        return losses

    # ------------------------------------------------------------------------ evaluation
    @torch.inference_mode()
    def predict_logits(self, split: Split) -> SplitLogits:
        """Logits of every image of ``split`` in eval mode, computed in float32 (no autocast, see
        :meth:`_eval_logits`) and returned on the CPU: a stacked split in batches of whole images
        ``(N, C, *spatial)``; a split of cases by sliding-window inference, one ``(C, *spatial_i)``
        per case."""
        self.model.eval()
        batch = self.config.eval_batch_size
        if not split.is_stacked:
            window = self.patch_size or default_patch_size(
                [label.shape for _, label in split.cases()], split.spatial_dims
            )
            return [
                sliding_window_logits(
                    lambda x: self._eval_logits(self._to_device(x)), image, window, batch, self.device
                )
                for image, _ in split.cases()
            ]
        images = torch.from_numpy(split.images)
        chunks = [
            self._eval_logits(self._to_device(images[start : start + batch])).cpu()
            for start in range(0, len(split), batch)
        ]
        return torch.cat(chunks)

    def evaluate(
        self, split: Split, prefix: str, logits: SplitLogits | None = None, per_case: bool = False
    ) -> dict[str, float]:
        """Per-class Dice, sensitivity, precision on ``split`` (voxels of all cases pooled) as
        ``{prefix}/...`` metrics; with ``per_case``, also the means over cases of per-case Dice,
        sensitivity, precision and HD95 (:mod:`asymtune.train.case_metrics`).

        ``logits`` of ``split`` (as :meth:`predict_logits` returns them: without the fitted logit
        offsets, which are added here) may be passed when already computed.
        """
        logits = self.calibrated(self.predict_logits(split) if logits is None else logits)
        predictions = [item.argmax(0) for item in logits]
        num_classes = self.dataset.num_classes
        counts = ConfusionCounts(*(torch.zeros(num_classes, dtype=torch.float64) for _ in range(3)))
        for prediction, (_, label) in zip(predictions, split.cases()):
            counts = counts + confusion_counts(
                prediction, torch.from_numpy(np.array(label, dtype=np.int64)), num_classes
            )
        metrics = metrics_dict(counts, self.dataset.class_names, prefix)
        if per_case:
            metrics.update(case_metrics_dict(self.case_table(split, predictions), self.dataset.class_names, prefix))
        return metrics

    def evaluate_cases(
        self, split: Split, prefix: str, logits: SplitLogits | None = None
    ) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
        """:meth:`evaluate` with ``per_case``, and the per-case table it averaged (:meth:`case_table`:
        one ``{metric: (C - 1,) values}`` per volume), for intervals over cases."""
        logits = self.predict_logits(split) if logits is None else logits
        table = self.case_table(split, [item.argmax(0) for item in self.calibrated(logits)])
        metrics = self.evaluate(split, prefix, logits=logits)
        metrics.update(case_metrics_dict(table, self.dataset.class_names, prefix))
        return metrics, table

    def case_table(self, split: Split, predictions: list[torch.Tensor]) -> list[dict[str, np.ndarray]]:
        """Per-case scores (:func:`case_scores`), one entry per volume of ``split``; slices of one
        volume (items sharing a case id) are stacked back into the volume first."""
        table = []
        for group in split.volumes():
            spacing = split.spacing(group[0])
            labels = [torch.from_numpy(np.array(split.labels[i], dtype=np.int64)) for i in group]
            if len(spacing) > split.spatial_dims:  # 2-D slices of a volume, slice axis first
                prediction, label = torch.stack([predictions[i] for i in group]), torch.stack(labels)
            else:
                prediction, label = predictions[group[0]], labels[0]
            table.append(case_scores(prediction, label, self.dataset.num_classes, spacing))
        return table

    # ------------------------------------------------------------------------ logit offsets
    def calibrated(self, logits: SplitLogits) -> SplitLogits:
        """``logits`` (as :meth:`predict_logits` returns them) plus the fitted per-class offsets;
        unchanged before :meth:`calibrate_logit_offsets` (or without ``train.logit_offsets``)."""
        return logits if self.logit_offsets is None else apply_offsets(logits, self.logit_offsets)

    def _val_labels(self) -> list[np.ndarray]:
        return [np.asarray(label) for _, label in self.dataset.val.cases()]

    def calibrate_logit_offsets(self) -> list[float] | None:
        """With ``train.logit_offsets``, fit the per-class offsets on the validation split
        (:func:`~asymtune.train.offsets.fit_logit_offsets`) for every later evaluation and
        prediction, and return them (``[0, b_1, ..., b_{C-1}]``); None without."""
        if not self.config.logit_offsets:
            return None
        self.logit_offsets = fit_logit_offsets(self.predict_logits(self.dataset.val), self._val_labels())
        return self.logit_offsets

    def cross_fitted_validation(self) -> dict[str, float]:
        """The ``val/...`` metrics of :meth:`evaluate` with offsets fitted on the other half of the
        validation split for each image or case (:func:`~asymtune.train.offsets.cross_fitted_logits`):
        an estimate of the offsets' validation score that has not seen the images it scores."""
        val = self.dataset.val
        shifted = cross_fitted_logits(self.predict_logits(val), self._val_labels())
        raw = torch.stack(shifted) if val.is_stacked else shifted
        held, self.logit_offsets = self.logit_offsets, None  # the shifts are already in ``raw``
        try:
            return self.evaluate(val, "val", logits=raw)
        finally:
            self.logit_offsets = held

    def fit(self, on_epoch_end: Callable[[EpochRecord], None] | None = None) -> list[EpochRecord]:
        """Train from ``self.epoch`` to ``config.epochs``, validating after every epoch."""
        records = []
        while self.epoch < self.config.epochs:
            metrics = self.train_epoch()
            self.last_val_logits = self.predict_logits(self.dataset.val)
            metrics.update(self.evaluate(self.dataset.val, "val", self.last_val_logits))
            record = EpochRecord(epoch=self.epoch, metrics=metrics)
            records.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
        return records

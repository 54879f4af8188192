"""One confirmation model, as a Ray task runs it: train a setting with one seed, or test trained weights.

Kept apart from :mod:`asymtune.confirm.retrain` (which reads the sweep, races and logs to MLflow) so
that a task's worker process imports only what training needs (torch, the data and the trainer):
a confirmation task starts a new worker process, and on a node shared by many trials its imports
are CPU time taken from them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from asymtune.data.base import SegmentationDataset
from asymtune.results.distances import distances_arrays
from asymtune.results.layout import CASE_SERIES
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import Trainer
from asymtune.versions import machine

if TYPE_CHECKING:
    from asymtune.results.trials import TrialRecord

OFFSET_METRIC = "offset"
"""``offset/<class>``: the logit offsets a model with ``train.logit_offsets`` fitted on the validation split."""


@dataclass(frozen=True)
class Job:
    """One model of the confirmation: the setting of a sweep trial, trained with one seed.

    Attributes:
        trial_id: the sweep trial whose setting (and fixed config) is retrained.
        seed: ``train.seed`` of this training.
        dataset_name, dataset_spec: the dataset (``{"source", "params"}``).
        model: model options (``{"name": ..., ...}``).
        train: train options, ``seed`` replaced.
        settings: :meth:`AsymmetrySettings.to_dict` of the setting.
    """

    trial_id: str
    seed: int
    dataset_name: str
    dataset_spec: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]
    settings: dict[str, Any]

    @classmethod
    def of(cls, trial: TrialRecord, seed: int) -> Job:
        run = trial.spec.run_config(trial.settings, seed=seed)
        return cls(
            trial_id=trial.trial_id, seed=int(seed), dataset_name=run["dataset_name"], dataset_spec=run["data"],
            model=run["model"], train=run["train"], settings=run["settings"],
        )

    def train_config(self) -> dict[str, Any]:
        """The ``asymtune train`` config of this model (what an export writes)."""
        return {
            "dataset_name": self.dataset_name, "data": self.dataset_spec, "model": dict(self.model),
            "train": dict(self.train), "settings": dict(self.settings),
        }


def _trainer(job: Job, dataset: SegmentationDataset | None) -> Trainer:
    return build_trainer(job.train_config(), dataset)


def state_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """``state`` (a model's ``state_dict``: name -> tensor of any shape) as ``torch.save`` bytes,
    every tensor detached and on the CPU, so that a Ray task can return it to a driver without a GPU."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    return buffer.getvalue()


def _offset_metrics(trainer: Trainer, offsets: list[float] | None) -> dict[str, float]:
    names = trainer.dataset.class_names
    return {} if offsets is None else {f"{OFFSET_METRIC}/{names[c]}": offsets[c] for c in range(1, len(names))}


def train_job(job: Job, dataset: SegmentationDataset | None = None) -> dict[str, Any]:
    """Train ``job`` from scratch; returns the last epoch's train/validation metrics and the weights.

    With ``train.logit_offsets`` the validation metrics are those of cross-fitted offsets
    (:meth:`Trainer.cross_fitted_validation`), so that the choice on validation does not favour
    offsets fitted on the images they are scored on. Never touches the test split.
    """
    trainer = _trainer(job, dataset)
    records = trainer.fit()
    metrics = dict(records[-1].metrics)
    if trainer.config.logit_offsets:
        metrics.update(trainer.cross_fitted_validation())
    state = state_bytes(trainer.model.state_dict())
    return {"metrics": metrics, "epochs": trainer.epoch, "state": state, "machine": machine(trainer.device)}


def offset_job(job: Job, state: bytes, dataset: SegmentationDataset | None = None) -> dict[str, Any]:
    """The training of ``job`` (a setting with ``train.logit_offsets``) made from the weights of the
    same setting without offsets, trained with the same seed (the baseline's confirmation run:
    the offsets change no training step): the cross-fitted validation metrics, the weights unchanged.

    Never touches the test split.
    """
    trainer = _trainer(job, dataset)
    trainer.model.load_state_dict(torch.load(io.BytesIO(state), map_location=trainer.device, weights_only=True))
    trainer.epoch = trainer.config.epochs
    return {"metrics": trainer.cross_fitted_validation(), "epochs": trainer.epoch, "state": state}


def evaluate_job(
    job: Job, state: bytes, with_distances: bool, dataset: SegmentationDataset | None = None,
) -> dict[str, Any]:
    """Evaluate trained weights on the test split: per-class and per-case metrics (and each case's
    Dice per class, ``cases``: ``{"<CASE_SERIES>/<class>": [one value per test case]}``), and (optionally)
    the boundary distances of each class's voxels on the train and test splits (an ``.npz``).

    With ``train.logit_offsets``, the offsets are fitted on the whole validation split first
    (:meth:`Trainer.calibrate_logit_offsets`) and logged as ``offset/<class>``; the test metrics
    are those of the shifted logits.
    """
    from asymtune.train.diagnostics import split_distances

    trainer = _trainer(job, dataset)
    trainer.model.load_state_dict(torch.load(io.BytesIO(state), map_location=trainer.device, weights_only=True))
    trainer.epoch = trainer.config.epochs
    offsets = trainer.calibrate_logit_offsets()
    split = trainer.dataset
    metrics, table = trainer.evaluate_cases(split.test, "test")
    metrics.update(_offset_metrics(trainer, offsets))
    cases = {f"{CASE_SERIES}/{name}": [float(case["dice"][c - 1]) for case in table]
             for c, name in enumerate(split.class_names) if c > 0}
    distances = None
    if with_distances:
        arrays = distances_arrays({name: split_distances(trainer, data) for name, data in (
            ("train", split.train), ("test", split.test))})
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        distances = buffer.getvalue()
    return {"metrics": metrics, "distances": distances, "cases": cases}

"""The one way from a run description to a :class:`~asymtune.train.trainer.Trainer`.

A run description is what ``asymtune train`` reads and what a sweep exports
(``configs/<dataset>.yaml``): plain dicts, so that it crosses process boundaries (Ray trials,
confirmation jobs, benchmark workers) and is rebuilt into dataclasses here, on the far side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asymtune.data.base import SegmentationDataset
from asymtune.data.loading import load_dataset
from asymtune.method import AsymmetrySettings
from asymtune.train.config import TrainConfig
from asymtune.train.simulated import SimulatedTrainer
from asymtune.train.trainer import Trainer

RUN_KEYS = ("dataset_name", "data", "model", "train", "settings")
"""The keys of a run description: the dataset's name and ``{"source", "params"}`` entry, the model
options (``{"name", ...}``), the :class:`TrainConfig` mapping and the settings
(:meth:`AsymmetrySettings.to_dict` form)."""

DATASET_KEYS = ("dataset_name", "data")
"""The keys only needed when the dataset is loaded from the description."""


def build_trainer(run: Mapping[str, Any], dataset: SegmentationDataset | None = None) -> Trainer:
    """The trainer of one run, from its description.

    Args:
        run: ``{"dataset_name": str, "data": {"source", "params"}, "model": {"name", ...},
            "train": {...}, "settings": {...}}``, the shape of ``conf/train.yaml`` and of an
            exported config; other keys (``save_model``, ...) are left to the caller.
        dataset: the dataset, when the caller has loaded it already; ``dataset_name`` and
            ``data`` may then be absent.

    Returns:
        A :class:`Trainer` at epoch 0, seeded from ``train.seed``; with
        ``train.simulate_epoch_seconds > 0``, its simulation :class:`SimulatedTrainer`.

    Raises:
        ValueError: naming the missing keys, or the key whose value is invalid (``settings:``,
            ``train.``, ``data``).

    Example:
        >>> from asymtune.method import baseline
        >>> run = {
        ...     "dataset_name": "synth_lesions",
        ...     "data": {"source": "synth_lesions", "params": {"image_size": 32, "n_train": 4}},
        ...     "model": {"name": "unet", "base_channels": 4, "depth": 2},
        ...     "train": {"epochs": 1, "iterations_per_epoch": 1, "batch_size": 2, "device": "cpu"},
        ...     "settings": baseline(2).to_dict(),
        ... }
        >>> build_trainer(run).settings.is_baseline
        True
    """
    needed = RUN_KEYS if dataset is None else tuple(key for key in RUN_KEYS if key not in DATASET_KEYS)
    missing = [key for key in needed if key not in run]
    if missing:
        raise ValueError(f"the run description lacks keys {missing}: expected {list(needed)}")
    try:
        settings = AsymmetrySettings.from_dict(dict(run["settings"]))
    except (TypeError, ValueError) as error:
        message = str(error)
        raise ValueError(message if message.startswith("settings:") else f"settings: {message}") from error
    config = TrainConfig.from_mapping(dict(run["train"]))
    if dataset is None:  # after the cheap checks: loading may take a while
        dataset = load_dataset(dict(run["data"]), str(run["dataset_name"]))
    if config.simulate_epoch_seconds > 0:  # a scale benchmark's stand-in: no network is trained
        return SimulatedTrainer(dataset, dict(run["model"]), settings, config)
    return Trainer(dataset, dict(run["model"]), settings, config)

"""The Ray Tune trainable: one trial = train one model with the setting Optuna proposed.

The trial's config holds the sweep's fixed part under ``"asymtune"`` (dataset entry, model, train
options, the search space mapping) and Optuna's suggestions at the top level.
Every epoch reports validation metrics, the logit-shift diagnostics (``diag/...``) and a
checkpoint holding the model state and the boundary distances (``diagnostics.npz``) from which the
driver draws the histograms; a restarted trial continues from its latest checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

from asymtune.data.loading import load_dataset
from asymtune.search.space import SearchSpace
from asymtune.train.config import TrainConfig
from asymtune.train.diagnostics import DIAGNOSTICS_FILE, save_distances, shift_metrics, split_distances
from asymtune.train.settings import AsymmetrySettings
from asymtune.train.trainer import EpochRecord, Trainer

FIXED_KEY = "asymtune"
STATE_FILE = "state.pt"


def settings_from_trial_config(config: dict[str, Any]) -> AsymmetrySettings:
    """The asymmetry setting a trial config stands for."""
    fixed = config[FIXED_KEY]
    space = SearchSpace.from_mapping(fixed["space"], fixed["space_path"]).bind(fixed["class_names"], fixed["rare"])
    params = {key: value for key, value in config.items() if key != FIXED_KEY}
    return space.to_settings(params)


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable."""
    fixed = config[FIXED_KEY]
    dataset = load_dataset(fixed["dataset"], fixed["dataset_name"])
    settings = settings_from_trial_config(config)
    trainer = Trainer(dataset, dict(fixed["model"]), settings, TrainConfig.from_mapping(fixed["train"]))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_state_dict(torch.load(Path(directory) / STATE_FILE, weights_only=True))

    def report(record: EpochRecord) -> None:
        train_distances = split_distances(trainer, dataset.train)
        val_distances = split_distances(trainer, dataset.val)
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), os.path.join(directory, STATE_FILE))
            save_distances(train_distances, val_distances, Path(directory) / DIAGNOSTICS_FILE)
            metrics = dict(record.metrics, epoch=record.epoch, is_baseline=settings.is_baseline)
            metrics.update(shift_metrics(train_distances, val_distances))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    trainer.fit(report)

"""The Ray Tune trainable: one trial = train one model with the setting Optuna proposed.

The trial's config holds the sweep's fixed part under ``"asymtune"`` (dataset entry, model, train
options, the search space mapping, the epochs where the trial may end, the checkpoint interval)
and Optuna's suggestions at the top level.
Every epoch reports the validation metrics. At each epoch where the trial may end (ASHA's rungs,
the last epoch) it also reports the logit-shift diagnostics (``diag/...``) and a checkpoint holding
the model state and the boundary distances (``diagnostics.npz``) from which the driver draws the
histograms, so a trial's last result and checkpoint always carry them, whether ASHA stopped it or
not. Between those epochs it checkpoints every ``checkpoint_every`` epochs; a restarted trial
continues from its latest checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
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


class InjectedFault(RuntimeError):
    """Raised by ``faults.raise_at_epoch`` to test fault tolerance."""


def _faults_apply(faults: dict[str, Any], settings: AsymmetrySettings) -> bool:
    active = faults.get("raise_at_epoch") or faults.get("nan_at_epoch")
    return bool(active) and (not faults.get("only_baseline") or settings.is_baseline)


def _record_attempt() -> None:
    """Add a line to ``attempts.log`` in the trial's folder of the sweep storage.

    Written through the storage filesystem (not the node-local working folder, which a lost
    node takes with it), so restarts after failures and on other nodes stay visible. Object
    stores cannot append, so the file is read and written whole (one attempt runs at a time).
    """
    storage = tune.get_context().get_storage()
    path = f"{storage.trial_fs_path}/attempts.log"
    filesystem = storage.storage_filesystem
    filesystem.create_dir(storage.trial_fs_path, recursive=True)
    previous = b""
    if filesystem.get_file_info(path).type == pyarrow.fs.FileType.File:
        with filesystem.open_input_stream(path) as stream:
            previous = stream.readall()
    with filesystem.open_output_stream(path) as stream:
        stream.write(previous + f"start node={ray.get_runtime_context().get_node_id()}\n".encode())


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable."""
    fixed = config[FIXED_KEY]
    dataset = load_dataset(fixed["dataset"], fixed["dataset_name"])
    settings = settings_from_trial_config(config)
    trainer = Trainer(dataset, dict(fixed["model"]), settings, TrainConfig.from_mapping(fixed["train"]))
    faults = dict(fixed.get("faults") or {}) if _faults_apply(dict(fixed.get("faults") or {}), settings) else {}
    _record_attempt()
    if faults.get("nan_at_epoch"):
        trainer.nan_at_epoch = int(faults["nan_at_epoch"])
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_state_dict(torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True))

    # Sweeps started before these keys existed diagnosed and checkpointed every epoch.
    decision_epochs = set(fixed.get("decision_epochs") or range(1, trainer.config.epochs + 1))
    checkpoint_every = int(fixed.get("checkpoint_every", 1))

    def report(record: EpochRecord) -> None:
        if faults.get("raise_at_epoch") and record.epoch >= int(faults["raise_at_epoch"]):
            raise InjectedFault(f"fault injected at epoch {record.epoch} (faults.raise_at_epoch)")
        metrics = dict(
            record.metrics, epoch=record.epoch, is_baseline=settings.is_baseline,
            node_id=ray.get_runtime_context().get_node_id(),
        )
        if trainer.device.type == "cuda":
            metrics["sys/gpu_peak_mb"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
        diagnose = record.epoch in decision_epochs
        if not diagnose and record.epoch % checkpoint_every:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), os.path.join(directory, STATE_FILE))
            if diagnose:
                train_distances = split_distances(trainer, dataset.train)
                val_distances = split_distances(trainer, dataset.val, trainer.last_val_logits)
                save_distances(train_distances, val_distances, Path(directory) / DIAGNOSTICS_FILE)
                metrics.update(shift_metrics(train_distances, val_distances))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    trainer.fit(report)

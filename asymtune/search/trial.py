"""One trial: train one model with the setting Optuna proposed (run by :mod:`asymtune.search.trainable`).

The trial's config is the trial contract of :mod:`asymtune.results.spec`: the sweep's fixed part
(:class:`~asymtune.results.spec.TrialSpec`), the resolved per-class setting and Optuna's raw values.
Every epoch reports the validation metrics. At each epoch where the trial may end (ASHA's rungs,
the last epoch) it also reports the logit-shift diagnostics (``diag/...``) and a checkpoint holding
the model state, the boundary distances (``diagnostics.npz``) and their histograms
(``logit_shift.png``, drawn here in the trial so that the driver only copies files; not drawn by
a simulated trial), so a trial's last result and checkpoint always carry them, whether ASHA stopped
it or not. Between those epochs it checkpoints every ``checkpoint_every`` epochs; a restarted trial
continues from its latest checkpoint. A trial reports the niceness it runs at (``sys/niceness``,
:mod:`asymtune.search.priority`; the trainable sets it before it imports this module); with
``mlflow.system_metrics`` it also reports its CPU, memory and GPU (``system/...``,
:mod:`asymtune.search.system_metrics`).
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
from asymtune.method import plot_logit_shift
from asymtune.results.distances import save_distances
from asymtune.results.layout import DIAGNOSTICS_FILE, DIAGNOSTICS_PLOT, STATE_FILE
from asymtune.results.spec import trial_settings, trial_spec
from asymtune.search.faults import Faults
from asymtune.search.priority import current_niceness
from asymtune.search.system_metrics import SystemMetrics
from asymtune.train.diagnostics import shift_metrics, split_distances
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import EpochRecord


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


def train_trial(config: dict[str, Any]) -> None:
    """Train the trial ``config`` (the trial contract, :mod:`asymtune.results.spec`), reporting to Ray Tune."""
    spec = trial_spec(config)
    settings = trial_settings(config)
    dataset = load_dataset(spec.dataset, spec.dataset_name)
    trainer = build_trainer(spec.run_config(settings), dataset)
    faults = Faults.from_environment().for_trial(settings.is_baseline)
    faults.poison_loss(trainer.loss, lambda: trainer.epoch + 1)
    _record_attempt()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.load_state_dict(torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True))

    decision_epochs = set(spec.decision_epochs)
    # A scale benchmark's stand-in trial draws no histogram: it is trial-side work, on a cluster done on the
    # trial's own node, which the simulation's many logical slots on few cores would otherwise serialise.
    simulated = trainer.config.simulate_epoch_seconds > 0
    system = SystemMetrics(trainer.device) if spec.system_metrics else None

    def report(record: EpochRecord) -> None:
        faults.check_epoch(record.epoch)
        metrics = dict(
            record.metrics, epoch=record.epoch, is_baseline=settings.is_baseline,
            node_id=ray.get_runtime_context().get_node_id(),
        )
        metrics["sys/niceness"] = current_niceness()
        if trainer.device.type == "cuda":
            metrics["sys/gpu_peak_mb"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
        if system is not None:
            metrics.update(system.sample())
        diagnose = record.epoch in decision_epochs
        if not diagnose and record.epoch % spec.checkpoint_every:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as directory:
            torch.save(trainer.state_dict(), os.path.join(directory, STATE_FILE))
            if diagnose:
                train_distances = split_distances(trainer, dataset.train)
                val_distances = split_distances(trainer, dataset.val, trainer.last_val_logits)
                distances = {"train": train_distances, "val": val_distances}
                save_distances(distances, Path(directory) / DIAGNOSTICS_FILE)
                if not simulated:
                    plot_logit_shift({f"trial {tune.get_context().get_trial_id()}": distances},
                                     Path(directory) / DIAGNOSTICS_PLOT)
                metrics.update(shift_metrics(train_distances, val_distances))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    trainer.fit(report)

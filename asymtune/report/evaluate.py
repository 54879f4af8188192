"""Evaluate a stored trial on the test split: per-class metrics and logit-shift distances.

Test data is read only here, after selection, so it cannot influence which setting is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asymtune.data.base import SegmentationDataset
from asymtune.train.config import TrainConfig
from asymtune.train.diagnostics import split_distances
from asymtune.train.settings import AsymmetrySettings
from asymtune.train.trainer import Trainer


@dataclass
class Evaluation:
    """Test metrics and boundary distances of one trained model.

    Attributes:
        metrics: flat ``test/{metric}/{class}`` values.
        distances: ``{split: {class_name: (K,) array}}`` boundary distances (method.md section 4)
            for ``"train"`` and ``"test"``.
    """

    metrics: dict[str, float]
    distances: dict[str, dict[str, np.ndarray]]


def trainer_from_state(
    dataset: SegmentationDataset,
    model: dict[str, Any],
    train: dict[str, Any],
    settings: AsymmetrySettings,
    state_file: Path,
) -> Trainer:
    """A trainer holding the weights saved in ``state_file``."""
    trainer = Trainer(dataset, model, settings, TrainConfig.from_mapping(train))
    # weights only: the trial may have trained on a GPU, whose RNG states do not load on a CPU
    trainer.model.load_state_dict(torch.load(state_file, map_location="cpu", weights_only=True)["model"])
    return trainer


def evaluate_trainer(trainer: Trainer) -> Evaluation:
    """Test metrics and train/test boundary distances of a trained model."""
    dataset = trainer.dataset
    return Evaluation(
        metrics=trainer.evaluate(dataset.test, "test"),
        distances={"train": split_distances(trainer, dataset.train), "test": split_distances(trainer, dataset.test)},
    )

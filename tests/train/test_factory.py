"""``build_trainer``: the one way from a run description (``asymtune train``'s config) to a Trainer."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch

from asymtune.data import create_dataset
from asymtune.method import AsymmetricLoss, WeightedCEDiceLoss, from_paper_form
from asymtune.train.config import TrainConfig
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import Trainer

DATA = {"source": "synth_lesions", "params": {"image_size": 32, "n_train": 4, "n_val": 2, "n_test": 2}}
MODEL = {"name": "unet", "base_channels": 4, "depth": 2}
TRAIN = {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 2, "device": "cpu", "seed": 3}


def _run(**changes: Any) -> dict[str, Any]:
    settings = from_paper_form(2, [False, True], margin=1.0, gamma=2.0, mixup_alpha=0.2, mixup_margin=0.2)
    return {
        "dataset_name": "synth_lesions",
        "data": DATA,
        "model": MODEL,
        "train": TRAIN,
        "settings": settings.to_dict(),
        **changes,
    }


def test_builds_the_trainer_the_run_describes() -> None:
    run = _run()
    trainer = build_trainer(run)
    assert isinstance(trainer, Trainer)
    assert trainer.dataset.name == "synth_lesions" and len(trainer.dataset.train) == 4
    assert trainer.settings.to_dict() == run["settings"]
    assert trainer.config == TrainConfig.from_mapping(TRAIN)
    assert isinstance(trainer.loss, AsymmetricLoss) and trainer.loss.margin.tolist() == [0.0, 1.0]
    assert run["model"] == MODEL  # the options are copied, not consumed


def test_equals_the_trainer_built_by_hand_and_a_given_dataset_is_used() -> None:
    dataset = create_dataset("synth_lesions", image_size=32, n_train=4, n_val=2, n_test=2)
    run = _run()
    by_hand = Trainer(dataset, dict(MODEL), from_paper_form(2, [False, True], margin=1.0, gamma=2.0,
                                                            mixup_alpha=0.2, mixup_margin=0.2),
                      TrainConfig.from_mapping(TRAIN))
    built = build_trainer({key: run[key] for key in ("model", "train", "settings")}, dataset)
    assert built.dataset is dataset
    for name, value in by_hand.model.state_dict().items():  # same seed, same initial weights
        assert torch.equal(built.model.state_dict()[name], value)
    assert [r.metrics for r in built.fit()] == [r.metrics for r in by_hand.fit()]


def test_the_configured_loss_is_built_from_the_registry() -> None:
    trainer = build_trainer(_run(train={**TRAIN, "loss": "weighted_ce", "ce_weight": 0.5}))
    assert isinstance(trainer.loss, WeightedCEDiceLoss) and trainer.loss.ce_weight == 0.5
    assert trainer.loss.class_weights[1] > trainer.loss.class_weights[0]  # the lesion is the rare class


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"model": MODEL, "train": TRAIN}, "the run description lacks keys ['dataset_name', 'data', 'settings']"),
        (_run(settings={"margin": [0.0, -1.0], "gamma": [0.0, 0.0], "rare": [False, True]}),
         "settings: margin[1]=-1.0: expected a finite value >= 0"),
        (_run(settings={"margin": [0.0, 0.0], "gamma": [0.0, 0.0], "rare": [False, True], "temperature": 2}),
         "settings: unknown keys ['temperature']"),
        (_run(train={**TRAIN, "epoch": 3}), "train: unknown keys ['epoch']"),
        (_run(data={"source": "synth_lesions", "parameters": {}}),
         "data.sets.synth_lesions: unknown keys ['parameters']"),
        (_run(settings={"margin": [0.0] * 3, "gamma": [0.0] * 3, "rare": [False] * 3}),
         "settings have 3 classes, dataset 'synth_lesions' has 2"),
    ],
)
def test_a_bad_run_is_refused_naming_the_key(run: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_trainer(run)


def test_with_a_dataset_only_model_train_and_settings_are_needed() -> None:
    dataset = create_dataset("synth_lesions", image_size=32, n_train=4, n_val=2, n_test=2)
    with pytest.raises(ValueError, match=re.escape("lacks keys ['settings']: expected ['model', 'train', 'settings']")):
        build_trainer({"model": MODEL, "train": TRAIN}, dataset)

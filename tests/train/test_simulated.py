"""The simulated trainer (``train.simulate_epoch_seconds > 0``): the Trainer's interface and metric
keys, a learning curve that depends on the setting and the seed, and the real evaluation code on
its logits."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from asymtune.data import create_dataset
from asymtune.method import baseline, from_paper_form
from asymtune.train.config import TrainConfig
from asymtune.train.diagnostics import shift_metrics, split_distances
from asymtune.train.factory import build_trainer
from asymtune.train.simulated import SimulatedTrainer, setting_effect
from asymtune.train.trainer import Trainer

MODEL = {"name": "unet", "base_channels": 4, "depth": 2}
EPOCHS = 6


@pytest.fixture(scope="module")
def organs():
    return create_dataset("synth_organs", image_size=32, n_train=8, n_val=8, n_test=8)


def _trainer(dataset: Any, settings: Any, seed: int = 0, **train: Any) -> Trainer:
    config = {"epochs": EPOCHS, "simulate_epoch_seconds": 1e-3, "seed": seed, **train}
    return build_trainer({"model": MODEL, "train": config, "settings": settings.to_dict()}, dataset)


def _asymmetric(dataset: Any) -> Any:
    rare = [index in dataset.rare_classes for index in range(dataset.num_classes)]
    return from_paper_form(dataset.num_classes, rare, margin=1.0, gamma=4.0)


def test_the_key_selects_the_simulation_and_zero_trains_for_real(organs) -> None:
    assert type(_trainer(organs, baseline(4))) is SimulatedTrainer
    real = build_trainer({"model": MODEL, "train": {"epochs": 1}, "settings": baseline(4).to_dict()}, organs)
    assert type(real) is Trainer


@pytest.mark.parametrize("value", [-1.0, float("inf"), float("nan"), "fast", True])
def test_a_bad_value_is_refused_naming_the_key(value: Any) -> None:
    with pytest.raises(ValueError, match="train.simulate_epoch_seconds"):
        TrainConfig(simulate_epoch_seconds=value)


def test_reports_the_real_trainers_metric_keys_every_epoch(organs) -> None:
    settings = _asymmetric(organs)
    simulated = _trainer(organs, settings).fit()
    real = build_trainer(
        {"model": MODEL, "train": {"epochs": 1, "iterations_per_epoch": 1, "batch_size": 2, "device": "cpu"},
         "settings": settings.to_dict()}, organs,
    ).fit()
    assert [record.epoch for record in simulated] == list(range(1, EPOCHS + 1))
    assert set(simulated[-1].metrics) == set(real[-1].metrics)


def test_the_curve_rises_and_the_setting_and_seed_decide_where_it_ends(organs) -> None:
    def final_dice(settings: Any, seed: int) -> float:
        return _trainer(organs, settings, seed).fit()[-1].metrics["val/mean_fg_dice"]

    records = _trainer(organs, baseline(4)).fit()
    losses = [record.metrics["train/loss"] for record in records]
    assert losses == sorted(losses, reverse=True)
    assert records[-1].metrics["val/mean_fg_sensitivity"] > records[0].metrics["val/mean_fg_sensitivity"]
    assert final_dice(baseline(4), 0) == final_dice(baseline(4), 0)  # deterministic
    assert final_dice(baseline(4), 0) != final_dice(baseline(4), 1)  # seed noise
    seeds = range(4)
    assert sum(final_dice(_asymmetric(organs), s) for s in seeds) > sum(final_dice(baseline(4), s) for s in seeds)


def test_the_response_surface_follows_the_paper_loosely() -> None:
    binary = [False, True]
    assert setting_effect(baseline(2), 1, rare=True, augment=False) == 0.0
    asymmetric = from_paper_form(2, binary, margin=1.0, gamma=4.0)
    symmetric_margin = from_paper_form(2, [True, True], margin=1.0)
    assert setting_effect(asymmetric, 1, rare=True, augment=False) > 0.3
    assert setting_effect(symmetric_margin, 1, rare=True, augment=False) < 0.0


def test_state_checkpoints_and_the_confirmations_loaded_weights(organs) -> None:
    trainer = _trainer(organs, _asymmetric(organs))
    trainer.fit()
    state = trainer.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert buffer.tell() < 200_000  # tiny weights: the model's, untrained
    resumed = _trainer(organs, _asymmetric(organs))
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert resumed.epoch == EPOCHS and resumed.fit() == []
    loaded = _trainer(organs, _asymmetric(organs))  # as evaluate_job does it: weights only, epoch 0
    loaded.model.load_state_dict(trainer.model.state_dict())
    test = loaded.evaluate(organs.test, "test", per_case=True)
    assert test["test/mean_fg_sensitivity"] > 0.6  # taken as trained, not as at epoch 0
    assert "test/mean_fg_hd95" in test


def test_the_diagnostics_run_on_the_simulated_logits_and_show_a_shift(organs) -> None:
    trainer = _trainer(organs, baseline(4))
    trainer.fit()
    train, val = split_distances(trainer, organs.train), split_distances(trainer, organs.val, trainer.last_val_logits)
    assert set(train) == set(organs.class_names[1:])
    metrics = shift_metrics(train, val)
    assert all(metrics[f"diag/shift/{name}"] > 0 for name in organs.class_names[1:])  # overfitting: train > val

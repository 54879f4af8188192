"""``train.logit_offsets``: offsets fitted on validation after training, added to every later
evaluation and prediction; the cross-fitted validation score; the train and predict commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asymtune.cli import compose
from asymtune.data import create_dataset
from asymtune.method.settings import baseline
from asymtune.predict import run_predict
from asymtune.train.command import run_train
from asymtune.train.config import TrainConfig
from asymtune.train.factory import build_trainer
from asymtune.train.offsets import apply_offsets, cross_fitted_logits, fit_logit_offsets
from asymtune.train.trainer import Trainer

MODEL = {"name": "unet", "base_channels": 4, "depth": 2}
TINY = ["train.epochs=1", "train.iterations_per_epoch=2", "model.base_channels=4", "model.depth=2", "train.device=cpu",
        "+data.params.image_size=32", "+data.params.n_train=4", "+data.params.n_val=4", "+data.params.n_test=3"]


@pytest.fixture(scope="module")
def trained() -> Trainer:
    dataset = create_dataset("synth_lesions", image_size=32, n_train=8, n_val=4, n_test=4)
    trainer = Trainer(dataset, MODEL, baseline(2), TrainConfig(epochs=2, iterations_per_epoch=3, batch_size=4,
                                                               logit_offsets=True))
    trainer.fit()
    return trainer


def _val_labels(trainer: Trainer) -> list[np.ndarray]:
    return [np.asarray(label) for _, label in trainer.dataset.val.cases()]


def test_a_non_boolean_value_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"train.logit_offsets='yes': expected true or false"):
        TrainConfig(logit_offsets="yes")  # type: ignore[arg-type]


def test_the_offsets_fitted_on_validation_shift_every_later_evaluation(trained: Trainer) -> None:
    trained.logit_offsets = None
    test = trained.dataset.test
    raw_metrics = trained.evaluate(test, "test")
    raw = trained.predict_logits(test)
    offsets = trained.calibrate_logit_offsets()
    assert offsets == fit_logit_offsets(trained.predict_logits(trained.dataset.val), _val_labels(trained))
    assert offsets is not None and offsets[1] != 0.0, "the under-trained model under-calls the lesion"
    shifted = trained.evaluate(test, "test")
    assert shifted != raw_metrics
    trained.logit_offsets = None
    assert trained.evaluate(test, "test", logits=apply_offsets(raw, offsets)) == shifted
    trained.logit_offsets = offsets
    assert trained.evaluate(test, "test", logits=raw) == shifted, "given logits are shifted too"
    per_case, _ = trained.evaluate_cases(test, "test")
    assert per_case["test/dice/lesion"] == shifted["test/dice/lesion"]


def test_the_cross_fitted_validation_score_never_sees_the_images_it_scores(trained: Trainer) -> None:
    trained.calibrate_logit_offsets()
    held = list(trained.logit_offsets or [])
    val = trained.dataset.val
    expected = cross_fitted_logits(trained.predict_logits(val), _val_labels(trained))
    trained.logit_offsets = None
    wanted = trained.evaluate(val, "val", logits=torch.stack(expected))
    trained.logit_offsets = held
    assert trained.cross_fitted_validation() == wanted
    assert trained.logit_offsets == held, "the fitted offsets stay as they were"


def test_without_the_option_nothing_is_fitted() -> None:
    trainer = build_trainer(compose("train", TINY))
    assert trainer.calibrate_logit_offsets() is None and trainer.logit_offsets is None


def test_train_and_predict_commands_fit_the_offsets_on_validation(tmp_path: Path) -> None:
    config = compose("train", [*TINY, "train.logit_offsets=true", f"+save_model={tmp_path / 'model.pt'}"])
    result = run_train(config, progress=False)
    trainer = build_trainer(config)
    trainer.model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    offsets = trainer.calibrate_logit_offsets()
    assert offsets is not None and result["logit_offsets"] == {"lesion": offsets[1]}
    assert result["test/dice/lesion"] == trainer.evaluate(trainer.dataset.test, "test")["test/dice/lesion"]
    predicted = run_predict(config, tmp_path / "out", weights=tmp_path / "model.pt")
    assert predicted["logit_offsets"] == {"lesion": offsets[1]}
    assert json.loads((tmp_path / "out" / "prediction.json").read_text())["logit_offsets"] == {"lesion": offsets[1]}
    expected = trainer.evaluate(trainer.dataset.test, "test", per_case=True)
    assert predicted["dice/lesion"] == pytest.approx(expected["test/case_dice/lesion"], abs=1e-9)

"""``asymtune predict --model models:/<name>/<version>``: a model of the MLflow registry (as a
sweep registers the chosen one) predicts exactly what its weights file predicts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from asymtune.cli import compose, main
from asymtune.train.factory import build_trainer

pytestmark = pytest.mark.e2e  # a real MLflow store and model registry (about 20 s)

OVERRIDES = ["train.epochs=1", "train.iterations_per_epoch=1", "model.base_channels=4", "model.depth=2",
             "train.device=cpu", "+data.params.image_size=32", "+data.params.n_train=4", "+data.params.n_test=2"]


def test_a_registered_model_predicts_as_its_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow
    import mlflow.pytorch

    config = compose("train", OVERRIDES)
    config_file, weights = tmp_path / "config.yaml", tmp_path / "model.pt"
    config_file.write_text(yaml.safe_dump(config))
    model = build_trainer(config).model
    head = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 2][-1]
    with torch.no_grad():  # weights no initialisation gives: every pixel is a lesion
        head.weight.zero_()
        head.bias.copy_(torch.tensor([-10.0, 10.0]))
    torch.save(model.state_dict(), weights)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    try:
        with mlflow.start_run():
            info = mlflow.pytorch.log_model(model.eval(), name="model", serialization_format="pickle",
                                            pip_requirements=["torch"])
        mlflow.register_model(info.model_uri, "asymtune-synth_lesions")
    finally:
        mlflow.set_tracking_uri(previous)

    common = ["predict", "--config", str(config_file)]
    assert main([*common, "--weights", str(weights), "-o", str(tmp_path / "from_weights")]) == 0
    from_weights = json.loads(capsys.readouterr().out)
    registered = ["--model", "models:/asymtune-synth_lesions/1", "--tracking-uri", uri]
    assert main([*common, *registered, "-o", str(tmp_path / "from_registry")]) == 0
    from_registry = json.loads(capsys.readouterr().out)
    assert from_registry["dice/lesion"] == from_weights["dice/lesion"]
    for name in ("synth_lesions_test_000.nii.gz", "synth_lesions_test_001.nii.gz"):
        for folder in ("from_weights", "from_registry"):
            assert np.all(np.asarray(nib.load(tmp_path / folder / name).dataobj) == 1), folder
    assert json.loads((tmp_path / "from_registry" / "prediction.json").read_text())["model"] == registered[1]

    absent = ["--model", "models:/asymtune-absent/1", "--tracking-uri", uri]
    assert main([*common, *absent, "-o", str(tmp_path / "x")]) == 2
    assert "--model models:/asymtune-absent/1: cannot be loaded from sqlite:///" in capsys.readouterr().err

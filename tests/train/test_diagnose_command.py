"""``asymtune diagnose`` on a model saved by ``asymtune train``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asymtune.cli import compose, main
from asymtune.data.loading import load_dataset
from asymtune.losses import boundary_distance
from asymtune.models import create_model

OVERRIDES = ["train.epochs=1", "train.iterations_per_epoch=2", "model.base_channels=4", "model.depth=2",
             "+data.params.image_size=32", "+data.params.n_train=4", "+data.params.n_test=4"]


def test_diagnose_reports_the_medians_of_the_boundary_distance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "model.pt"
    assert main(["train", "--quiet", *OVERRIDES, f"save_model={weights}"]) == 0
    capsys.readouterr()
    config = tmp_path / "config.yaml"
    import yaml

    config.write_text(yaml.safe_dump(compose("train", OVERRIDES)))
    assert main(["diagnose", "--config", str(config), "--weights", str(weights), "--out", str(tmp_path / "d")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (tmp_path / "d" / "logit_shift.png").stat().st_size > 1000

    # the same numbers by hand: load the weights, compute s on train and test, take medians
    cfg = compose("train", OVERRIDES)
    dataset = load_dataset(cfg["data"])
    options = dict(cfg["model"])
    model = create_model(options.pop("name"), 2, 1, 2, **options)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    with torch.no_grad():
        medians = [
            float(
                np.median(boundary_distance(model(torch.from_numpy(s.images)), torch.from_numpy(s.labels), 1).numpy())
            )
            for s in (dataset.train, dataset.test)
        ]
    lesion = result["classes"]["lesion"]
    assert lesion["median_train"] == pytest.approx(medians[0], abs=1e-5)
    assert lesion["median_test"] == pytest.approx(medians[1], abs=1e-5)
    assert lesion["shift"] == pytest.approx(medians[0] - medians[1], abs=1e-5)


def test_diagnose_refuses_weights_of_another_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "other.pt"
    torch.save(create_model("unet", 2, 1, 3, base_channels=4, depth=2).state_dict(), weights)
    config = tmp_path / "config.yaml"
    import yaml

    config.write_text(yaml.safe_dump(compose("train", OVERRIDES)))
    assert main(["diagnose", "--config", str(config), "--weights", str(weights)]) == 2
    assert "do not fit the model of the config" in capsys.readouterr().err

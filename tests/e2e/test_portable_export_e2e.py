"""Issue 16, item 3: after ``asymtune tune experiment=smoke output_dir=A`` nothing under
``A/configs/`` names A's absolute path (or the checkout's), and a copy of an exported config in
another folder, trained from another working folder, reproduces the confirmed test metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DATASET = "synth_lesions"


def _train(config: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """``asymtune train --config CONFIG`` in a fresh process whose working folder is ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "asymtune.cli", "train", "--config", str(config), *overrides, "--quiet"],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )


def test_configs_name_no_absolute_path_of_the_sweep(smoke_sweep: Path) -> None:
    files = sorted(path for path in (smoke_sweep / "configs").rglob("*") if path.is_file())
    names = {path.relative_to(smoke_sweep / "configs").as_posix() for path in files}
    assert {f"{DATASET}.yaml", f"{DATASET}.provenance.json", f"experiment/{DATASET}.yaml"} <= names
    for path in files:
        text = path.read_text()
        for forbidden in (str(smoke_sweep), str(smoke_sweep.resolve()), str(REPO)):
            assert forbidden not in text, f"configs/{path.relative_to(smoke_sweep / 'configs')} holds {forbidden}"
    record = json.loads((smoke_sweep / "configs" / f"{DATASET}.provenance.json").read_text())
    assert record["mlflow"]["tracking_uri"] == "sqlite:///mlflow.db"
    assert record["optuna"]["storage"] == "sqlite:///optuna.db"
    assert record["search_space"] == "search_spaces/paper.yaml"
    data = yaml.safe_load((smoke_sweep / "configs" / f"{DATASET}.yaml").read_text())["data"]
    assert data["source"] == DATASET and data["fingerprint"] == record["dataset_fingerprint"]
    assert data["fingerprint"].startswith("spec-sha256:")


def test_a_copied_config_trained_elsewhere_reproduces_the_confirmed_metrics(smoke_sweep: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "teammate" / "configs"
    elsewhere.mkdir(parents=True)
    copy = Path(shutil.copy(smoke_sweep / "configs" / f"{DATASET}.yaml", elsewhere / "chosen.yaml"))
    config = yaml.safe_load(copy.read_text())
    result = _train(copy, tmp_path / "teammate")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, "one JSON line"
    metrics = json.loads(lines[0])
    assert config["provenance"]["confirmed"] and config["provenance"]["test_metrics"]
    for key, value in config["provenance"]["test_metrics"].items():
        assert metrics[key] == pytest.approx(value, abs=1e-6), key  # the same training as the first seed's


def test_other_data_than_the_exported_is_refused(smoke_sweep: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copy(smoke_sweep / "configs" / f"{DATASET}.yaml", tmp_path / "chosen.yaml"))
    expected = yaml.safe_load(copy.read_text())["data"]["fingerprint"]
    result = _train(copy, tmp_path, "data.params.n_train=4")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"data.fingerprint: dataset '{DATASET}' with params" in result.stderr
    assert f"expected {expected}" in result.stderr and "data.fingerprint=null" in result.stderr
    assert result.stdout == "", "nothing trained"

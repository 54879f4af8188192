"""optuna-dashboard opens a sweep's Optuna storage: every dataset's study, its trials, and each
trial's per-class validation Dice as user attributes, read through the dashboard's HTTP API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
CLASSES = {"synth_lesions": ("lesion",), "synth_organs": ("organ", "organ_lesion", "duct")}
TRIALS, EPOCHS = 3, 2  # the smoke experiment's


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dashboard(smoke_sweep: Path) -> Iterator[str]:
    """``optuna-dashboard <the smoke sweep's storage>`` on a free loopback port; yields its URL."""
    storage = json.loads((smoke_sweep / "sweep.json").read_text())["optuna_storage"]
    port = _free_port()
    command = str(Path(sys.executable).with_name("optuna-dashboard"))
    process = subprocess.Popen(
        [command, storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"optuna-dashboard exited {process.returncode}:\n{output[-3000:]}")
            try:
                _get(f"{url}/api/meta")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("optuna-dashboard did not answer within 60 s") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_dashboard_lists_every_dataset_study(smoke_sweep: Path, dashboard: str) -> None:
    manifest = json.loads((smoke_sweep / "sweep.json").read_text())
    studies = {s["study_name"]: s for s in _get(f"{dashboard}/api/studies")["study_summaries"]}
    expected = {entry["study_name"] for entry in manifest["datasets"].values()}
    assert set(studies) == expected
    assert all(s["directions"] == ["maximize"] for s in studies.values())


def test_each_trial_shows_its_per_class_validation_dice(smoke_sweep: Path, dashboard: str) -> None:
    manifest = json.loads((smoke_sweep / "sweep.json").read_text())
    ids = {s["study_name"]: s["study_id"] for s in _get(f"{dashboard}/api/studies")["study_summaries"]}
    for dataset, classes in CLASSES.items():
        detail = _get(f"{dashboard}/api/studies/{ids[manifest['datasets'][dataset]['study_name']]}")
        trials = detail["trials"]
        assert len(trials) == TRIALS and all(t["state"] == "Complete" for t in trials)
        keys = {a["key"] for a in detail["union_user_attrs"]}
        assert {f"val/dice/{c}" for c in classes} | {"epochs"} <= keys, keys
        for trial in trials:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            dice = [float(attrs[f"val/dice/{c}"]) for c in classes]
            assert all(0.0 <= d <= 1.0 for d in dice), attrs
            assert 1 <= int(attrs["epochs"]) <= EPOCHS
            # the objective is the mean foreground Dice of the same (last) result
            assert float(trial["values"][0]) == pytest.approx(sum(dice) / len(dice), abs=1e-9)
        params = {p["name"]: p["param_external_value"] for p in trials[0]["params"]}
        assert (float(params["margin"]), float(params["gamma"])) == (0.0, 0.0), "the baseline anchor first"

"""An interrupted sweep (driver killed with SIGKILL) resumes with the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
TRIALS, EPOCHS = 4, 3
ARGS = [
    "tune", "experiment=smoke", "data=synth_lesions", f"search.num_samples={TRIALS}",
    f"train.epochs={EPOCHS}", "train.iterations_per_epoch=6", "search.max_concurrent_trials=1",
    "search.scheduler.grace_period=3",
]


def _finished_trials(experiment: Path) -> dict[str, int]:
    """Trial folder -> number of reported epochs, for trials that reported their last epoch."""
    finished = {}
    for result_file in experiment.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("training_iteration") == EPOCHS:
            finished[result_file.parent.name] = len(lines)
    return finished


def test_sigkill_then_same_command_resumes_without_rerunning_finished_trials(tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    command = [sys.executable, "-m", "asymtune.cli", *ARGS, f"output_dir={output_dir}"]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    experiment = output_dir / "ray_results" / "synth_lesions"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and len(_finished_trials(experiment)) < 2:
            assert process.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = _finished_trials(experiment)
    assert 2 <= len(before) < TRIALS, f"expected an interrupted sweep, found finished trials {before}"
    assert not (output_dir / "report.md").exists()
    cli("report", str(output_dir), "--no-mlflow")  # the report of the interrupted sweep says what is missing
    for name in ("report.md", "report.html"):
        partial = (output_dir / name).read_text()
        assert "partial sweep: " in partial and f" of {TRIALS} trials have results" in partial
        assert "not confirmed: the confirmation has not run" in partial
    assert not json.loads((output_dir / "report.json").read_text())["datasets"]["synth_lesions"]["confirmed"]

    cli(*ARGS, f"output_dir={output_dir}")

    after = _finished_trials(experiment)
    assert len(after) == TRIALS
    for trial, epochs in before.items():
        assert after[trial] == epochs, f"{trial} was rerun after the resume"
    manifest = json.loads((output_dir / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    parent = manifest["datasets"]["synth_lesions"]["parent_run_id"]
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'trial'"
    children = client.search_runs([experiment_id], filter_string=query)
    assert len(children) == TRIALS, "one MLflow run per trial, no duplicates after the resume"
    parents = client.search_runs([experiment_id], filter_string="tags.`asymtune.role` = 'sweep'")
    assert len(parents) == 1
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val/mean_fg_dice")]
        assert sorted(steps) == list(range(1, EPOCHS + 1)), "each epoch logged exactly once"
    study = optuna.load_study(
        study_name=manifest["datasets"]["synth_lesions"]["study_name"], storage=manifest["optuna_storage"]
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert (output_dir / "report.md").exists() and (output_dir / "configs" / "synth_lesions.yaml").exists()

"""Faults inside trials: an error is retried then marked failed; a NaN loss stops the trial.

The faults are injected by the test-only mechanism of :mod:`asymtune.search.faults` (an environment
variable the trial processes inherit), not through the user's config."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from asymtune.search.faults import FAULTS_ENV

pytestmark = pytest.mark.e2e
BASE = ["tune", "experiment=smoke", "data=synth_lesions", "train.epochs=3", "search.scheduler.grace_period=3"]


def _runs(output_dir: Path) -> tuple[dict, list]:
    manifest = json.loads((output_dir / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    parent = manifest["datasets"]["synth_lesions"]["parent_run_id"]
    experiment_id = client.get_run(parent).info.experiment_id
    return manifest, client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")


def _baseline_trial_dir(output_dir: Path) -> Path:
    for params in (output_dir / "ray_results" / "synth_lesions").glob("trial_*/params.json"):
        config = json.loads(params.read_text())
        if config["margin"] == 0.0 and config["gamma"] == 0.0 and config["mixup_alpha"] == 0.0:
            return params.parent
    raise AssertionError("no baseline trial folder")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # an exception is retried and failed the same way as a NaN loss: about 30 s here, so it is slow
        pytest.param({"raise_at_epoch": 2}, "fault injected at epoch 2", marks=pytest.mark.slow),
        ({"nan_at_epoch": 2}, "loss is nan at epoch 2"),
    ],
)
def test_failing_trial_is_retried_then_failed_while_the_sweep_goes_on(
    tmp_path: Path, cli, fault: dict[str, int], message: str
) -> None:
    output_dir = tmp_path / "out"
    faults = json.dumps({**fault, "only_baseline": True})
    cli(*BASE, "search.max_failures=1", f"output_dir={output_dir}", env={FAULTS_ENV: faults})
    attempts = (_baseline_trial_dir(output_dir) / "attempts.log").read_text().splitlines()
    assert len(attempts) == 2, "one start and one retry (search.max_failures=1)"
    manifest, runs = _runs(output_dir)
    assert len(runs) == 3
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(failed) == 1 and failed[0].data.params["is_baseline"] == "True"
    assert message in failed[0].data.tags["asymtune.error"]
    assert all(r.info.status == "FINISHED" for r in runs if r is not failed[0])
    study = optuna.load_study(study_name=manifest["datasets"]["synth_lesions"]["study_name"],
                              storage=manifest["optuna_storage"])
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"], "a failed trial never counts as an objective"
    report = (output_dir / "report.md").read_text()
    assert "failed trials:" in report and "no baseline trial" in report

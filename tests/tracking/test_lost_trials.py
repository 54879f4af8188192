"""After a resume, the MLflow runs of trials the interrupted driver started but never saved are dropped."""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from asymtune.tracking.mlflow_tracker import MLflowSweepTracker


def test_runs_of_trials_the_sweep_no_longer_has_are_deleted(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MLflowSweepTracker(
        tracking_uri=uri, experiment_name="asymtune", artifact_location=(tmp_path / "artifacts").as_uri(),
        sweep_id="s1", dataset_name="synth_lesions", parent_params={}, parent_tags={},
        trial_params=lambda config: {"margin": config["margin"]},
    )
    parent = tracker.ensure_parent_run()
    for trial_id in ("kept_a", "kept_b", "lost_c"):
        tracker._child_run(trial_id, {"margin": 1.0})

    assert tracker.drop_lost_trials({"kept_a", "kept_b"}) == ["lost_c"]

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}'"
    active = client.search_runs([experiment_id], filter_string=query)
    assert sorted(run.data.tags["asymtune.trial_id"] for run in active) == ["kept_a", "kept_b"]
    deleted = client.search_runs([experiment_id], filter_string=query, run_view_type=ViewType.DELETED_ONLY)
    assert [(run.data.tags["asymtune.trial_id"], run.info.status) for run in deleted] == [("lost_c", "KILLED")]
    assert deleted[0].data.tags["asymtune.trial_status"] == "lost"
    assert tracker.drop_lost_trials({"kept_a", "kept_b"}) == [], "a second resume finds nothing more to drop"

"""What a reviewer finds in MLflow: the experiment's kind, every run's dataset input and source
tags, the trials' system metrics and the parent run's description.

The first tests drive the tracker and the confirmation logging on a real SQLite store with stand-in
trials (no Ray runtime); the last ones read the store of the session's smoke sweep.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from asymtune.tracking.confirmation import list_confirmation_runs, log_trained
from asymtune.tracking.datasets import DatasetRecord, digest_of
from asymtune.tracking.mlflow_tracker import (
    EXPERIMENT_KIND,
    TAG_EXPERIMENT_KIND,
    MLflowSweepTracker,
    describe_run,
    get_or_create_experiment,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")
FINGERPRINT = "spec-sha256:" + "0123456789abcdef" * 4
DATASET = DatasetRecord.of(
    "synth_lesions", FINGERPRINT, {"source": "synth_lesions", "params": {"seed": 0}}, ["background", "lesion"],
    {"train": 8, "val": 8, "test": 8},
)


def _head() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store for the module (creating one costs seconds); tests use their own sweep ids."""
    return tmp_path_factory.mktemp("mlflow")


def _tracker(store: Path, sweep_id: str) -> MLflowSweepTracker:
    return MLflowSweepTracker(
        tracking_uri=f"sqlite:///{store / 'mlflow.db'}", experiment_name="asymtune",
        artifact_location=(store / "artifacts").as_uri(), sweep_id=sweep_id, dataset_name="synth_lesions",
        parent_params={}, parent_tags={}, trial_params=lambda config: {"margin": config["margin"]},
        dataset=DATASET,
    )


def _trial(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"margin": 1.0}, checkpoint=None)


def test_a_new_experiment_is_of_the_training_kind_and_a_chosen_kind_is_kept(store: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    created = get_or_create_experiment(client, "new", None)
    assert client.get_experiment(created).tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND == "custom_model_development"
    bare = client.create_experiment("bare")  # made by an older asymtune: no kind yet
    assert get_or_create_experiment(client, "bare", None) == bare
    assert client.get_experiment(bare).tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND
    chosen = client.create_experiment("chosen", tags={TAG_EXPERIMENT_KIND: "genai_development"})
    get_or_create_experiment(client, "chosen", None)
    assert client.get_experiment(chosen).tags[TAG_EXPERIMENT_KIND] == "genai_development", "a user's choice stays"


def test_trial_runs_carry_the_dataset_source_tags_and_system_metrics(store: Path) -> None:
    tracker = _tracker(store, "trials")
    parent = tracker.ensure_parent_run()
    trial = _trial("t1")
    tracker.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        result = {"training_iteration": epoch, "val/mean_fg_dice": 0.5,
                  "system/cpu_utilization_percentage": 40.0 + epoch, "node_id": "n"}
        tracker.on_trial_result(0, [], trial, result)
    tracker.on_trial_complete(0, [], trial)
    tracker.on_experiment_end([])  # as Ray Tune ends a sweep: the sender's outbox is sent

    client = tracker.client
    run = client.get_run(tracker._child_runs["t1"])
    assert run.data.tags["mlflow.parentRunId"] == parent
    (used,) = run.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest, used.dataset.source_type) == (
        "synth_lesions", "0123456789abcdef0123456789abcdef0123", "code")
    assert json.loads(used.dataset.source) == {
        "tags": {"asymtune.data.source": "synth_lesions", "asymtune.data.params": '{"seed": 0}'}}
    assert json.loads(used.dataset.profile)["fingerprint"] == FINGERPRINT
    assert [(tag.key, tag.value) for tag in used.tags] == [("mlflow.data.context", "train")]
    assert run.data.tags["mlflow.source.git.commit"] == _head()
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.name"].split()[0] in ("pytest", "python", "__main__.py", "py.test")
    history = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
    assert sorted((m.step, m.value) for m in history) == [(1, 41.0), (2, 42.0)]
    assert "node_id" not in run.data.metrics

    parent_run = client.get_run(parent)
    assert [item.dataset.digest for item in parent_run.inputs.dataset_inputs] == [DATASET.digest]
    note = parent_run.data.tags["mlflow.note.content"]
    assert "Sweep of dataset `synth_lesions`" in note and run.data.tags["mlflow.source.name"] in note


def test_a_trial_run_found_again_without_its_dataset_gets_it(store: Path) -> None:
    """An outage between creating a trial's run and logging its dataset: the retried event finds
    the run by its tags and logs the dataset then."""
    tracker = _tracker(store, "outage")
    parent = tracker.ensure_parent_run()
    experiment_id = tracker.client.get_run(parent).info.experiment_id
    bare = tracker.client.create_run(experiment_id, tags={"mlflow.parentRunId": parent, "asymtune.trial_id": "t9"})
    assert tracker._child_run("t9", {"margin": 1.0}) == bare.info.run_id
    digests = [item.dataset.digest for item in tracker.client.get_run(bare.info.run_id).inputs.dataset_inputs]
    assert digests == [DATASET.digest]


def test_confirmation_runs_take_the_parent_runs_dataset_and_source_tags(store: Path) -> None:
    tracker = _tracker(store, "confirmation")
    parent = tracker.ensure_parent_run()
    logged = log_trained(
        tracker.client, parent, {"sweep_id": "confirmation", "dataset": "synth_lesions"}, "t1", 0, "candidate",
        {"margin": 1.0}, {"val/mean_fg_dice": 0.5}, 2, b"weights", reused_trial=False,
    )
    (stored,) = list_confirmation_runs(tracker.client, parent)
    assert stored.run_id == logged.run_id
    run = tracker.client.get_run(logged.run_id)
    used = [(item.dataset.name, item.dataset.digest) for item in run.inputs.dataset_inputs]
    assert used == [("synth_lesions", DATASET.digest)]
    assert all(tag in run.data.tags for tag in SOURCE_TAGS)


def test_a_description_says_what_made_the_run(store: Path) -> None:
    tracker = _tracker(store, "description")
    parent = tracker.ensure_parent_run()
    describe_run(tracker.tracking_uri, parent, "**Chosen setting**: trial t1.")
    note = tracker.client.get_run(parent).data.tags["mlflow.note.content"]
    assert note.startswith("**Chosen setting**: trial t1.\n\nMade by `")
    assert note.endswith(f" at commit {_head()[:12]}.")


def test_an_empty_fingerprint_is_refused() -> None:
    with pytest.raises(ValueError, match="dataset 'd': empty fingerprint"):
        DatasetRecord.of("d", "", {"source": "synth_lesions"}, ["background"], {})


def test_data_on_disk_is_a_local_source(tmp_path: Path) -> None:
    spec = {"source": "nnunet", "params": {"root": str(tmp_path)}}
    record = DatasetRecord.of("hippo", "files-sha256:" + "f" * 64, spec, ["background", "hippocampus"],
                              {"train": 3, "val": 1, "test": 1})
    assert record.source_type == "local" and json.loads(record.source) == {"uri": tmp_path.resolve().as_uri()}
    assert record.digest == "f" * 36


# ----------------------------------------------------------------------------- the smoke sweep
@pytest.mark.e2e
def test_every_run_of_the_smoke_sweep_has_its_dataset_and_source_tags(smoke_sweep: Path) -> None:
    manifest = json.loads((smoke_sweep / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name(manifest["mlflow"]["experiment_name"])
    assert experiment is not None and experiment.tags[TAG_EXPERIMENT_KIND] == "custom_model_development"
    report = json.loads((smoke_sweep / "report.json").read_text())
    for name, entry in manifest["datasets"].items():
        provenance = json.loads((smoke_sweep / "configs" / f"{name}.provenance.json").read_text())
        digest = digest_of(provenance["dataset_fingerprint"])
        runs = client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{entry['parent_run_id']}'",
            max_results=1000,
        )
        roles = [run.data.tags["asymtune.role"] for run in runs]
        assert roles.count("trial") == 3 and roles.count("confirmation") >= 6, roles
        for run in runs:
            what = f"{name}: run {run.info.run_name}"
            assert [(i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs] == [(name, digest)], what
            assert run.data.tags["mlflow.source.git.commit"] == _head(), what
            assert run.data.tags["mlflow.source.type"] == "LOCAL", what
            command = run.data.tags["mlflow.source.name"]
            assert command.startswith("python -m asymtune.cli tune ") and "experiment=smoke" in command, what
            if run.data.tags["asymtune.role"] == "trial":  # the smoke experiment turns mlflow.system_metrics on
                epochs = [m.step for m in client.get_metric_history(run.info.run_id, "val/mean_fg_dice")]
                for key in ("system/cpu_utilization_percentage", "system/process_memory_rss_megabytes"):
                    history = client.get_metric_history(run.info.run_id, key)
                    assert sorted(m.step for m in history) == sorted(epochs), (what, key)
                    assert all(m.value >= 0 for m in history), (what, key)
        parent = client.get_run(entry["parent_run_id"])
        assert [i.dataset.digest for i in parent.inputs.dataset_inputs] == [digest]
        note = parent.data.tags["mlflow.note.content"]
        assert f"**Chosen setting** for `{name}`: trial {report['datasets'][name]['selected']}, " in note
        assert f"**Verdict:** {provenance['verdict']}" in note
        assert "Made by `python -m asymtune.cli tune " in note

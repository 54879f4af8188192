"""Trial results on an object store: ``storage_path=s3://...`` against a real S3 server on loopback.

The server is moto's (``ThreadedMotoServer``, an S3-compatible HTTP server in this process); the
sweep finds it as any S3-compatible store, through ``AWS_ENDPOINT_URL`` and credentials in the
environment. Ray Tune writes its experiment state, results and checkpoints there; the report is
built from what it reads back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow.fs
import pytest
import yaml
from mlflow.tracking import MlflowClient
from moto.server import ThreadedMotoServer

pytestmark = pytest.mark.e2e
BUCKET, PREFIX = "sweeps", "team/run-1"
ARGS = [
    "tune", "experiment=smoke", "data=synth_lesions", "train.epochs=3", "search.scheduler.grace_period=2",
    "search.checkpoint_every=2", f"storage_path=s3://{BUCKET}/{PREFIX}",
]
DECISION_EPOCHS = {2, 3}  # ASHA's rung (grace period 2) and the last epoch


@pytest.fixture()
def s3_env() -> Iterator[dict[str, str]]:
    """An S3 server on 127.0.0.1 with an empty bucket; the environment that points a client at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    }
    boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)
    yield env
    server.stop()


def _filesystem(env: dict[str, str]) -> pyarrow.fs.S3FileSystem:
    return pyarrow.fs.S3FileSystem(
        endpoint_override=env["AWS_ENDPOINT_URL"], access_key="testing", secret_key="testing", region="us-east-1"
    )


def _read_text(filesystem: pyarrow.fs.FileSystem, path: str) -> str:
    with filesystem.open_input_stream(path) as stream:
        return stream.readall().decode()


def _trial_dirs(filesystem: pyarrow.fs.FileSystem, experiment: str) -> list[str]:
    entries = filesystem.get_file_info(pyarrow.fs.FileSelector(experiment))
    folders = [e for e in entries if e.type == pyarrow.fs.FileType.Directory]
    return sorted(e.path for e in folders if e.base_name.startswith("trial_"))


@pytest.mark.slow  # about 85 s here (a local S3 server and a whole sweep)
def test_sweep_stores_its_trials_on_an_object_store_and_reports_from_it(
    s3_env: dict[str, str], tmp_path: Path, cli
) -> None:
    output_dir = tmp_path / "out"
    cli(*ARGS, f"output_dir={output_dir}", env=s3_env)

    assert not (output_dir / "ray_results").exists(), "no trial result is kept on the driver's disk"
    manifest = json.loads((output_dir / "sweep.json").read_text())
    assert manifest["datasets"]["synth_lesions"]["experiment_dir"] == f"s3://{BUCKET}/{PREFIX}/synth_lesions"
    filesystem = _filesystem(s3_env)
    experiment = f"{BUCKET}/{PREFIX}/synth_lesions"
    trials = _trial_dirs(filesystem, experiment)
    assert len(trials) == 3
    for trial in trials:
        assert _read_text(filesystem, f"{trial}/attempts.log").count("start node=") == 1
        lines = _read_text(filesystem, f"{trial}/result.json").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        assert [row["training_iteration"] for row in rows] == list(range(1, len(rows) + 1))
        for row in rows:
            decision = row["training_iteration"] in DECISION_EPOCHS
            assert any(key.startswith("diag/") for key in row) == decision, row["training_iteration"]
            assert (row["checkpoint_dir_name"] is not None) == decision, "epoch 1: no checkpoint (checkpoint_every=2)"
        checkpoint = f"{trial}/{rows[-1]['checkpoint_dir_name']}"
        stored = {e.base_name for e in filesystem.get_file_info(pyarrow.fs.FileSelector(checkpoint))}
        assert {"state.pt", "diagnostics.npz"} <= stored, "the last checkpoint holds the model and the diagnostics"

    assert "## synth_lesions" in (output_dir / "report.md").read_text()
    config = yaml.safe_load((output_dir / "configs" / "synth_lesions.yaml").read_text())
    assert config["provenance"]["test_metrics"], "the selected trial was evaluated from its checkpoint on S3"

    (output_dir / "report.md").unlink()
    cli("report", str(output_dir), "--no-mlflow", env=s3_env)
    assert "## synth_lesions" in (output_dir / "report.md").read_text()

    cli(*ARGS, f"output_dir={output_dir}", env=s3_env)
    assert _trial_dirs(filesystem, experiment) == trials, "a finished sweep on S3 is restored, not run again"
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    parent = manifest["datasets"]["synth_lesions"]["parent_run_id"]
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'trial'"
    children = client.search_runs([experiment_id], filter_string=query)
    assert len(children) == 3
    for child in children:
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "diagnostics")}
        expected = {"diagnostics/logit_shift.png", "diagnostics/diagnostics.npz"}
        assert artifacts == expected, "the tracker read them from the checkpoint on S3"


def test_unwritable_storage_path_fails_before_any_trial(s3_env: dict[str, str], tmp_path: Path, cli) -> None:
    result = cli(
        "tune", "experiment=smoke", "data=synth_lesions", "storage_path=s3://no-such-bucket/sweeps",
        f"output_dir={tmp_path / 'out'}", env=s3_env, check=False,
    )
    assert result.returncode != 0
    assert "storage_path='s3://no-such-bucket/sweeps' cannot be written" in result.stderr + result.stdout
    assert not (tmp_path / "out" / "sweep.json").exists()

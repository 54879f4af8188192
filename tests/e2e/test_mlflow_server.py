"""A sweep against a real ``mlflow server`` on loopback: nesting, metrics, artifacts, an outage."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from ray.tune.callback import CallbackList

from asymtune.tracking.mlflow_tracker import MLflowSweepTracker

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a SQLite backend and served artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        self.process = subprocess.Popen(
            [mlflow, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("mlflow server did not start within 90 s")

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One server for the module (it takes about 20 s to start here); each test reads only its own
    sweep's runs, and a test that stops it starts it again."""
    instance = MlflowServer(tmp_path_factory.mktemp("server"))
    instance.start()
    yield instance
    instance.stop()


def _children(uri: str, output_dir: Path) -> tuple[MlflowClient, list]:
    manifest = json.loads((output_dir / "sweep.json").read_text())
    assert manifest["mlflow"]["tracking_uri"] == uri
    client = MlflowClient(tracking_uri=uri)
    parent = manifest["datasets"]["synth_lesions"]["parent_run_id"]
    experiment_id = client.get_run(parent).info.experiment_id
    query = f"tags.`mlflow.parentRunId` = '{parent}' and tags.`asymtune.role` = 'trial'"
    children = client.search_runs([experiment_id], filter_string=query)
    return client, children


def test_sweep_logs_to_a_tracking_server(server: MlflowServer, tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    cli("tune", "experiment=smoke", "data=synth_lesions", f"mlflow.tracking_uri={server.uri}",
        f"output_dir={output_dir}")
    client, children = _children(server.uri, output_dir)
    assert len(children) == 3
    for child in children:
        history = client.get_metric_history(child.info.run_id, "val/dice/lesion")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, len(history) + 1))
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "diagnostics")}
        assert "diagnostics/logit_shift.png" in artifacts
    parent = json.loads((output_dir / "sweep.json").read_text())["datasets"]["synth_lesions"]["parent_run_id"]
    report = {a.path for a in client.list_artifacts(parent, "report")}
    assert {"report/report.html", "report/report.md", "report/synth_lesions.yaml"} <= report
    assert not (output_dir / "mlflow.db").exists(), "nothing goes to the local store when a server is given"


def test_unreachable_server_fails_before_any_trial(tmp_path: Path, cli) -> None:
    uri = f"http://127.0.0.1:{_free_port()}"
    result = cli("tune", "experiment=smoke", f"mlflow.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}",
                 check=False)
    assert result.returncode == 2
    assert f"mlflow.tracking_uri='{uri}' cannot be used" in result.stderr
    assert not (tmp_path / "out" / "ray_results").exists()


def test_short_outage_mid_sweep_loses_no_metric(server: MlflowServer, tmp_path: Path) -> None:
    output_dir = tmp_path / "out"
    epochs, trials = 4, 3
    command = [
        sys.executable, "-m", "asymtune.cli", "tune", "experiment=smoke", "data=synth_lesions",
        f"train.epochs={epochs}", "train.iterations_per_epoch=6", f"search.scheduler.grace_period={epochs}",
        "search.max_concurrent_trials=1", f"mlflow.tracking_uri={server.uri}", "mlflow.request_retries=0",
        # a loaded machine answers slowly; the outage is a refused connection
        "mlflow.request_timeout_s=15", f"output_dir={output_dir}",
    ]
    log_path = tmp_path / "sweep.log"  # a file, not a pipe: a full pipe would block the sweep
    sweep = subprocess.Popen(command, cwd=REPO, stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True)
    experiment = output_dir / "ray_results" / "synth_lesions"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(
        p.stat().st_size > 0 for p in experiment.glob("trial_*/result.json")
    ):
        assert sweep.poll() is None, log_path.read_text()[-3000:]
        time.sleep(0.2)
    server.stop()  # the outage: several epochs are reported while the server is down
    time.sleep(8)
    server.start()
    sweep.wait(timeout=600)
    output = log_path.read_text()
    assert sweep.returncode == 0, output[-3000:]
    assert "did not accept an event" in output, "the outage must have been noticed"
    client, children = _children(server.uri, output_dir)
    assert len(children) == trials
    for child in children:
        steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "val/mean_fg_dice"))
        assert steps == list(range(1, epochs + 1)), f"{child.info.run_name}: logged steps {steps}"
        assert child.info.status == "FINISHED"


def test_events_waiting_in_an_outage_survive_a_driver_restart(
    server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox goes through Ray Tune's own callback snapshot (``CallbackList.save_to_dir`` at
    every experiment snapshot, ``restore_from_dir`` on resume) into the tracker that a restored
    driver unpickles from ``tuner.pkl``, which was pickled before the events."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracker = MLflowSweepTracker(server.uri, "restart", None, "sweep-restart", "synth_lesions", {}, {},
                                 trial_params=dict, flush_timeout_s=0.0)
    parent = tracker.ensure_parent_run()
    as_in_tuner_pkl = pickle.dumps(tracker)
    server.stop()  # the outage: a trial starts and reports two epochs, none of it reaches MLflow
    trial = SimpleNamespace(trial_id="t1", config={"margin": 1.0})
    tracker.on_trial_start(1, [trial], trial)
    for epoch in (1, 2):
        result = {"training_iteration": epoch, "val/mean_fg_dice": 0.1 * epoch}
        tracker.on_trial_result(epoch, [trial], trial, result)
    assert tracker.pending == 3
    snapshot = tmp_path / "experiment"
    snapshot.mkdir()
    CallbackList([tracker]).save_to_dir(str(snapshot), session_str="killed")  # then the driver dies
    tracker._stop_sender()  # and its sender thread with it

    server.start()
    restored: MLflowSweepTracker = pickle.loads(as_in_tuner_pkl)
    assert restored.pending == 0
    callbacks = CallbackList([restored])
    assert callbacks.can_restore(str(snapshot))
    callbacks.restore_from_dir(str(snapshot))
    callbacks.setup()
    assert restored.pending == 0
    client = MlflowClient(tracking_uri=server.uri)
    experiment_id = client.get_run(parent).info.experiment_id
    (run,) = client.search_runs([experiment_id], filter_string="tags.`asymtune.trial_id` = 't1'")
    history = client.get_metric_history(run.info.run_id, "val/mean_fg_dice")
    assert sorted((m.step, round(m.value, 6)) for m in history) == [(1, 0.1), (2, 0.2)]

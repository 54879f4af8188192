"""Optuna studies in one journal file (``optuna.storage=journal:///PATH``) on a real two-node Ray
cluster on this machine (head + one worker started with ``ray start``): processes on both nodes
write to the file at the same time and no trial is lost; two sweeps share the file, one of them
interrupted with SIGKILL and resumed, and each study ends with every trial."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY
from asymtune.results.trials import load_trials
from asymtune.search.storage import open_optuna_storage

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
TRIALS, EPOCHS = 3, 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """A head and a worker node of one CPU each; Ray 2.60's token authentication as in
    ``tests/e2e/test_two_node_cluster.py`` (docs/cluster.md). Each node is a ``ray start --block``
    in its own process group, which the teardown kills (``ray stop`` would stop every Ray on the machine),
    with its own temp dir: ``ray start`` writes the cluster's address into ``<temp dir>/ray_current_cluster``,
    and ``ray.init()`` of any local runtime on the machine would try to join it, dead or alive."""
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's Unix sockets live under it
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    address = f"127.0.0.1:{port}"
    node = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--block"]
    nodes = []
    try:
        for role in ([f"--port={port}", "--head", "--include-dashboard=false", f"--temp-dir={temp_dir}"],
                     [f"--address={address}"]):
            nodes.append(subprocess.Popen([RAY, "start", *role, *node], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, env=env, start_new_session=True))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert all(started.poll() is None for started in nodes), "a node stopped while starting"
                status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True,
                                        env=env)
                if status.stdout.count("node_") >= len(nodes):
                    break
                time.sleep(1)
            else:
                raise AssertionError(f"node {len(nodes)} did not join: {status.stdout}{status.stderr}")
        yield {"address": address, "env": env}
    finally:
        for started in reversed(nodes):
            if started.poll() is None:
                os.killpg(started.pid, signal.SIGKILL)
            started.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


_WRITERS = """
import json, sys
import optuna, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from asymtune.search.storage import open_optuna_storage

address, url, per_node = sys.argv[1], sys.argv[2], int(sys.argv[3])

@ray.remote(num_cpus=1)
def write_trials(node_id):
    study = optuna.load_study(study_name="shared", storage=open_optuna_storage(url))
    for _ in range(per_node):
        trial = study.ask()
        trial.set_user_attr("node", node_id)
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0) ** 2)

ray.init(address=address, logging_level="WARNING")
nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
ray.get([write_trials.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(node)
         for node in nodes], timeout=240)
print(json.dumps(nodes))
"""


def test_writers_on_both_nodes_lose_no_trial(cluster: dict, tmp_path: Path) -> None:
    """A Ray task pinned to each node runs trials of one study in the same journal, both at once (the
    driver is a script in its own process, so that the tasks, defined in it, travel by value)."""
    url, per_node = f"journal://{tmp_path / 'optuna.log'}", 25
    optuna.create_study(study_name="shared", storage=open_optuna_storage(url))
    driver = subprocess.run(
        [sys.executable, "-c", _WRITERS, cluster["address"], url, str(per_node)],
        cwd=REPO, capture_output=True, text=True, env=cluster["env"], timeout=300,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    nodes = json.loads(driver.stdout.strip().splitlines()[-1])
    assert len(nodes) == 2
    trials = optuna.load_study(study_name="shared", storage=open_optuna_storage(url)).trials
    assert sorted(trial.number for trial in trials) == list(range(2 * per_node)), "one number per trial, none lost"
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    assert {trial.user_attrs["node"] for trial in trials} == set(nodes)


def _started(output_dir: Path) -> int:
    """Trials that started: each writes ``attempts.log`` to the sweep's storage as it starts (Ray
    Tune's result files reach the storage only when the driver syncs them)."""
    return len(list((output_dir / "ray_results" / "synth_lesions").glob("trial_*/attempts.log")))


def _sweep(cluster: dict, journal: str, output_dir: Path, dataset: str, trials: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "asymtune.cli", "tune", f"ray.address={cluster['address']}", "experiment=smoke",
        f"data={dataset}", f"search.num_samples={trials}", f"train.epochs={EPOCHS}",
        f"search.scheduler.grace_period={EPOCHS}", "search.max_concurrent_trials=1", "confirm.enabled=false",
        f"optuna.storage={journal}", f"output_dir={output_dir}",
    ]
    log = (output_dir.parent / f"{output_dir.name}.log").open("ab")  # a file: a full pipe would block the sweep
    return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=cluster["env"],
                            start_new_session=True)


def _log(output_dir: Path) -> str:
    return (output_dir.parent / f"{output_dir.name}.log").read_text(errors="replace")[-3000:]


def test_two_sweeps_share_one_journal_and_an_interrupted_one_resumes(cluster: dict, tmp_path: Path) -> None:
    """Two sweeps (two drivers, one trial slot each, so their trials run on both nodes) write their
    studies to one journal; the first is killed once its first trial has ended (the second has
    started: one trial at a time) and resumed while the other sweep runs.

    The sweeps tune different datasets: Ray Tune stages a driver's results in
    ``<session>/artifacts/<start second>/<experiment name>``, so two experiments of one name started
    in the same second on one cluster would mix their result files (Ray's, not the journal's)."""
    journal = f"journal://{tmp_path / 'optuna.log'}"
    first, second = tmp_path / "first", tmp_path / "second"
    sweeps = {first: ("synth_lesions", TRIALS), second: ("synth_organs", 2)}
    interrupted, other = (_sweep(cluster, journal, output_dir, *sweeps[output_dir]) for output_dir in sweeps)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and _started(first) < 2:
            assert interrupted.poll() is None, f"the first sweep ended before it could be interrupted:\n{_log(first)}"
            time.sleep(0.2)
    finally:
        os.killpg(interrupted.pid, signal.SIGKILL)
        interrupted.wait()
    assert _started(first) == 2, "killed during its second trial"
    resumed = _sweep(cluster, journal, first, *sweeps[first])  # the same command resumes it
    assert resumed.wait(timeout=300) == 0, _log(first)
    assert other.wait(timeout=300) == 0, _log(second)

    storage = open_optuna_storage(journal)
    studies, nodes = [], set()
    for output_dir, (dataset, trials) in sweeps.items():
        manifest = json.loads((output_dir / "sweep.json").read_text())
        assert manifest["optuna_storage"] == journal
        assert not (output_dir / "optuna.db").exists(), "nothing goes to the local SQLite store"
        studies.append(manifest["datasets"][dataset]["study_name"])
        records = load_trials(output_dir / "ray_results" / dataset)
        assert len(records) == trials and all(len(record.history) == EPOCHS for record in records)
        in_study = optuna.load_study(study_name=studies[-1], storage=storage).trials
        assert not [t for t in in_study if t.state == optuna.trial.TrialState.FAIL]
        # (a trial that started just before the kill, after Ray Tune's last snapshot of the experiment,
        # is not resumed: its Optuna trial stays RUNNING, with any storage)
        complete = [
            (json.dumps(t.params, sort_keys=True), t.value)
            for t in in_study if t.state == optuna.trial.TrialState.COMPLETE
        ]
        for record in records:
            optuna_values = {key: value for key, value in record.config.items() if key not in (FIXED_KEY, SETTINGS_KEY)}
            trained = (json.dumps(optuna_values, sort_keys=True), record.history[-1]["val/mean_fg_dice"])
            assert trained in complete, f"{output_dir.name}: {record.trial_id} is in the study with its value"
            nodes |= {report["node_id"] for report in record.history}
    assert sorted(optuna.get_all_study_names(storage)) == sorted(studies), "both sweeps' studies in the one file"
    assert len(nodes) == 2, "the sweeps' trials ran on both nodes"

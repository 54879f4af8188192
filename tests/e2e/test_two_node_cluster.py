"""A real two-node Ray cluster on this machine: trials run on both nodes, and losing the second
node mid-sweep still completes the sweep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[dict]:
    port = _free_port()
    # Ray 2.60 secures clusters with a token (~/.ray/auth_token); every process of the test uses it.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    subprocess.run(
        [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
         "--node-ip-address=127.0.0.1"],
        check=True, capture_output=True, env=env, timeout=120,
    )
    worker = subprocess.Popen(
        [RAY, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True, env=env)
        if status.stdout.count("node_") >= 2:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"the second node did not join: {status.stdout}")
    try:
        yield {"address": address, "worker": worker, "env": env}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


def _node_ids(experiment: Path) -> dict[str, set[str]]:
    """Nodes each trial started on, from the ``attempts.log`` every attempt appends to at its start.

    The log is written through the sweep's storage filesystem the moment a trial starts, so it
    sees a trial on the second node before that node can finish it, and keeps it after the node
    is lost (a trial's working folder stays on its node; result.json reaches the storage late).
    """
    nodes: dict[str, set[str]] = {}
    for log in experiment.glob("trial_*/attempts.log"):
        for line in log.read_text().splitlines():
            if line.startswith("start node="):
                nodes.setdefault(log.parent.name, set()).add(line.removeprefix("start node="))
    return nodes


@pytest.mark.slow  # failed once in 3 default-suite runs (3 of 4 trials had a last-epoch result.json)
def test_trials_use_both_nodes_and_survive_losing_one(cluster: dict, tmp_path: Path) -> None:
    output_dir = tmp_path / "out"
    command = [
        sys.executable, "-m", "asymtune.cli", "tune", f"ray.address={cluster['address']}", "experiment=smoke",
        "data=synth_lesions", "search.num_samples=4", "train.epochs=6", "train.iterations_per_epoch=80",
        "search.scheduler.grace_period=6", "search.max_failures=2", f"output_dir={output_dir}",
    ]
    log_path = tmp_path / "sweep.log"  # a file, not a pipe: a full pipe would block the sweep
    sweep = subprocess.Popen(
        command, cwd=REPO, stdout=log_path.open("w"), stderr=subprocess.STDOUT, text=True, env=cluster["env"]
    )
    experiment = output_dir / "ray_results" / "synth_lesions"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until the two concurrent trials sit on two nodes
        assert sweep.poll() is None, log_path.read_text()[-3000:]
        if len(set().union(*_node_ids(experiment).values()) if _node_ids(experiment) else set()) >= 2:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("trials never ran on two nodes")
    os.killpg(cluster["worker"].pid, signal.SIGKILL)  # the second node dies mid-sweep
    sweep.wait(timeout=600)
    assert sweep.returncode == 0, log_path.read_text()[-3000:]
    finished = 0
    for result in experiment.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        finished += bool(lines) and lines[-1]["training_iteration"] == 6
    assert finished == 4, "every trial completed, those of the lost node on the other node"
    # a trial that was running on the lost node started again on the head node
    moved = [trial for trial, nodes in _node_ids(experiment).items() if len(nodes) >= 2]
    assert moved, "a trial of the lost node restarted on the other node"
    assert (output_dir / "report.md").exists()

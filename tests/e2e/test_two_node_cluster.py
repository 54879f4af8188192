"""A real two-node Ray cluster on this machine: trials run on both nodes, and losing the second
node mid-sweep still completes the sweep, every trial with its whole history."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from ray import tune

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
EPOCHS, TRIALS = 6, 4
NODE_ID_CHARS = 56  # a Ray node id in hex


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_node(args: list[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen[str]:
    """``ray start ... --block`` in a process group of its own: stopping the group stops that node
    and nothing else (``ray stop`` would stop every Ray process of this user on the machine)."""
    return subprocess.Popen(
        [RAY, "start", *args, "--num-cpus=1", "--node-ip-address=127.0.0.1", "--block"],
        stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )


def _stop_node(node: subprocess.Popen[str]) -> None:
    """Kill the node's process group (its GCS, raylet and helpers); its workers, in sessions of
    their own, exit when their raylet is gone (as on the node the test loses)."""
    if node.poll() is None:
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=60)


def _wait_for_nodes(address: str, count: int, env: dict[str, str], nodes: list[subprocess.Popen[str]],
                    log: Path) -> None:
    """Poll ``ray status`` until ``count`` nodes are alive (at most 120 s)."""
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        assert all(node.poll() is None for node in nodes), f"a node exited:\n{log.read_text()[-3000:]}"
        status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True,
                                env=env, timeout=60).stdout
        if status.count("node_") >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} nodes never joined:\n{status}\n{log.read_text()[-3000:]}")


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray 2.60 secures clusters with a token (~/.ray/auth_token); every process of the test uses it.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    log_path = tmp_path / "nodes.log"
    with log_path.open("w") as log:
        head = _start_node(["--head", f"--port={port}", "--include-dashboard=false"], env, log)
        nodes = [head]
        try:
            _wait_for_nodes(address, 1, env, nodes, log_path)
            worker = _start_node([f"--address={address}"], env, log)
            nodes.append(worker)
            _wait_for_nodes(address, 2, env, nodes, log_path)
            yield {"address": address, "worker": worker, "env": env}
        finally:
            for node in reversed(nodes):
                _stop_node(node)


def _node_ids(experiment: Path) -> dict[str, list[str]]:
    """Nodes each trial started on, in order, from the ``attempts.log`` every attempt appends to at its start.

    The log is written through the sweep's storage filesystem the moment a trial starts, so it
    sees a trial on the second node before that node can finish it, and keeps it after the node
    is lost (a trial's working folder stays on its node; result.json reaches the storage late).
    """
    nodes: dict[str, list[str]] = {}
    for log in experiment.glob("trial_*/attempts.log"):
        for line in log.read_text().splitlines():
            node = line.removeprefix("start node=")
            if line.startswith("start node=") and len(node) == NODE_ID_CHARS:  # a whole line
                nodes.setdefault(log.parent.name, []).append(node[:8])
    return nodes


def _outcomes(experiment: Path) -> dict[str, dict[str, Any]]:
    """Each trial as Ray Tune's experiment state records it (status, last result, error) and as its
    stored history (``result.json``, what the report reads) has it: the epochs it holds, in order."""
    analysis = tune.ExperimentAnalysis(str(experiment))
    grid = tune.ResultGrid(analysis)
    outcomes = {}
    for trial, result in zip(analysis.trials, (grid[index] for index in range(len(grid))), strict=True):
        frame = result.metrics_dataframe
        outcomes[f"trial_{trial.trial_id}"] = {
            "status": str(trial.status),
            "last_epoch": (trial.last_result or {}).get("training_iteration"),
            "error": str(result.error).splitlines()[-1] if result.error else None,
            "history_epochs": [] if frame is None else [int(epoch) for epoch in frame["epoch"]],
        }
    return outcomes


@pytest.mark.slow  # failed in clean-clone CI on 690b2b2 on a replayed epoch (the criterion, now fixed); rerun
# it more often before it returns to the default suite
def test_trials_use_both_nodes_and_survive_losing_one(cluster: dict[str, Any], tmp_path: Path) -> None:
    output_dir = tmp_path / "out"
    command = [
        sys.executable, "-m", "asymtune.cli", "tune", f"ray.address={cluster['address']}", "experiment=smoke",
        "data=synth_lesions", f"search.num_samples={TRIALS}", f"train.epochs={EPOCHS}",
        "train.iterations_per_epoch=80", f"search.scheduler.grace_period={EPOCHS}", "search.max_failures=2",
        "confirm.enabled=false", f"output_dir={output_dir}",
    ]
    log_path = tmp_path / "sweep.log"  # a file, not a pipe: a full pipe would block the sweep
    experiment = output_dir / "ray_results" / "synth_lesions"

    def evidence() -> str:
        try:
            outcomes: object = _outcomes(experiment)
        except Exception as error:  # the evidence must not hide the failure it explains
            outcomes = f"unreadable ({error!r})"
        return (f"trials: {outcomes}\nnodes per trial: {_node_ids(experiment)}\n"
                f"--- sweep log ({log_path}), tail:\n{log_path.read_text()[-4000:]}")

    with log_path.open("w") as log:
        sweep = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
                                 env=cluster["env"])
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until the two concurrent trials sit on two nodes
            assert sweep.poll() is None, f"the sweep ended before trials ran on two nodes\n{evidence()}"
            if len({node for nodes in _node_ids(experiment).values() for node in nodes}) >= 2:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"trials never ran on two nodes\n{evidence()}")
        os.killpg(cluster["worker"].pid, signal.SIGKILL)  # the second node dies mid-sweep
        sweep.wait(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, evidence()

    outcomes = _outcomes(experiment)
    assert len(outcomes) == TRIALS, evidence()
    for trial, outcome in outcomes.items():
        # Ray Tune's own record: the trial ended at its last epoch, within max_failures.
        assert (outcome["status"], outcome["error"], outcome["last_epoch"]) == ("TERMINATED", None, EPOCHS), \
            f"{trial}\n{evidence()}"
        # its stored history: no epoch lost, the last epoch last (a restart from a checkpoint must not
        # lose the rows it had reported; it replays the epochs after that checkpoint, so a row may repeat)
        history = outcome["history_epochs"]
        assert sorted(set(history)) == list(range(1, EPOCHS + 1)) and history[-1] == EPOCHS, \
            f"{trial}: {history}\n{evidence()}"
    # a trial that was running on the lost node started again on the head node
    moved = [trial for trial, nodes in _node_ids(experiment).items() if len(set(nodes)) >= 2]
    assert moved, f"no trial of the lost node restarted on the other node\n{evidence()}"
    assert (output_dir / "report.md").exists(), evidence()

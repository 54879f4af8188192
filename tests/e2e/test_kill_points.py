"""A two-dataset sweep killed with SIGKILL at six distinct moments, each chosen from what the
program prints or writes (never a fixed sleep), then rerun with the same command, ends equal to an
uninterrupted sweep: the same MLflow sweep, trial and confirmation runs, the same Optuna trials (none
left RUNNING), the same exported configs.

The uninterrupted reference is the session's ``smoke_sweep`` (the same command). Each kill point
costs an interrupted run and a full rerun (about 1-2 minutes here), so the six points are ``slow``;
the point from issue 14 (the second dataset's sweep starting after the first is done) also runs in
the default suite.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from asymtune.config import compose

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
ARGS = ("tune", "experiment=smoke", "confirm.executor=ray")  # the session fixture smoke_sweep's command
DATASETS = ("synth_lesions", "synth_organs")
EVENT_DEADLINE_S = 600  # bounds a hang only; every wait ends on an event


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: after the first output line matching ``line`` (a regex), or once a trial has
    written its last epoch (``trial_done``); ``extra`` overrides join the command."""

    line: str | None = None
    trial_done: bool = False
    extra: tuple[str, ...] = ()


POINTS = {
    # the sweeps have just started (studies being created, no trial has a result)
    "sweep_start": KillPoint(line=r"sweep \w+: dataset synth_organs"),
    # a trial has reported its last epoch; others run or wait
    "trial_done": KillPoint(trial_done=True),
    # a dataset's confirmation is training its models (the other dataset may still sweep)
    "confirmation": KillPoint(line=r"the confirmation trains \d+ models"),
    # one dataset is confirmed and registered, the other is not yet
    "one_confirmed": KillPoint(line=r": confirmed trial \w+"),
    # the report and the exports are being written
    "report": KillPoint(line=r"writing the report of \d+ datasets"),
    # datasets one after another: the first is done, the second's sweep starts (issue 14's failure)
    "between_datasets": KillPoint(line=r"sweep \w+: dataset synth_organs", extra=("search.parallel_datasets=1",)),
}
DEFAULT_SUITE = {"between_datasets"}


def _lines(process: subprocess.Popen[str], out: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        out.put(line)
    out.put(None)


def _trial_finished(output_dir: Path, epochs: int) -> bool:
    for result_file in (output_dir / "ray_results").glob("*/trial_*/result.json"):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("training_iteration") == epochs:
            return True
    return False


def _run_and_kill(command: list[str], point: KillPoint, output_dir: Path, epochs: int) -> list[str]:
    """Start ``command``, SIGKILL its whole process group at ``point``; returns the lines it printed.

    Fails when the program ends before the point (the point would not have been tested)."""
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(process, lines), daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + EVENT_DEADLINE_S
    reached = False
    try:
        while not reached and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line is None:
                break
            printed.append(line)
            if point.line is not None:
                reached = re.search(point.line, line) is not None
            else:
                reached = _trial_finished(output_dir, epochs)
    finally:
        alive = process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    tail = "".join(printed[-30:])
    assert reached, f"the kill point was never reached; the output ended with:\n{tail}"
    assert alive, f"the program had ended before the kill point; it printed:\n{tail}"
    return printed


def outcome(output_dir: Path) -> dict[str, Any]:
    """What must be equal after a resume: per dataset, the MLflow runs by role, the confirmation
    runs by role, the Optuna trials by state, and the exported settings; and the exported files."""
    manifest = json.loads((output_dir / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    found: dict[str, Any] = {"configs": sorted(p.name for p in (output_dir / "configs").rglob("*") if p.is_file())}
    for name in DATASETS:
        entry = manifest["datasets"][name]
        experiment_id = client.get_run(entry["parent_run_id"]).info.experiment_id
        runs = client.search_runs(
            [experiment_id], filter_string=f"tags.`asymtune.dataset` = '{name}'", max_results=5000
        )
        study = optuna.load_study(study_name=entry["study_name"], storage=manifest["optuna_storage"])
        exported = json.loads((output_dir / "configs" / f"{name}.provenance.json").read_text())
        found[name] = {
            "mlflow_roles": Counter(run.data.tags.get("asymtune.role", "") for run in runs),
            "mlflow_unfinished": sorted(run.info.run_name for run in runs if run.info.status != "FINISHED"),
            "confirm_roles": Counter(
                run.data.tags.get("asymtune.confirm_role", "") for run in runs
                if run.data.tags.get("asymtune.role") == "confirmation"
            ),
            "optuna_states": Counter(trial.state.name for trial in study.trials),
            "exported": {key: exported.get(key) for key in ("confirmed", "seed")},
        }
    return found


@pytest.mark.parametrize(
    "point",
    [pytest.param(name, marks=() if name in DEFAULT_SUITE else pytest.mark.slow) for name in POINTS],
)
def test_sigkill_at_a_point_then_the_same_command_ends_as_an_uninterrupted_sweep(
    point: str, smoke_sweep: Path, tmp_path: Path, cli
) -> None:
    kill = POINTS[point]
    output_dir = tmp_path / "out"
    args = [*ARGS, *kill.extra, f"output_dir={output_dir}"]
    epochs = int(compose("tune", list(args[1:]))["train"]["epochs"])
    _run_and_kill([sys.executable, "-m", "asymtune.cli", *args], kill, output_dir, epochs)

    rerun = cli(*args)

    assert "Traceback" not in rerun.stderr, rerun.stderr[-3000:]
    reference, resumed = outcome(smoke_sweep), outcome(output_dir)
    for name in DATASETS:
        assert resumed[name]["mlflow_unfinished"] == [], f"{name}: runs left unfinished after the rerun"
        assert resumed[name]["optuna_states"].get("RUNNING", 0) == 0, f"{name}: Optuna trials left RUNNING"
    assert resumed == reference

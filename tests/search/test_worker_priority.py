"""``ray.worker_niceness``: the trials and the confirmation trainings run at the configured niceness
(Ray alone would start them at 15), a process without the privilege to lower its niceness says so
once and carries on, and a value out of range is refused before anything starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asymtune.cli import main
from asymtune.config import compose
from asymtune.search.priority import NICENESS_ENV, current_niceness

# Raising a niceness needs no privilege, so these values hold whoever runs the tests, at any niceness.
RAISED = min(current_niceness() + 5, 19)


@pytest.mark.parametrize("value", ["20", "-21"])
def test_out_of_range_niceness_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    capsys.readouterr()
    assert main(["tune", f"ray.worker_niceness={value}", f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"asymtune tune: error: ray.worker_niceness={value}: expected an integer from -20 (highest priority) to 19 "
        "(lowest), or null to leave it to Ray"
    ]
    assert not (tmp_path / "out").exists()


def test_default_is_normal_priority() -> None:
    assert compose("tune")["ray"]["worker_niceness"] == 0


_UNPRIVILEGED_PROBE = f"""
import logging
from asymtune.search.priority import apply_worker_niceness, may_set_niceness
logging.basicConfig(format="%(levelname)s %(message)s")
print(may_set_niceness(0), may_set_niceness(12))
print(apply_worker_niceness({{"{NICENESS_ENV}": "0"}}), apply_worker_niceness({{"{NICENESS_ENV}": "0"}}))
print(apply_worker_niceness({{"{NICENESS_ENV}": "12"}}), apply_worker_niceness({{}}))
"""


def test_lowering_without_privilege_warns_once_and_keeps_the_niceness() -> None:
    """A process at niceness 10 without CAP_SYS_NICE (root gives it up with ``setpriv``) is asked for 0."""
    start = max(10, current_niceness())
    drop = [shutil.which("setpriv") or "setpriv", "--bounding-set=-sys_nice"] if os.geteuid() == 0 else []
    result = subprocess.run(
        ["nice", "-n", str(start - current_niceness()), *drop, sys.executable, "-c", _UNPRIVILEGED_PROBE],
        capture_output=True, text=True, timeout=120, check=True,
    )
    assert result.stdout.split() == ["False", "True", str(start), str(start), "12", "12"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        f"WARNING ray.worker_niceness=0: this process runs at niceness {start} and may not lower it (that needs "
        f"root or CAP_SYS_NICE, or ulimit -e of at least 20); the trials keep niceness {start}"
    ], "one warning per process, however many trials it runs"


@pytest.mark.e2e
def test_confirmation_tasks_run_at_the_configured_niceness() -> None:
    """Ray tasks of the confirmation (:class:`RayExecutor`) run at ``ray.worker_niceness``; a task of the
    same job without the hook runs at the raylet's niceness: Ray did not lower it to its own 15."""
    import ray

    from asymtune.confirm.executors import RayExecutor
    from asymtune.pipeline import start_ray

    assert not ray.is_initialized()
    start_ray({**compose("tune")["ray"], "num_cpus": 1, "worker_niceness": RAISED})
    try:
        # the local runtime got the niceness from this process's environment, which is as it was
        assert NICENESS_ENV not in os.environ and "RAY_worker_niceness" not in os.environ
        # current_niceness runs on the workers (a function of this test module would not import there)
        plain = ray.remote(num_cpus=0)(current_niceness)  # first: a worker the hook has not set yet
        assert ray.get(plain.remote()) == current_niceness()
        executor = RayExecutor({"cpu": 1, "gpu": 0})
        assert [result for _, result in executor.run(current_niceness, [()])] == [RAISED]
    finally:
        ray.shutdown()


@pytest.mark.e2e
def test_trials_report_the_configured_niceness(tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    cli(
        "tune", "experiment=smoke", "data=synth_lesions", "search.num_samples=1", "train.epochs=2",
        "search.scheduler.grace_period=1", "confirm.enabled=false", f"ray.worker_niceness={RAISED}",
        f"output_dir={output_dir}",
    )
    (result_file,) = (output_dir / "ray_results" / "synth_lesions").glob("trial_*/result.json")
    reports = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
    assert len(reports) == 2
    assert [report["sys/niceness"] for report in reports] == [RAISED, RAISED]

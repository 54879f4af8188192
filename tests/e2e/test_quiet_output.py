"""The default terminal output of ``asymtune tune`` fits in one screen per dataset: a progress line
that names its dataset, no trial table, no library chatter; ``verbose=2`` brings Ray Tune's table
back, also on a rerun of the same output_dir."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
TRIALS = 5
SCREEN = 50  # lines per dataset, sweep, confirmation and report together
ARGS = [
    "tune", "experiment=smoke", "data=synth_lesions", f"search.num_samples={TRIALS}",
    "search.max_concurrent_trials=2",
]
PROGRESS = re.compile(
    r"^\[synth_lesions\] (\d+)/5 done, (\d+) running(, \d+ stopped early)?(, \d+ failed)? \| "
    r"(no val/mean_fg_dice yet|best val/mean_fg_dice [0-9.]+ \(trial \w+\)) \| \w+ elapsed(, ~\w+ left)?$"
)
CHATTER = (
    "== Status ==", "Number of trials", "+---", "Current best trial",  # Ray Tune's table
    "A new study created",  # Optuna
    "MLflow database tables", "View run",  # MLflow
    "Token authentication is enabled",  # Ray's start
    "rung 1, trial",  # each rung decision (the report shows them)
)


def test_default_output_is_a_progress_line_per_dataset_and_verbose_2_shows_the_table(tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    result = cli(*ARGS, f"output_dir={output_dir}")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    shown = "\n".join(lines)
    assert len(lines) <= SCREEN, f"{len(lines)} lines for one dataset:\n{shown}"
    for chatter in CHATTER:
        assert chatter not in shown, f"{chatter!r} at the default verbosity:\n{shown}"
    progress = [PROGRESS.match(line) for line in result.stdout.splitlines()]
    progress = [match for match in progress if match]
    assert len(progress) >= 2, f"expected progress lines:\n{shown}"
    assert progress[0].group(1) == "0" and int(progress[0].group(2)) >= 1, "the first line: trials running"
    done = [int(match.group(1)) for match in progress]
    assert done == sorted(done) and done[-1] == TRIALS, done
    assert progress[-1].group(2) == "0" and progress[-1].group(5).startswith("best ")
    assert "asymtune: report at" in result.stdout

    rerun = cli(*ARGS, f"output_dir={output_dir}", "verbose=2")  # the finished sweep, restored: no trial runs
    assert f"Number of trials: {TRIALS}/{TRIALS} ({TRIALS} TERMINATED)" in rerun.stdout, rerun.stdout[-3000:]
    assert not any(PROGRESS.match(line) for line in rerun.stdout.splitlines())

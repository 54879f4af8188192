"""Datasets side by side: two datasets' sweeps overlap in time, each confirmation follows its own
sweep and makes its part of the report, which assembles once both are done; and the runner behind
it (asymtune.side_by_side)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from asymtune.report.build import build_report
from asymtune.side_by_side import run_side_by_side

DATASETS = ("synth_lesions", "synth_organs")
TRIALS = 3  # the smoke experiment's
DEADLOCK_GUARD_S = 120  # only bounds a hang when units do not run side by side; never reached otherwise


# ------------------------------------------------------------------------------------ the runner
def test_units_run_side_by_side_up_to_the_limit_and_return_in_order() -> None:
    both_running = threading.Barrier(2, timeout=DEADLOCK_GUARD_S)  # passes only if a and b run at once
    lock, running, most = threading.Lock(), [0], [0]

    def unit(name: str, meet: bool) -> str:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if meet:
            both_running.wait()
        with lock:
            running[0] -= 1
        return name

    units = [("a", lambda: unit("a", True)), ("b", lambda: unit("b", True)), ("c", lambda: unit("c", False))]
    assert run_side_by_side(units, limit=2) == ["a", "b", "c"]
    assert most[0] == 2, "never more units at once than the limit"


def test_each_units_lines_and_log_records_carry_its_name(capsys: pytest.CaptureFixture[str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("asymtune.test_side_by_side")

    def unit(name: str) -> None:
        print(f"table of {name}\nsecond line", end="")  # an unfinished last line is still written whole
        log.warning("trial of %s done", name)

    with caplog.at_level(logging.WARNING):
        run_side_by_side([(name, lambda name=name: unit(name)) for name in DATASETS], limit=2)
    lines = capsys.readouterr().out.splitlines()
    for name in DATASETS:
        assert f"[{name}] table of {name}" in lines and f"[{name}] second line" in lines
        assert f"[{name}] trial of {name} done" in caplog.messages
    print("after")  # the streams and the log records are the process's own again
    assert capsys.readouterr().out == "after\n"


def test_one_unit_at_a_time_runs_in_the_calling_thread_unprefixed(capsys: pytest.CaptureFixture[str]) -> None:
    def unit() -> str:
        print("plain")
        return threading.current_thread().name

    caller = threading.current_thread().name
    assert run_side_by_side([("a", unit), ("b", unit)], limit=1) == [caller, caller]
    assert run_side_by_side([("a", unit)], limit=4) == [caller], "a single dataset runs as before"
    assert capsys.readouterr().out == "plain\n" * 3


def test_a_failing_unit_stops_new_starts_and_its_error_is_raised_after_the_running_ones() -> None:
    failing_started, finished = threading.Event(), []

    def waits_for_the_failure() -> None:
        failing_started.wait(DEADLOCK_GUARD_S)
        finished.append("a")

    def fails() -> None:
        failing_started.set()
        raise ValueError("dataset b diverged")

    units = [("a", waits_for_the_failure), ("b", fails), ("c", lambda: finished.append("c"))]
    with pytest.raises(ValueError, match="dataset b diverged"):
        run_side_by_side(units, limit=2)
    assert finished == ["a"], "the running unit finished; no unit started after the failure"


def test_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit=0"):
        run_side_by_side([("a", lambda: None)], limit=0)


# ------------------------------------------------------------------------------- a real sweep
@pytest.mark.e2e
def test_two_datasets_sweep_side_by_side_then_confirm_and_report(tmp_path: Path, cli) -> None:
    output_dir = tmp_path / "out"
    # One trial per dataset at a time and two CPUs: both datasets always have a slot to run in.
    result = cli(
        "tune", "experiment=smoke", "search.parallel_datasets=2", "search.max_concurrent_trials=1",
        "ray.num_cpus=2", f"output_dir={output_dir}",
    )
    manifest = json.loads((output_dir / "sweep.json").read_text())
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    experiment = client.get_experiment_by_name("asymtune")
    assert experiment is not None
    trials, confirmations = {}, {}
    for name in DATASETS:
        entry = manifest["datasets"][name]
        assert {"experiment_dir", "study_name", "parent_run_id", "class_names", "fit_seconds"} <= set(entry), (
            f"{name}: a manifest update was lost: {sorted(entry)}"
        )
        query = f"tags.`mlflow.parentRunId` = '{entry['parent_run_id']}' and tags.`asymtune.role` = "
        trials[name] = client.search_runs([experiment.experiment_id], filter_string=query + "'trial'")
        confirmations[name] = client.search_runs([experiment.experiment_id], filter_string=query + "'confirmation'")
        assert len(trials[name]) == TRIALS and all(run.info.end_time for run in trials[name])
        assert confirmations[name], f"{name}: no confirmation run"

    first, second = sorted(DATASETS, key=lambda name: min(run.info.start_time for run in trials[name]))
    second_starts = min(run.info.start_time for run in trials[second])
    first_ends = max(run.info.end_time for run in trials[first])
    assert second_starts < first_ends, "the second dataset's first trial started after the first's last ended"
    for name in DATASETS:  # each confirmation follows its own sweep
        sweep_ends = max(run.info.end_time for run in trials[name])
        assert min(run.info.start_time for run in confirmations[name]) >= sweep_ends

    made = (output_dir / "report.json").read_text()
    report = json.loads(made)
    assert set(report["datasets"]) == set(DATASETS)
    assert all(report["datasets"][name]["confirmed"] for name in DATASETS)
    # each dataset's part was made in its own unit, when its confirmation ended: the same as a rebuild
    def exports() -> dict[str, list[str]]:  # each exported config, but the moment it was written
        return {name: [line for line in (output_dir / "configs" / f"{name}.yaml").read_text().splitlines()
                       if not line.strip().startswith("exported_at:")] for name in DATASETS}

    exported = exports()
    build_report(output_dir, log_to_mlflow=False)
    assert (output_dir / "report.json").read_text() == made
    assert exports() == exported
    lines = result.stdout.splitlines()
    for name in DATASETS:  # interleaved progress lines name their dataset, once
        assert any(line.startswith(f"[{name}] {TRIALS}/{TRIALS} done, 0 running | best ") for line in lines), lines
        assert not any(line.startswith(f"[{name}] [{name}]") for line in lines), lines

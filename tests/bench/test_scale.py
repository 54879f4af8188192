"""bench/scale.py: its simulated sweep config is a valid ``asymtune tune`` config, a measurement runs
in its own process under real Ray Tune, and the block states each goal with its verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asymtune.config import check_tune_config
from asymtune.search.plan import plan_datasets


def test_the_simulated_sweep_is_a_valid_config_of_distinct_datasets(bench_module, tmp_path: Path) -> None:
    scale = bench_module("scale")
    cfg = scale.tune_config(tmp_path / "out", datasets=3, trials=5, slots=6, epochs=4, epoch_seconds=0.25,
                            grace_period=1)
    check_tune_config(cfg)
    plans = plan_datasets(cfg)
    assert [plan.name for plan in plans] == ["sim_lesions_0", "sim_organs_1", "sim_lesions_2"]
    assert plans[0].dataset.num_classes == 2 and plans[1].dataset.num_classes == 4
    assert cfg["train"]["simulate_epoch_seconds"] == 0.25 and cfg["ray"]["num_cpus"] == 6
    assert cfg["search"]["max_concurrent_trials"] == 6 and cfg["resources"]["cpu"] == 1


def test_a_measurement_runs_bare_ray_tune_in_its_own_process(bench_module) -> None:
    scale = bench_module("scale")
    args = scale.parse_arguments(["--slots", "2", "--growth-epochs", "2", "--growth-epoch-seconds", "0.01"])
    result = scale.run_measure("bare", 2, args)
    assert result["trials"] == 2 and result["trial_epochs"] == 4  # ASHA stops none of the identical trials
    assert result["wall"] >= result["fit_wall"] > 0 and result["driver_cpu"] > 0
    assert result["workers"] >= 1  # the trials' actors, read from the Ray session's logs


def test_the_block_gives_medians_ranges_and_verdicts(bench_module) -> None:
    scale = bench_module("scale")
    args = scale.parse_arguments(["--growth", "10", "40", "--layers-trials", "10"])
    makespan = [{"wall": w, "ideal": 100.0, "ratio": w / 100, "bound": 102.0, "bound_ratio": w / 102,
                 "trial_epochs": 50, "confirm_trainings": 4, "driver_cpu": 9.0, "busy": busy,
                 "first_trial": 5.0, "all_slots": full, "sweeps_end": 80.0, "sweep_ideal": 60.0,
                 "sweep_occupancy": 0.75, "workers": workers, "before": 1.0, "after": 1.0, "ramp": 1.0,
                 "ramp_s": 10.0, "between": 2.0, "tail": 3.0, "tail_s": 20.0, "beyond": 4.0, "ahead_dropped": dropped}
                for w, busy, full, workers, dropped in ((104.0, 0.5, 20.0, 40, 0), (108.0, 0.75, 30.0, 44, 3),
                                                        (120.0, None, None, 70, 5))]
    growth = {
        size: [{"trial_epochs": 2 * size, "sweep_wall": 10.0, "sweep_cpu": cost * size, "cpu_per_trial": cost,
                "cpu_per_result": cost / 2, "report_wall": 0.5, "report_cpu": 0.4, "workers": 34} for cost in costs]
        for size, costs in ((10, (0.2, 0.2, 0.2)), (40, (0.3, 0.5, 0.4)))
    }
    layers = [{"wall": 12.0, "fit_wall": 10.0, "driver_cpu": 6.0, "workers": workers} for workers in (51, 34, 40)]
    bare = [{"wall": 10.0, "fit_wall": 9.0, "driver_cpu": 3.0, "workers": 34}] * 3
    runs = {("makespan", 0): makespan, ("growth", 10): growth[10], ("growth", 40): growth[40],
            ("layers", 10): layers, ("bare", 10): bare}
    block = "\n".join(scale.render(args, runs, "python bench/scale.py"))
    assert block.startswith("Command: `python bench/scale.py`")
    assert "median (min-max) of 3 interleaved repeats" in block
    assert ("makespan / ideal: 1.08 (1.04-1.20), met (goal <= 1.10); "
            "over the critical-path bound: 1.06 (1.02-1.18)") in block
    # CPU floor / ideal = busy x makespan / ideal, in the repeats that read the busy share: 0.5 x 1.04, 0.75 x 1.08
    assert "/ ideal: 0.67 (0.52-0.81). Where it is close" in block
    assert "| 102 (102-102) | 1.06 (1.02-1.18) |" in block and "| 62 (50-75) |" in block  # busy: 2 repeats read it
    # confirmation trainings, trainings ahead dropped, worker processes, driver CPU
    assert "| 4 (4-4) | 3 (0-5) | 44 (40-70) | 9 (9-9) |" in block
    assert "| 10 | 20 (20-20) | 34 (34-34) | 10 (10-10) |" in block  # growth: results, workers, sweep wall
    assert "| 6.0 (6.0-6.0) | 40 (34-51) |" in block and "| 2.00 (2.00-2.00) | 1.18 (1.00-1.50) |" in block
    # where the time went: all slots reached in 2 of 3 repeats; confirmation and report = makespan - 80 s
    assert "| 5 (5-5) | 25 (20-30); never in 1 of 3 | 80 (80-80) | 60 (60-60) | 75 (75-75) % | 28 (24-40) |" in block
    # beyond the ideal: makespan - ideal, before, start-up, in between, tail, beyond the stand-in, after, lengths
    assert "| 8 (4-20) | 1 (1-1) | 1 (1-1) | 2 (2-2) | 3 (3-3) | 4 (4-4) | 1 (1-1) | 10 (10-10) | 20 (20-20) |" in block
    assert "at 40 trials / at 10: 2.00 (1.50-2.50), NOT met (goal <= 1.50)" in block
    assert "whole command wall time: 1.20 (1.20-1.20), NOT met (goal <= 1.10)" in block
    assert "715 s" in block  # Ray Tune's own benchmark as the anchor


def test_the_critical_path_is_the_longest_datasets_sweep_then_its_race_rounds(bench_module) -> None:
    scale = bench_module("scale")
    per_dataset = {
        "a": {"trial_epochs": 40, "seeds": 2},  # 40 epochs x 2 s / 4 slots = 20 s, then 1 round of 10 x 2 s
        "b": {"trial_epochs": 20, "seeds": 4},  # 10 s, then rounds for seeds {0, 1}, 2 and 3: 3 x 20 s
    }
    assert scale.critical_path(per_dataset, slots_each=4, first_seeds=2, epochs=10, epoch_seconds=2.0) == 70.0
    # trainings ahead (confirm.train_ahead): every round may run beside the first, one training after the sweep
    assert scale.critical_path(per_dataset, slots_each=4, first_seeds=2, epochs=10, epoch_seconds=2.0,
                               rounds_wait=False) == 40.0
    assert scale.critical_path({"a": per_dataset["a"]}, 4, 2, 10, 2.0) == 40.0
    # the verdict's seeds after a race that stopped better at 2 seeds: one more round of 20 s, at once
    assert scale.critical_path({"a": {**per_dataset["a"], "verdict_round": 1}}, 4, 2, 10, 2.0) == 60.0
    assert scale._race_rounds({"reason": "better", "seeds": 2, "verdict_seeds": 8}) == {"seeds": 2, "verdict_round": 1}
    assert scale._race_rounds({"reason": "budget", "seeds": 4, "verdict_seeds": 4}) == {"seeds": 4, "verdict_round": 0}


def test_the_phases_of_a_sweep_come_from_its_trials_start_and_end(bench_module) -> None:
    scale = bench_module("scale")
    # 2 slots: trials [1, 5] and [2, 6] run at once from 2 s; [5, 9] takes the first slot as it ends
    phases = scale.phases_of([(1.0, 5.0), (2.0, 6.0), (5.0, 9.0)], slots=2)
    assert phases["first_trial"] == 1.0 and phases["all_slots"] == 2.0 and phases["sweeps_end"] == 9.0
    assert phases["sweep_occupancy"] == (4.0 + 4.0 + 4.0) / (2 * 9.0)
    # a slot handed over at 5 s is not a third trial at once; with 3 slots, all never hold a trial
    assert scale.phases_of([(1.0, 5.0), (2.0, 6.0), (5.0, 9.0)], slots=3)["all_slots"] is None


def test_the_time_beyond_the_ideal_splits_into_phases_that_add_up_to_the_makespan(bench_module) -> None:
    scale = bench_module("scale")
    # tasks from 2 s to 25 s in 5-s buckets [2, 7) [7, 12) [12, 17) [17, 22) [22, 25) busy 14, 20, 15, 11, 3
    spans = [(2.0, 12.0), (3.0, 12.0), (4.0, 20.0), (5.0, 20.0), (12.0, 20.0), (20.0, 25.0)]  # 63 task-seconds
    use = scale.slot_use(spans, slots=5, wall=30.0, ideal=10.0)
    # 5 slots: a bucket is full from 3 busy slots (15 slot-s): buckets 1 and 2; start-up = bucket 0, tail = 3 and 4
    expected = {"before": 2.0, "after": 5.0, "ramp": (25 - 14) / 5, "ramp_s": 5.0, "between": (5 + 10) / 5,
                "tail": (14 + 12) / 5, "tail_s": 8.0, "beyond": 63 / 5 - 10.0}
    assert use == pytest.approx(expected)
    assert 10.0 + sum(v for k, v in use.items() if not k.endswith("_s")) == pytest.approx(30.0), "ideal + parts = wall"
    # 4 slots: every bucket but the last is full (from 2 busy): no start-up, a 3-s tail
    use = scale.slot_use(spans, slots=4, wall=30.0, ideal=10.0)
    assert (use["ramp"], use["ramp_s"], use["between"], use["tail"], use["tail_s"]) == pytest.approx(
        (0.0, 0.0, (6 + 0 + 5 + 9) / 4, 9 / 4, 3.0))


def _fake_result(kind: str, size: int) -> dict[str, float]:
    """A record with every figure :func:`render` reads, for ``kind`` (the figures themselves do not matter here)."""
    if kind == "makespan":
        return {"wall": 110.0, "ideal": 100.0, "ratio": 1.1, "bound": 100.0, "bound_ratio": 1.1, "trial_epochs": 50,
                "confirm_trainings": 4, "driver_cpu": 9.0, "busy": 0.5, "first_trial": 5.0, "all_slots": 20.0,
                "sweeps_end": 80.0, "sweep_ideal": 60.0, "sweep_occupancy": 0.75, "workers": 40}
    if kind == "growth":
        return {"trial_epochs": 2 * size, "sweep_wall": 10.0, "sweep_cpu": 0.2 * size, "cpu_per_trial": 0.2,
                "cpu_per_result": 0.1, "report_wall": 0.5, "report_cpu": 0.4, "workers": 34}
    return {"wall": 12.0, "fit_wall": 10.0, "driver_cpu": 6.0, "workers": 34}


def test_records_are_written_as_measured_and_resume_takes_only_the_same_measurements(
        bench_module, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scale = bench_module("scale")
    measured: list[tuple[str, int]] = []

    def measure(kind: str, size: int, args) -> dict[str, float]:  # the bookkeeping is tested, not the measurement
        measured.append((kind, size))
        return _fake_result(kind, size)

    monkeypatch.setattr(scale, "run_measure", measure)
    records, block = tmp_path / "scale.json", tmp_path / "block.md"
    base = ["--growth", "10", "40", "--layers-trials", "10", "--repeats", "2", "--json", str(records),
            "--out", str(block)]
    assert scale.main(base) == 0
    assert len(measured) == 10  # 5 measurements x 2 repeats
    stored = json.loads(records.read_text())["measurements"]
    assert sorted((r["kind"], r["size"], r["repeat"]) for r in stored) == sorted(
        (kind, size, repeat) for repeat in (0, 1) for kind, size in
        (("makespan", 0), ("growth", 10), ("growth", 40), ("layers", 10), ("bare", 10)))
    assert all("--epochs" in r["arguments"] and r["measured_at"].endswith("UTC") for r in stored)
    assert stored[0]["result"] == _fake_result("makespan", 0)
    assert "taken from an earlier invocation" not in block.read_text()

    # an interrupted run: the last two measurements of repeat 1 never written; --resume measures only them
    records.write_text(json.dumps({"measurements": [r for r in stored if not (
        r["repeat"] == 1 and r["kind"] in ("layers", "bare"))]}))
    measured.clear()
    assert scale.main([*base, "--resume"]) == 0
    assert measured == [("layers", 10), ("bare", 10)]
    assert "8 of 10 measurements were taken from an earlier invocation's records" in block.read_text().splitlines()[0]
    assert len(json.loads(records.read_text())["measurements"]) == 10

    # a record measured on another CPU type (or with none recorded) is measured again, on this one
    stored = json.loads(records.read_text())["measurements"]
    assert all(r["cpu"] == scale.cpu_model() for r in stored)
    for record in stored:
        if (record["kind"], record["repeat"]) == ("makespan", 1):
            record["cpu"] = "AMD EPYC 7B13"
        if (record["kind"], record["size"], record["repeat"]) == ("growth", 40, 0):
            del record["cpu"]
    records.write_text(json.dumps({"measurements": stored}))
    measured.clear()
    assert scale.main([*base, "--resume"]) == 0
    assert sorted(measured) == [("growth", 40), ("makespan", 0)]
    assert "8 of 10 measurements were taken" in block.read_text().splitlines()[0]
    stored = json.loads(records.read_text())["measurements"]
    assert len(stored) == 10 and all(r["cpu"] == scale.cpu_model() for r in stored)

    # other arguments are other measurements: none taken, the earlier ones kept in the file
    measured.clear()
    assert scale.main([*base, "--epochs", "6", "--resume"]) == 0
    assert len(measured) == 10 and len(json.loads(records.read_text())["measurements"]) == 20
    # without --resume everything is measured again, and replaces its own records only
    measured.clear()
    assert scale.main(base) == 0
    assert len(measured) == 10 and len(json.loads(records.read_text())["measurements"]) == 20


def test_a_records_file_of_another_kind_is_named_in_the_error(bench_module, tmp_path: Path) -> None:
    scale = bench_module("scale")
    wrong = tmp_path / "other.json"
    wrong.write_text(json.dumps({"repeats": []}))  # a decision study's records
    with pytest.raises(ValueError, match=r"--json .*other\.json: not a records file of bench/scale\.py"):
        scale.read_records(wrong)
    with pytest.raises(SystemExit):
        scale.parse_arguments(["--resume"])  # nothing to resume from

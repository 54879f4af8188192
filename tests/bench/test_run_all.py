"""bench/run_all.py puts each benchmark's block into its section and keeps the prose around it;
bench/search_efficiency.py turns search records into the compute-to-target table."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


DOC = """# Benchmarks

## Cost per step

Goal: prose that stays.

Command: `python bench/loss_cost.py --rounds 30` (old)

| step | ms |
|---|---|
| plain | 95.7 |

Adversarial step / clean step: 1.761.

Result: prose that stays too.

## Sweep wall time

Some prose.
"""


def _bench(run_all: ModuleType, key: str, heading: str, script: str, full: tuple[str, ...]):
    return run_all.Benchmark(key, "docs/benchmarks.md", heading, script, full, ())


def test_first_run_replaces_the_old_block_of_the_same_command_and_keeps_the_prose(bench_module) -> None:
    run_all = bench_module("run_all")
    bench = _bench(run_all, "loss_cost", "Cost per step", "loss_cost.py", ("--rounds", "30"))
    block = "Command: `python bench/loss_cost.py --rounds 30` (new)\n\n| step | ms |\n|---|---|\n| plain | 90.1 |\n\n" \
            "Adversarial step / clean step: 1.700.\n"
    text = run_all.place_block(DOC, bench, block, "<sub>measured today</sub>")
    assert "95.7" not in text and "1.761" not in text
    assert "90.1" in text and "1.700" in text and "<sub>measured today</sub>" in text
    assert "Goal: prose that stays." in text and "Result: prose that stays too." in text
    assert text.index("<!-- bench:loss_cost -->") < text.index("90.1") < text.index("<!-- /bench:loss_cost -->")
    again = run_all.place_block(text, bench, block.replace("90.1", "88.8"))
    assert "90.1" not in again and "88.8" in again and again.count("<!-- bench:loss_cost -->") == 1
    assert "Result: prose that stays too." in again


def test_a_block_without_old_figures_goes_to_the_end_of_its_section_or_a_new_one(bench_module) -> None:
    run_all = bench_module("run_all")
    in_section = run_all.place_block(DOC, _bench(run_all, "wall", "Sweep wall time", "w.py", ()), "Command: `w`\n")
    assert in_section.index("Some prose.") < in_section.index("<!-- bench:wall -->")
    new = run_all.place_block(DOC, _bench(run_all, "speed", "Training speed", "t.py", ()), "Command: `t`\n")
    assert new.rstrip().endswith("<!-- /bench:speed -->") and "## Training speed" in new


def test_every_registered_benchmark_exists_and_has_a_unique_key(bench_module) -> None:
    run_all = bench_module("run_all")
    keys = [bench.key for bench in run_all.BENCHMARKS]
    assert len(keys) == len(set(keys))
    for bench in run_all.BENCHMARKS:
        assert (BENCH / bench.script).is_file(), bench.script


def _record(method: str, seed: int, points: list[tuple[float, float, float]], reached_at: int | None) -> dict:
    trials = [
        {"params": {"margin": margin, "gamma": gamma}, "epochs": 10, "value": value, "compute_so_far": 10 * (i + 1)}
        for i, (margin, gamma, value) in enumerate(points)
    ]
    return {"dataset": "toy", "method": method, "seed": seed, "compute": 10 * len(points), "reached_at": reached_at,
            "trials_to_reach": None if reached_at is None else reached_at // 10, "trials": trials, "iterations": 20}


def test_search_summary_reports_compute_to_target_against_the_grid(bench_module) -> None:
    study = bench_module("search_efficiency")
    records = [
        _record("grid", 0, [(0.0, 0.0, 0.50), (0.5, 4.0, 0.60), (1.0, 4.0, 0.55), (2.0, 4.0, 0.58)], None),
        _record("tpe_asha", 0, [(1.0, 4.0, 0.55), (0.7, 3.0, 0.60)], 20),
        _record("tpe_asha", 1, [(0.1, 1.0, 0.40), (0.2, 1.0, 0.45), (0.3, 1.0, 0.595)], 30),
        _record("random", 0, [(0.11, 0.1, 0.30), (0.12, 0.1, 0.31), (0.13, 0.1, 0.32), (0.14, 0.1, 0.33)], None),
    ]
    args = argparse.Namespace(epochs=10, grace_period=2, repeats=2, tolerance=0.01, goal=0.30,
                              methods=["tpe_asha", "random"])
    text = "\n".join(study.summarise(records, args, "python bench/search_efficiency.py"))
    assert ("| toy | 0.600 (margin 0.5, gamma 4), 40 | tpe_asha | 20, 30 | 25 | 62% (50-75) | 2, 3 | "
            "0.600, 0.595 |") in text
    assert "| toy |  | random | >40 | not reached | - (none reached) | - | 0.330 |" in text
    assert "toy: TPE + ASHA needs 62% of the grid's compute" in text and "misses the goal of at most 30%" in text
    # tpe seed 0 repeated the grid point (margin 1, gamma 4) and got the same value
    assert "toy: 1 searcher trials repeated a grid point, largest difference in validation Dice 0.0000" in text


def test_search_summary_says_by_how_much_a_search_that_never_reaches_the_target_misses(bench_module) -> None:
    study = bench_module("search_efficiency")
    records = [
        _record("grid", 0, [(0.0, 0.0, 0.50), (0.5, 4.0, 0.60), (1.0, 4.0, 0.55), (2.0, 4.0, 0.58)], None),
        _record("tpe_asha", 0, [(1.0, 4.0, 0.55), (0.7, 3.0, 0.57)], None),  # best 0.57, 20 trial-epochs
        _record("tpe_asha", 1, [(0.1, 1.0, 0.40), (0.2, 1.0, 0.45), (0.3, 1.0, 0.58)], None),  # 0.58, 30
    ]
    args = argparse.Namespace(epochs=10, grace_period=2, repeats=2, tolerance=0.01, goal=0.30, methods=["tpe_asha"])
    text = "\n".join(study.summarise(records, args, "python bench/search_efficiency.py"))
    assert "| tpe_asha | >20, >30 | not reached | - (none reached) | -, - | 0.570, 0.580 |" in text
    # median best found 0.575; target 0.600 - 0.01 = 0.590; median budget 25 of the grid's 40
    assert ("toy: TPE + ASHA reaches the target in 0 of 2 searches" in text
            and "(median 25 trial-epochs, 62% of the grid's) its best validation Dice is 0.575 (median over seeds), "
                "0.015 below the target 0.590." in text)


def test_rank_correlation_of_the_rungs(bench_module) -> None:
    study = bench_module("search_efficiency")
    assert study.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert study.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    grid = _record("grid", 0, [(0.0, 0.0, 0.5), (0.5, 0.0, 0.6), (1.0, 0.0, 0.7)], None)
    for trial, curve in zip(grid["trials"], ([0.1, 0.3, 0.5], [0.3, 0.2, 0.6], [0.2, 0.1, 0.7])):
        trial["curve"] = curve
    args = argparse.Namespace(epochs=3, grace_period=1)
    assert "toy: epoch 1: 0.50" in study.rung_correlations([grid], args)


def test_single_anchors_follow_the_baseline_and_precede_the_authors_default(bench_module) -> None:
    study = bench_module("search_efficiency")
    anchors = study.space_mapping(True, single_anchors=True)["anchors"]
    assert list(anchors) == ["baseline", "margin_alone", "focal_alone", "authors_default"]
    assert (anchors["margin_alone"]["margin"], anchors["margin_alone"]["gamma"]) == (1.0, 0.0)
    assert (anchors["focal_alone"]["margin"], anchors["focal_alone"]["gamma"]) == (0.0, 4.0)
    assert list(study.space_mapping(True)["anchors"]) == ["baseline", "authors_default"]

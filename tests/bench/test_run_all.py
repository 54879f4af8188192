"""bench/run_all.py puts each benchmark's block into its section and keeps the prose around it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

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

"""bench/orchestration_overhead.py: interleaved repeats, medians with their range, the verdict on the median."""

from __future__ import annotations

import argparse


def _repeat(loop: float, fit: float, whole: float) -> dict[str, dict[str, object]]:
    return {"loop": {"seconds": loop, "per_trial": [loop / 2, loop / 2]},
            "sweep": {"seconds": whole, "fit_seconds": fit}}


def test_sides_alternate_from_repeat_to_repeat(bench_module) -> None:
    overhead = bench_module("orchestration_overhead")
    assert [overhead.side_order(i) for i in range(3)] == [("loop", "sweep"), ("sweep", "loop"), ("loop", "sweep")]


def test_ratios_are_medians_over_repeats_with_their_range_and_the_verdict_uses_the_median(bench_module) -> None:
    overhead = bench_module("orchestration_overhead")
    args = argparse.Namespace(trials=4, concurrency=2, epochs=30, repeats=3, override=[])
    # whole / loop: 1.20, 1.10, 1.14 -> median 1.14 (met although one repeat is above 1.15);
    # fit / loop: 1.25, 1.16, 1.30 -> median 1.25 (not met)
    lines = overhead.summarise([_repeat(100, 125, 120), _repeat(50, 58, 55), _repeat(10, 13, 11.4)], args)
    text = "\n".join(lines)
    assert "--repeats 3` (4 trials of 30 x 20 iterations, 5.0-50.0 s each in the loop" in text
    assert "| plain loop (process pool) | 50.0 (10.0-100.0) | 1.000 | | |" in text
    assert "| `asymtune tune`, Tuner.fit only | 58.0 (13.0-125.0) | 1.250 (1.160-1.300) | <= 1.15 | not met |" in text
    assert "| `asymtune tune`, whole command | 55.0 (11.4-120.0) | 1.140 (1.100-1.200) | <= 1.15 | met |" in text
    assert "1 (loop then sweep): 1.200, 1.250; 2 (sweep then loop): 1.100, 1.160; 3 (loop then sweep): 1.140, 1.300" \
        in text

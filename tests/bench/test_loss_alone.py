"""bench/loss_alone.py times both losses on the same tensors and judges the median ratio against 0.8."""

from __future__ import annotations

import argparse

import pytest


def test_shapes_are_parsed_and_bad_ones_named(bench_module) -> None:
    loss_alone = bench_module("loss_alone")
    assert loss_alone.parse_shape("8x3x64x64") == (8, 3, 64, 64)
    assert loss_alone.parse_shape("2x3x32x64x64") == (2, 3, 32, 64, 64)
    for bad in ("8x1x64x64", "8x3x64", "8x3xax64"):
        with pytest.raises(argparse.ArgumentTypeError, match=bad):
            loss_alone.parse_shape(bad)


def test_interleaving_alternates_the_order_and_skips_the_warmup(bench_module) -> None:
    loss_alone = bench_module("loss_alone")
    calls: list[str] = []
    loss_alone.interleaved_medians(lambda: calls.append("a"), lambda: calls.append("b"), rounds=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_the_verdict_uses_the_median_ratio_of_the_repeats(bench_module) -> None:
    loss_alone = bench_module("loss_alone")
    met = loss_alone.CaseResult((8, 3, 64, 64), ours=[0.7, 0.9, 0.75], monai=[1.0, 1.0, 1.0])  # median 0.75
    missed = loss_alone.CaseResult((2, 3, 8, 8, 8), ours=[0.85, 0.5, 0.9], monai=[1.0, 1.0, 1.0])  # median 0.85
    text = "\n".join(loss_alone.summarise([met, missed], "python bench/loss_alone.py", 1, 10, 3))
    assert ("| 8 x 3 x 64 x 64 | 750.00 (700.00-900.00) | 1000.00 (1000.00-1000.00) | 0.750 (0.700-0.900) "
            "| <= 0.8 | met |") in text
    assert "| 2 x 3 x 8 x 8 x 8 | 850.00 (500.00-900.00) |" in text
    assert "| 0.850 (0.500-0.900) | <= 0.8 | missed |" in text
    assert "is met for 1 of 2 shapes" in text


def test_a_real_measurement_times_both_losses(bench_module) -> None:
    pytest.importorskip("monai")
    loss_alone = bench_module("loss_alone")
    result = loss_alone.measure((1, 3, 8, 8), repeats=2, rounds=2, warmup=1)
    assert len(result.ours) == len(result.monai) == 2
    assert all(seconds > 0 for seconds in (*result.ours, *result.monai))

"""bench/effect_study.py's summaries: the paired difference to the baseline and its table."""

from __future__ import annotations

import math

import pytest


def _record(setting: str, seed: int, dice: float, shift: float) -> dict[str, object]:
    return {"setting": setting, "seed": seed, "test/dice/lesion": dice, "test/sensitivity/lesion": dice,
            "test/precision/lesion": 0.5, "train/sensitivity/lesion": 1.0, "diag/median_train/lesion": 3.0,
            "diag/median_val/lesion": 1.0, "diag/shift/lesion": 2.0, "shift/median_val/lesion": 3.0 - shift,
            "shift/shift/lesion": shift}


RESULTS = [
    _record("baseline", 0, 0.50, 2.0), _record("baseline", 1, 0.60, 3.0), _record("baseline", 2, 0.40, 1.0),
    _record("asym_focal", 0, 0.55, 1.0), _record("asym_focal", 1, 0.67, 2.0), _record("asym_focal", 2, 0.43, 0.5),
    _record("asym_margin", 0, 0.52, 2.0),  # seed 0 only
]


def test_paired_difference_pairs_by_seed_and_gives_a_t_interval(bench_module) -> None:
    study = bench_module("effect_study")
    mean, low, high, n = study.paired_rows(RESULTS, "asym_focal", "test/dice/lesion")
    # differences 0.05, 0.07, 0.03: mean 0.05, sd 0.02, t(0.975, 2) = 4.303
    assert n == 3
    assert mean == pytest.approx(0.05)
    assert high - mean == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-3)
    assert low == pytest.approx(2 * mean - high)
    one = study.paired_rows(RESULTS, "asym_margin", "test/dice/lesion")
    assert one is not None and one[3] == 1 and math.isnan(one[1])
    assert study.paired_rows(RESULTS, "sym_focal", "test/dice/lesion") is None


def test_format_paired(bench_module) -> None:
    study = bench_module("effect_study")
    assert study.format_paired((0.05, 0.0003, 0.0997, 3)) == "+0.050 [+0.000, +0.100]"
    assert study.format_paired((-0.02, math.nan, math.nan, 1)) == "-0.020"
    assert study.format_paired(None) == "n/a"


def test_tables_show_train_sensitivity_test_shift_and_paired_rows(bench_module) -> None:
    study = bench_module("effect_study")
    lines = study.tables(RESULTS, ["lesion"], ["baseline", "asym_focal", "asym_margin"])
    header = lines[0]
    assert "train sensitivity" in header and "shift (train - test)" in header and "shift (train - val)" in header
    focal = next(line for line in lines if line.startswith("| lesion | asym_focal | +"))
    assert "+0.050 [" in focal  # Δ Dice with its interval
    assert "-0.833 [" in focal  # Δ shift (train - test): (-1 - 1 - 0.5) / 3
    margin = next(line for line in lines if line.startswith("| lesion | asym_margin | +"))
    assert "+0.020 |" in margin  # one seed: no interval
    # one seed in all: no paired table
    single = study.tables([r for r in RESULTS if r["seed"] == 0], ["lesion"], ["baseline", "asym_focal"])
    assert not any("Paired" in line for line in single)


def test_probe_table_has_a_row_per_rare_class_with_both_shifts(bench_module) -> None:
    study = bench_module("effect_study")
    record = {
        "dataset": "nuclei", "train_fraction": 0.1, "model": {"base_channels": 8}, "train": {"epochs": 60},
        "seed": 1, "seconds": 35.4, "data": {"params": {"rare_classes": ["boundary"]}},
        "train/sensitivity/boundary": 0.9344, "test/sensitivity/boundary": 0.347, "test/precision/boundary": 0.4,
        "test/dice/boundary": 0.372, "diag/shift/boundary": 10.05, "shift/shift/boundary": 7.78,
    }
    header, rule, row = study.probe_table([record])
    assert header.count("|") == rule.count("|") == row.count("|")
    assert row == "| nuclei | 0.1 | 8 | 60 | 1 | boundary | 0.934 | 0.347 | 0.400 | 0.372 | +10.05 | +7.78 | 35 |"


def test_the_asymmetric_version_is_paired_with_the_symmetric_one_of_its_technique(bench_module) -> None:
    study = bench_module("effect_study")
    symmetric = [_record("sym_focal", seed, dice, 1.5) for seed, dice in ((0, 0.54), (1, 0.62), (2, 0.44))]
    lines = study.tables(RESULTS + symmetric, ["lesion"], ["baseline", "asym_focal", "asym_margin", "sym_focal"])
    (row,) = [line for line in lines if line.startswith("| lesion | asym_focal - sym_focal |")]
    # asym_focal - sym_focal by seed: Dice 0.01, 0.05, -0.01 (mean 0.0167); shift -0.5, 0.5, -1.0 (mean -0.333)
    assert "| +0.017 [" in row and "| -0.333 [" in row
    assert "asym_margin - " not in "\n".join(lines), "asym_margin has no symmetric version in this study"
    assert not any("Asymmetric minus symmetric" in line
                   for line in study.tables(RESULTS, ["lesion"], ["baseline", "asym_focal", "asym_margin"]))

"""bench/sweep_wall_time.py: the block says how far each dataset's confirmation race went."""

from __future__ import annotations

import json
from pathlib import Path


def test_the_confirmation_column_reads_each_datasets_race_from_the_report(bench_module, tmp_path: Path) -> None:
    wall = bench_module("sweep_wall_time")
    assert wall.confirmation_of(tmp_path) == "-"  # no report (e.g. report.enabled=false)
    report = {"datasets": {
        "synth_lesions": {"decision": {"seeds_per_setting": 4, "race": {"seeds": 4, "reason": "budget"}}},
        "nuclei": {"decision": {"seeds_per_setting": 8, "race": {"seeds": 4, "reason": "better"}}},  # verdict seeds
        "synth_organs": {"decision": {"seeds_per_setting": 2, "race": {"seeds": 2, "reason": "baseline leads"}}},
        "smoke": {"decision": {"seeds_per_setting": 2}},  # seeds == max_seeds: no race
    }}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert wall.confirmation_of(tmp_path) == (
        "synth_lesions: 4 seeds (budget); nuclei: 4 seeds (better, the test over 8); "
        "synth_organs: 2 seeds (baseline leads); smoke: 2 seeds (no race)")

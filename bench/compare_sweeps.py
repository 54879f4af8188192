"""Compare two output folders of ``asymtune tune``: the same trials, metrics and decisions?

Used to check that a refactoring changes no result: run the same command (same seeds) on the old
and the new code, then ``python bench/compare_sweeps.py OLD_OUTPUT_DIR NEW_OUTPUT_DIR``.

Trials are matched by the values Optuna proposed (trial ids are random). For each dataset it
compares every trial's epochs and every reported validation metric, the sweep's choice, the
confirmed choice and every confirmation value of ``report.json`` (validation and test metrics
per seed). Reads only the files (Ray Tune's ``params.json``/``result.json``, ``report.json``), so
it works on output folders of any version. Exits 1 and lists the differences when there are any.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

FIXED_KEYS = ("asymtune", "settings")  # the sweep's fixed part and the resolved setting (newer sweeps)


def _trials(experiment_dir: Path) -> dict[str, dict[str, Any]]:
    """``{trial_id: {"params": Optuna's values, "history": [result, ...]}}`` of one dataset sweep."""
    trials = {}
    for params_file in sorted(experiment_dir.glob("trial_*/params.json")):
        params = {k: v for k, v in json.loads(params_file.read_text()).items() if k not in FIXED_KEYS}
        results = params_file.with_name("result.json")
        history = (
            [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
            if results.is_file()
            else []
        )
        trials[params_file.parent.name.removeprefix("trial_")] = {"params": params, "history": history}
    return trials


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance
    return bool(a == b)


def compare_dataset(old_dir: Path, new_dir: Path, name: str, tolerance: float) -> list[str]:
    """The differences between the two sweeps of dataset ``name``."""
    diffs: list[str] = []
    old_manifest = json.loads((old_dir / "sweep.json").read_text())["datasets"][name]
    new_manifest = json.loads((new_dir / "sweep.json").read_text())["datasets"][name]
    old = _trials(Path(old_manifest["experiment_dir"]))
    new = _trials(Path(new_manifest["experiment_dir"]))
    old_by_key = {_key(t["params"]): (tid, t) for tid, t in old.items()}
    new_by_key = {_key(t["params"]): (tid, t) for tid, t in new.items()}
    if set(old_by_key) != set(new_by_key):
        diffs.append(f"{name}: different trials proposed: only old {sorted(set(old_by_key) - set(new_by_key))}, "
                     f"only new {sorted(set(new_by_key) - set(old_by_key))}")
    id_map = {}
    compared = 0
    for key in sorted(set(old_by_key) & set(new_by_key)):
        (old_id, old_trial), (new_id, new_trial) = old_by_key[key], new_by_key[key]
        id_map[old_id] = new_id
        if len(old_trial["history"]) != len(new_trial["history"]):
            diffs.append(f"{name}: trial {key}: {len(old_trial['history'])} epochs before, "
                         f"{len(new_trial['history'])} now")
        for epoch, (a, b) in enumerate(zip(old_trial["history"], new_trial["history"]), start=1):
            for metric in sorted(k for k in a if k.startswith(("val/", "train/", "diag/"))):
                compared += 1
                if not _same(a[metric], b.get(metric), tolerance):
                    diffs.append(f"{name}: trial {key} epoch {epoch} {metric}: {a[metric]} before, {b.get(metric)} now")
    old_report = json.loads((old_dir / "report.json").read_text())["datasets"][name]
    new_report = json.loads((new_dir / "report.json").read_text())["datasets"][name]
    for field in ("sweep_choice", "baseline", "selected"):
        if id_map.get(old_report.get(field)) != new_report.get(field):
            diffs.append(f"{name}: {field}: trial {old_report.get(field)} before "
                         f"(now {id_map.get(old_report.get(field))}),"
                         f" {new_report.get(field)} now")
    for field in ("setting", "confirmed"):
        if old_report.get(field) != new_report.get(field):
            diffs.append(f"{name}: {field}: {old_report.get(field)!r} before, {new_report.get(field)!r} now")
    for role in ("selected", "baseline"):
        before = ((old_report.get("results") or {}).get("test") or {}).get(role) or {}
        after = ((new_report.get("results") or {}).get("test") or {}).get(role) or {}
        for metric in sorted(set(before) | set(after)):
            a, b = before.get(metric, {}).get("values"), after.get(metric, {}).get("values")
            compared += 1
            if a is None or b is None or len(a) != len(b) or not all(_same(x, y, tolerance) for x, y in zip(a, b)):
                diffs.append(f"{name}: confirmation {role} {metric}: {a} before, {b} now")
    print(f"{name}: {len(set(old_by_key) & set(new_by_key))} trials matched, {compared} values compared, "
          f"{len(diffs)} differences")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="output_dir of the reference run")
    parser.add_argument("new", type=Path, help="output_dir of the run to check")
    parser.add_argument("--tolerance", type=float, default=0.0, help="absolute tolerance on values (default exact)")
    args = parser.parse_args(argv)
    names = sorted(json.loads((args.old / "sweep.json").read_text())["datasets"])
    diffs = [d for name in names for d in compare_dataset(args.old, args.new, name, args.tolerance)]
    for line in diffs:
        print("DIFF", line)
    print("same trials, metrics and decisions" if not diffs else f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

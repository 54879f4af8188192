"""Compare two output folders of ``asymtune tune``: the same trials, metrics and decisions?

Used to check that a refactoring changes no result: ``python bench/compare_sweeps.py --against REV``
runs the default ``asymtune tune`` (same seeds) on a checkout of REV and on this tree, then
compares; ``python bench/compare_sweeps.py OLD_OUTPUT_DIR NEW_OUTPUT_DIR`` compares two runs made
by hand.

Trials are matched by the values Optuna proposed (trial ids are random). For each dataset it
compares every trial's epochs and every reported validation metric, the sweep's choice, the
confirmed choice and every confirmation value of ``report.json`` (validation and test metrics
per seed). Reads only the files (Ray Tune's ``params.json``/``result.json``, ``report.json``), so
it works on output folders of any version. Differences are counted by stage: the sweep (every
trial's metrics, the sweep's choice, the baseline) and the confirmation (its choice and values).
Exits 1 when the sweep differs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent

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


@dataclass
class Comparison:
    """One dataset's comparison: matched trials, values compared, differences by stage."""

    name: str
    trials: int = 0
    compared: int = 0
    sweep: list[str] = field(default_factory=list)
    confirmation: list[str] = field(default_factory=list)


def compare_dataset(old_dir: Path, new_dir: Path, name: str, tolerance: float) -> Comparison:
    """The differences between the two sweeps of dataset ``name`` (the sweep's trials and choice,
    then the confirmation's choice and values)."""
    result = Comparison(name)
    diffs = result.sweep
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
    for key in ("sweep_choice", "baseline", "selected"):
        if id_map.get(old_report.get(key)) != new_report.get(key):
            (diffs if key != "selected" else result.confirmation).append(
                f"{name}: {key}: trial {old_report.get(key)} before (now {id_map.get(old_report.get(key))}),"
                f" {new_report.get(key)} now")
    diffs = result.confirmation
    for key in ("setting", "confirmed"):
        if old_report.get(key) != new_report.get(key):
            diffs.append(f"{name}: {key}: {old_report.get(key)!r} before, {new_report.get(key)!r} now")
    for role in ("selected", "baseline"):
        before = ((old_report.get("results") or {}).get("test") or {}).get(role) or {}
        after = ((new_report.get("results") or {}).get("test") or {}).get(role) or {}
        for metric in sorted(set(before) | set(after)):
            a, b = before.get(metric, {}).get("values"), after.get(metric, {}).get("values")
            compared += 1
            if a is None or b is None or len(a) != len(b) or not all(_same(x, y, tolerance) for x, y in zip(a, b)):
                diffs.append(f"{name}: confirmation {role} {metric}: {a} before, {b} now")
    result.trials, result.compared = len(set(old_by_key) & set(new_by_key)), compared
    print(f"{name}: {result.trials} trials matched, {compared} values compared, "
          f"{len(result.sweep) + len(result.confirmation)} differences")
    return result


def run_tune(source: Path, output_dir: Path, overrides: list[str]) -> None:
    """``asymtune tune`` with the package and ``conf/`` of ``source`` (a checkout), in a new process."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "asymtune.cli", "tune", *overrides, f"output_dir={output_dir}", "verbose=0"]
    print(f"[compare] {source}: {' '.join(command[2:])}", flush=True)
    subprocess.run(command, cwd=source, env=env, check=True, stdout=subprocess.DEVNULL)


def _commit(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def against(rev: str, overrides: list[str], tolerance: float) -> tuple[list[Comparison], list[str]]:
    """Run the same ``asymtune tune`` on a checkout of ``rev`` and on this tree, then compare."""
    with tempfile.TemporaryDirectory(prefix="asymtune-compare-") as scratch:
        folder = Path(scratch)
        subprocess.run(["git", "worktree", "add", "--detach", str(folder / "old"), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            run_tune(folder / "old", folder / "old_out", overrides)
            run_tune(ROOT, folder / "new_out", overrides)
            return compare(folder / "old_out", folder / "new_out", tolerance), [_commit(rev), _commit("HEAD")]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(folder / "old")], cwd=ROOT, check=False)


def compare(old: Path, new: Path, tolerance: float) -> list[Comparison]:
    names = sorted(json.loads((old / "sweep.json").read_text())["datasets"])
    return [compare_dataset(old, new, name, tolerance) for name in names]


def markdown(results: list[Comparison], command: str, commits: list[str] | None) -> list[str]:
    """The block of docs/benchmarks.md."""
    lines = [f"Command: `{command}`", ""]
    if commits:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "asymtune", "conf",
                                "search_spaces"], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        lines += [f"Reference: commit {commits[0]}; compared: commit {commits[1]}"
                  + (" with uncommitted changes" if dirty else "") + ".", ""]
    lines += ["| dataset | trials matched | values compared | differences in the sweep | "
              "differences in the confirmation |", "|---|---|---|---|---|"]
    lines += [f"| {r.name} | {r.trials} | {r.compared} | {len(r.sweep)} | {len(r.confirmation)} |" for r in results]
    for r in results:
        lines += [f"- {line[:160]}" for line in (r.sweep + r.confirmation)[:3]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", help="OLD_OUTPUT_DIR NEW_OUTPUT_DIR, or with --against: overrides")
    parser.add_argument("--against", metavar="REV", help="run asymtune tune (with the overrides given) on a checkout "
                        "of REV and on this tree, then compare the two")
    parser.add_argument("--tolerance", type=float, default=0.0, help="absolute tolerance on values (default exact)")
    parser.add_argument("--out", type=Path, help="also write the Markdown block here (bench/run_all.py)")
    args = parser.parse_args(argv)
    if args.against:
        results, commits = against(args.against, args.dirs, args.tolerance)
        command = " ".join(["python bench/compare_sweeps.py --against", args.against, *args.dirs])
    elif len(args.dirs) == 2:
        results, commits = compare(Path(args.dirs[0]), Path(args.dirs[1]), args.tolerance), None
        command = f"python bench/compare_sweeps.py {args.dirs[0]} {args.dirs[1]}"
    else:
        parser.error("expected OLD_OUTPUT_DIR NEW_OUTPUT_DIR, or --against REV")
    for r in results:
        for line in r.sweep + r.confirmation:
            print("DIFF", line)
    emit(markdown(results, command, commits), args.out)
    return 1 if any(r.sweep for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

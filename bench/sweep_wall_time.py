"""Sweep wall time: ``asymtune tune`` (the default sweep) and the smoke sweep, end to end.

Each command runs as a user runs it (a fresh process, a fresh output folder) and is timed from
start to exit: Ray start-up, input checks, MLflow set-up, every trial and the report included.

    python bench/sweep_wall_time.py            # default sweep and smoke sweep (half an hour or more on 2 cores)
    python bench/sweep_wall_time.py --quick    # smoke sweep only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _output import emit  # bench/ is on sys.path when a script runs
from _product import asymtune_command, local_ray_env

ROOT = Path(__file__).resolve().parent.parent

SWEEPS = (
    ("default", (), "both built-in datasets side by side, 8 trials each (2 at a time), 30 epochs x 20 "
     "iterations, fidelity-checked ASHA (grace 6, factor 3); confirmation race with the authors' defaults as "
     "rivals; report"),
    ("smoke", ("experiment=smoke",), "both datasets, 3 trials each, 2 epochs, tiny network; a confirmation "
     "race with a budget of 2 seeds (`confirm.max_seeds=2`), so it ends with its first round"),
)
GOALS = {"default": "10 min", "smoke": "2 min"}


def minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def confirmation_of(output_dir: Path) -> str:
    """Per dataset, how far the confirmation's race went (seeds per setting, why it stopped) and, when
    the verdict trained more seeds than the race (``confirm.verdict_seeds``), the seeds of the test,
    from the sweep's ``report.json`` (the wall time depends on them); ``-`` when there is none."""
    path = output_dir / "report.json"
    if not path.is_file():
        return "-"
    parts = []
    for name, entry in json.loads(path.read_text()).get("datasets", {}).items():
        decision = entry.get("decision") or {}
        race = decision.get("race") or {}
        tested = decision.get("seeds_per_setting", "?")
        seeds = race.get("seeds", tested)
        beyond = f", the test over {tested}" if tested != seeds else ""
        parts.append(f"{name}: {seeds} seeds ({race.get('reason', 'no race')}{beyond})")
    return "; ".join(parts) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smoke sweep only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for name, overrides, what in SWEEPS:
        if args.quick and name != "smoke":
            continue
        folder = Path(tempfile.mkdtemp(prefix=f"asymtune-{name}-"))
        try:
            command = [*asymtune_command(), "tune", *overrides, f"output_dir={folder / 'out'}"]
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                                    env=local_ray_env(command))
            seconds = time.perf_counter() - start
            confirmation = confirmation_of(folder / "out")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], sep="\n", file=sys.stderr)
            print(f"`asymtune tune {' '.join(overrides)}` failed with exit {result.returncode}", file=sys.stderr)
            return 1
        shown = " ".join(("asymtune tune", *overrides, "output_dir=<new folder>"))
        rows.append(f"| `time {shown}` | {minutes(seconds)} | {GOALS[name]} | {what} | {confirmation} |")
    lines = [
        f"Command: `python bench/sweep_wall_time.py{' --quick' if args.quick else ''}` "
        "(each sweep in a fresh process and output folder, timed from start to exit)",
        "",
        "| command | wall time | goal | what it ran | the confirmation, per dataset |",
        "|---|---|---|---|---|",
        *rows,
    ]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

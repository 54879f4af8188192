"""Warm start: the compute a sweep saves by starting from an earlier sweep's best settings.

On the built-in datasets (``synth_lesions``, ``synth_organs``, side by side), a small sweep is run
once as the earlier sweep (sampler and training seeds 100). Then, for each repeat ``r``, two
sweeps with the same sampler and training seeds (``r``): a **cold** start, and a **warm** start
(``search.warm_start=<the earlier sweep>``, its ``--top-k`` best settings of the same dataset
first, then the anchors). Cold and warm alternate which runs first. The earlier sweep's own compute
is not counted: it is the sweep one already has.

The target of a repeat is its cold sweep's best validation objective (``val/mean_fg_dice`` of the
trial's last epoch, what the report selects on). For each sweep: how many trials, in the order they
ran (one at a time per dataset), and how many trial-epochs (ASHA stops trials early, so they count
fewer) it took until one trial reached the target. The earlier best retrained with another seed
is a new measurement, not a replay: it reaches the target only if that setting is that good.

    python bench/warm_start.py                 # 3 repeats, 8 trials of 6 epochs (about 8 minutes on 2 cores)
    python bench/warm_start.py --quick         # 1 repeat, 4 trials of 2 epochs: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("synth_lesions", "synth_organs")
EARLIER_SEED = 100


def overrides(args: argparse.Namespace, output_dir: Path, seed: int, warm_start: Path | None) -> list[str]:
    """The sweep: the smoke experiment's data and network, ``args.trials`` trials of ``args.epochs``
    epochs, one trial at a time per dataset, both datasets side by side, no confirmation or report."""
    common = [
        "experiment=smoke", f"search.num_samples={args.trials}", f"train.epochs={args.epochs}",
        f"train.iterations_per_epoch={args.iterations}", "search.max_concurrent_trials=1",
        "search.parallel_datasets=2", f"search.n_startup_trials={args.startup}",
        f"search.scheduler.grace_period={args.grace_period}", "confirm.enabled=false", "report.enabled=false",
        "verbose=0", f"search.seed={seed}", f"train.seed={seed}", f"output_dir={output_dir}",
    ]
    if warm_start is not None:
        common += [f"search.warm_start={warm_start}", f"search.warm_start_top_k={args.top_k}"]
    return common


def run_sweep(args: argparse.Namespace, output_dir: Path, seed: int, warm_start: Path | None) -> dict[str, Any]:
    """Run one sweep in this process (Ray started once); per dataset, its trials in the order they
    ran: ``[(objective, epochs)]``, and the sweep's wall time."""
    import optuna

    from asymtune.config import compose
    from asymtune.pipeline import run_tune

    start = time.perf_counter()
    run_tune(compose("tune", overrides(args, output_dir, seed, warm_start)))
    seconds = time.perf_counter() - start
    manifest = json.loads((output_dir / "sweep.json").read_text())
    trials = {}
    for name, entry in manifest["datasets"].items():
        study = optuna.load_study(study_name=entry["study_name"], storage=manifest["optuna_storage"])
        trials[name] = [
            (float(t.value), int(t.user_attrs.get("epochs", 0)))
            for t in sorted(study.trials, key=lambda t: t.number)
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
        ]
    return {"seconds": seconds, "trials": trials,
            "warm_start": {n: e.get("warm_start", {}).get("sentence") for n, e in manifest["datasets"].items()}}


def to_reach(trials: list[tuple[float, int]], target: float) -> tuple[int, int] | None:
    """(trials, trial-epochs) until the first trial whose objective is at least ``target``; None if none."""
    epochs = 0
    for index, (value, trained) in enumerate(trials):
        epochs += trained
        if value >= target - 1e-12:
            return index + 1, epochs
    return None


def median_range(values: list[float], unit: str = "", digits: int = 0) -> str:
    if not values:
        return "n/a"
    middle = statistics.median(values)
    low, high = min(values), max(values)
    return f"{middle:.{digits}f}{unit} [{low:.{digits}f}, {high:.{digits}f}]"


def best_after(trials: list[tuple[float, int]], count: int) -> float:
    """The best objective among the first ``count`` trials."""
    return max(value for value, _ in trials[:count])


def summarise(records: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    rows = []
    for name in DATASETS:
        cold_trials, warm_trials, cold_epochs, warm_epochs, saved = ([] for _ in range(5))
        early: dict[str, list[float]] = {"cold": [], "warm": []}
        final: dict[str, list[float]] = {"cold": [], "warm": []}
        missed = 0
        for record in records:
            cold, warm = record["cold"]["trials"][name], record["warm"]["trials"][name]
            for kind, trials in (("cold", cold), ("warm", warm)):
                early[kind].append(best_after(trials, args.top_k))
                final[kind].append(best_after(trials, len(trials)))
            target = max(value for value, _ in cold)
            reach_cold, reach_warm = to_reach(cold, target), to_reach(warm, target)
            assert reach_cold is not None
            cold_trials.append(reach_cold[0])
            cold_epochs.append(reach_cold[1])
            if reach_warm is None:
                missed += 1
                continue
            warm_trials.append(reach_warm[0])
            warm_epochs.append(reach_warm[1])
            saved.append(1 - reach_warm[1] / reach_cold[1])
        total_cold = sum(e for r in records for _, e in r["cold"]["trials"][name]) / len(records)
        rows.append(
            f"| {name} | {median_range(cold_trials)} | {median_range(warm_trials)} | {median_range(cold_epochs)} | "
            f"{median_range(warm_epochs)} | {median_range([100 * s for s in saved], ' %')} | "
            f"{missed} of {len(records)} | {median_range(early['cold'], digits=3)} | "
            f"{median_range(early['warm'], digits=3)} | {median_range(final['cold'], digits=3)} | "
            f"{median_range(final['warm'], digits=3)} | {total_cold:.0f} |"
        )
    command = "python bench/warm_start.py" + (" --quick" if args.quick else f" --repeats {args.repeats}")
    sources = sorted({s for r in records for s in r["warm"]["warm_start"].values() if s})
    return [
        f"Command: `{command}` ({args.repeats} interleaved repeat{'s' if args.repeats != 1 else ''}; each repeat "
        f"a cold and a warm sweep with the same seeds; {args.trials} trials of {args.epochs} epochs x "
        f"{args.iterations} iterations per dataset, one at a time per dataset, ASHA grace {args.grace_period}, "
        f"{args.startup} startup trials; warm: search.warm_start_top_k={args.top_k} from an earlier sweep with "
        f"seeds {EARLIER_SEED}; median [min, max] over repeats)",
        "",
        "| dataset | cold: trials to its best | warm: trials to the cold's best | cold: trial-epochs | "
        f"warm: trial-epochs | compute saved | warm never reached it | cold: best of first {args.top_k} | "
        f"warm: best of first {args.top_k} | cold: best of all | warm: best of all | cold sweep's trial-epochs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Target: each repeat's cold sweep's best validation objective (val/mean_fg_dice, last epoch). Compute "
        "saved: 1 - warm trial-epochs / cold trial-epochs to reach it, over the repeats where the warm sweep "
        "reached it. Best of first k / of all: the best validation objective among a sweep's first k trials "
        "(the warm sweep's are the earlier best settings, the cold sweep's the baseline and the authors' default) "
        "and among all its trials. The earlier sweep's compute is not counted. "
        + (f"What seeded a warm sweep, as its report says: \"{sources[0]}\"" if sources else ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--grace-period", type=int, default=2)
    parser.add_argument("--startup", type=int, default=4, help="search.n_startup_trials")
    parser.add_argument("--top-k", type=int, default=2, help="search.warm_start_top_k")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 4 trials of 2 epochs, top 1")
    parser.add_argument("--json", type=Path, help="also write every sweep's trials here")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.trials, args.epochs, args.grace_period, args.startup, args.top_k = 1, 4, 2, 1, 2, 1
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="asymtune-warm-start-"))
    try:
        earlier = root / "earlier"
        run_sweep(args, earlier, EARLIER_SEED, None)
        records = []
        for repeat in range(args.repeats):
            order = ("cold", "warm") if repeat % 2 == 0 else ("warm", "cold")
            record: dict[str, Any] = {"seed": repeat}
            for kind in order:
                record[kind] = run_sweep(args, root / f"{kind}{repeat}", repeat, earlier if kind == "warm" else None)
                print(f"[warm_start] repeat {repeat} {kind}: {record[kind]['seconds']:.0f} s", flush=True)
            for kind in order:  # the report's sentence, without this run's scratch folder
                record[kind]["warm_start"] = {name: sentence and sentence.replace(str(earlier), "<earlier sweep>")
                                              for name, sentence in record[kind]["warm_start"].items()}
            records.append(record)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=2, default=lambda v: None if isinstance(v, float)
                                        and not math.isfinite(v) else str(v)))
    return emit(summarise(records, args), args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Orchestration overhead: a sweep of N fixed-work trials against the same trainings in a loop.

Both sides train the same N settings (the baseline, identical work) with the same concurrency
(a process pool of the same size as ``search.max_concurrent_trials``), one thread each, in one
command. The sweep side is ``asymtune tune`` itself (Ray Tune, Optuna, ASHA that never stops a
trial, MLflow, checkpoints and diagnostics every epoch); the ratio is its wall time over the
loop's. Reported twice: the whole command (Ray start-up, checks, MLflow set-up included) and
``Tuner.fit`` alone.

    python bench/orchestration_overhead.py --trials 4 --concurrency 2 --epochs 30
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

FIXED_SPACE = {
    "form": "paper",
    "params": {"margin": {"type": "categorical", "choices": [0.0]}},
    "fixed": {"schedule": "separate"},
}


def train_once(job: dict[str, Any]) -> float:
    """One training run exactly as a trial does it, without Ray; returns its seconds."""
    from asymtune.data.loading import load_dataset
    from asymtune.method import baseline
    from asymtune.train.factory import build_trainer

    start = time.perf_counter()
    dataset = load_dataset({"source": "synth_lesions", "params": {"seed": 0}})
    run = {"model": job["model"], "train": job["train"], "settings": baseline(dataset.num_classes).to_dict()}
    trainer = build_trainer(run, dataset)
    trainer.fit()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides of the sweep side")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    model = {"name": "unet", "base_channels": 8, "depth": 3, "norm": "instance"}
    train = {"epochs": args.epochs, "iterations_per_epoch": 20, "batch_size": 8, "num_threads": 1}

    start = time.perf_counter()
    with ProcessPoolExecutor(args.concurrency) as pool:
        per_trial = list(pool.map(train_once, [{"model": model, "train": train}] * args.trials))
    loop_seconds = time.perf_counter() - start

    import yaml

    from asymtune.cli import compose
    from asymtune.pipeline import run_tune

    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "fixed.yaml"
        space.write_text(yaml.safe_dump(FIXED_SPACE))
        cfg = compose("tune", [
            "data=synth_lesions", f"output_dir={tmp}/out", f"search.space={space}",
            f"search.num_samples={args.trials}", f"search.max_concurrent_trials={args.concurrency}",
            f"search.scheduler.grace_period={args.epochs}", f"train.epochs={args.epochs}",
            f"ray.num_cpus={args.concurrency}", "report.enabled=false", "verbose=0",
            "++confirm.enabled=false",  # the sweep only: no report, no confirmation runs after it
            *args.override,
        ])
        start = time.perf_counter()
        run_tune(cfg)
        sweep_seconds = time.perf_counter() - start
        manifest = json.loads((Path(tmp) / "out" / "sweep.json").read_text())
        fit_seconds = manifest["datasets"]["synth_lesions"]["fit_seconds"]

    lines = [
        f"Command: `python bench/orchestration_overhead.py --trials {args.trials} --concurrency {args.concurrency} "
        f"--epochs {args.epochs}"
        + (" --override " + " ".join(args.override) if args.override else "")
        + f"` ({args.trials} trials of {args.epochs} x 20 iterations, "
        f"{min(per_trial):.1f}-{max(per_trial):.1f} s each in the loop, {args.concurrency} at a time)",
        "",
        "| side | wall s | ratio to the loop |",
        "|---|---|---|",
        f"| plain loop (process pool) | {loop_seconds:.1f} | 1.000 |",
        f"| `asymtune tune`, Tuner.fit only | {fit_seconds:.1f} | {fit_seconds / loop_seconds:.3f} |",
        f"| `asymtune tune`, whole command | {sweep_seconds:.1f} | {sweep_seconds / loop_seconds:.3f} |",
    ]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

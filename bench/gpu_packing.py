"""GPU packing: trial-epochs per minute and peak GPU memory with 1 and with 4 trials per GPU.

Needs a machine with one NVIDIA GPU (and Ray, Optuna, MLflow installed). Runs the same sweep
twice: ``resources.gpu=1`` (one trial at a time) and ``resources.gpu=0.25`` (four trials share the
GPU), fixed work per trial (no early stopping), and writes a Markdown table.

    python bench/gpu_packing.py --trials 8 --epochs 10 --out docs/bench_gpu_packing.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _output import emit  # bench/ is on sys.path when a script runs

FIXED_SPACE = {"form": "paper", "params": {"margin": {"type": "categorical", "choices": [0.0]}}}


def run(per_gpu: int, trials: int, epochs: int, tmp: Path) -> dict[str, float]:
    from asymtune.cli import compose
    from asymtune.pipeline import run_tune

    space = tmp / "fixed.yaml"
    space.write_text(yaml.safe_dump(FIXED_SPACE))
    out = tmp / f"out_{per_gpu}"
    cfg = compose("tune", [
        "data=synth_lesions", f"output_dir={out}", f"search.space={space}", f"search.num_samples={trials}",
        f"search.max_concurrent_trials={per_gpu}", f"search.scheduler.grace_period={epochs}",
        f"train.epochs={epochs}", f"resources.gpu={1 / per_gpu}", "resources.cpu=1", "report.enabled=false",
        "verbose=0", "model.base_channels=16",
    ])
    start = time.perf_counter()
    run_tune(cfg)
    seconds = time.perf_counter() - start
    peak = 0.0
    for result in (out / "ray_results" / "synth_lesions").glob("trial_*/result.json"):
        for line in result.read_text().splitlines():
            peak = max(peak, json.loads(line).get("sys/gpu_peak_mb", 0.0))
    return {"seconds": seconds, "trial_epochs_per_min": trials * epochs / seconds * 60, "peak_mb": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no GPU visible: this benchmark needs one", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = {n: run(n, args.trials, args.epochs, Path(tmp)) for n in (1, 4)}
    lines = [
        f"Command: `python bench/gpu_packing.py --trials {args.trials} --epochs {args.epochs}` "
        f"on {torch.cuda.get_device_name(0)}",
        "",
        "| trials per GPU | wall s | trial-epochs / min | peak GPU memory per trial (MiB) | throughput vs 1 per GPU |",
        "|---|---|---|---|---|",
    ]
    for n, r in results.items():
        ratio = r["trial_epochs_per_min"] / results[1]["trial_epochs_per_min"]
        lines.append(
            f"| {n} | {r['seconds']:.1f} | {r['trial_epochs_per_min']:.1f} | {r['peak_mb']:.0f} | {ratio:.2f} |"
        )
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

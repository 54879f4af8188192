"""Real data at real scale: a trial's training throughput with the data pipeline, and the memory
of concurrent trials that share a prepared dataset (issue 4, acceptance 4).

Dataset: the built-in brain atlas set (``asymtune data prepare brain_atlas``), prepared once into
memory-mapped arrays, read exactly as a trial reads it (``asymtune.data.loading.load_dataset``).

Throughput, one process, alternating rounds: the same Trainer steps (same seed, model, loss,
optimiser) fed (a) by the real pipeline (patch sampling from the memory-mapped cases with
foreground oversampling, as in a trial) and (b) from batches sampled beforehand and held as
tensors in memory. Ratio = pipeline images/s / in-memory images/s, per round; median reported.

Memory: separate processes (as Ray runs trials), each loading the dataset through
``load_dataset`` and training with ``Trainer.fit``; one trial alone, then two at once. A monitor
samples each process's proportional set size (PSS, so pages the processes share count once in
the sum) every 20 ms and reports the peak of the sum over the trial processes: (a) of the whole
processes; (b) of what a trial adds to a worker that has imported the code (PSS minus the
process's own PSS right before it loads the data); (c) of the dataset's memory-mapped files.
Last, what importing MONAI adds to a fresh process, plainly and the way asymtune imports it.

    python bench/data_pipeline.py --out docs/bench_data_pipeline.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _memory import pss_kb  # bench/ is on sys.path when a script runs
from _output import emit

from asymtune.data.loading import load_dataset
from asymtune.method.settings import AsymmetrySettings
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import Trainer

MODEL = {"name": "unet", "base_channels": 8, "depth": 3}
# (name, dataset params, train options): 2-D coronal slices as `experiment=brain_atlas`, and 3-D patches
SETUPS = [
    ("2-D slices, 48x48 patches, batch 8", {"slice_axis": 1}, {"patch_size": [48, 48], "batch_size": 8}),
    ("3-D patches 32^3, batch 2", {}, {"patch_size": [32, 32, 32], "batch_size": 2}),
]


def _settings(num_classes: int) -> AsymmetrySettings:
    """The authors' default form: margin and focal on the small classes, no mixup (steps comparable)."""
    rare = tuple(c > 0 for c in range(num_classes))
    return AsymmetrySettings(margin=tuple(1.0 * r for r in rare), gamma=tuple(4.0 * r for r in rare), rare=rare)


def _trainer(spec: dict[str, Any], train: dict[str, Any], epochs: int = 1, iterations: int = 10) -> Trainer:
    dataset = load_dataset(spec, "brain_atlas")
    run = {
        "model": MODEL,
        "train": {"epochs": epochs, "iterations_per_epoch": iterations, **train},
        "settings": _settings(dataset.num_classes).to_dict(),
    }
    return build_trainer(run, dataset)


def throughput(spec: dict[str, Any], train: dict[str, Any], rounds: int, steps: int) -> dict[str, float]:
    """Median images/s of the pipeline and of in-memory batches, and the median per-round ratio."""
    pipeline, memory = _trainer(spec, train), _trainer(spec, train)
    batches = [memory._sample_batch() for _ in range(steps)]  # sampled once, held as tensors
    sums = {"clean": 0.0, "adversarial": 0.0, "mixup": 0.0}
    for trainer in (pipeline, memory):  # warm-up
        trainer._iteration(*batches[0], sums)
    pipe_rates, memory_rates = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            pipeline._iteration(*pipeline._sample_batch(), sums)
        pipe_rates.append(steps * train["batch_size"] / (time.perf_counter() - start))
        start = time.perf_counter()
        for images, labels in batches:
            memory._iteration(images, labels, sums)
        memory_rates.append(steps * train["batch_size"] / (time.perf_counter() - start))
    ratios = [p / m for p, m in zip(pipe_rates, memory_rates)]
    return {
        "pipeline": statistics.median(pipe_rates), "memory": statistics.median(memory_rates),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
    }


def _trial(spec: dict[str, Any], train: dict[str, Any], ready: Any, go: Any, baseline: Any) -> None:
    torch.set_num_threads(1)
    baseline.value = pss_kb(mp.current_process().pid)
    ready.set()
    go.wait()
    _trainer(spec, train, epochs=2, iterations=20).fit()


def memory(spec: dict[str, Any], train: dict[str, Any], trials: int, cache: str) -> dict[str, float]:
    """Peak summed PSS (MB) of ``trials`` concurrent trial processes: whole, added by the trial, data files."""
    context = mp.get_context("spawn")
    go = context.Event()
    readies = [context.Event() for _ in range(trials)]
    baselines = [context.Value("q", 0) for _ in range(trials)]
    processes = [
        context.Process(target=_trial, args=(spec, train, readies[i], go, baselines[i])) for i in range(trials)
    ]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait(120)
    go.set()
    peak = {"whole": 0, "added": 0, "data": 0}
    while any(process.is_alive() for process in processes):
        try:
            whole = [pss_kb(p.pid) for p in processes if p.is_alive()]
            data = sum(pss_kb(p.pid, cache) for p in processes if p.is_alive())
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        if len(whole) == trials:
            peak["whole"] = max(peak["whole"], sum(whole))
            peak["added"] = max(peak["added"], sum(w - b.value for w, b in zip(whole, baselines)))
            peak["data"] = max(peak["data"], data)
        time.sleep(0.02)
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a trial process exited with {process.exitcode}")
    return {key: value / 1024 for key, value in peak.items()}


MONAI_PROBE = """
import sys
def private_mb():
    with open("/proc/self/smaps_rollup") as stream:
        return sum(int(line.split()[1]) for line in stream
                   if line.startswith(("Private_Clean", "Private_Dirty"))) / 1024
import torch, asymtune.train.trainer
before = private_mb()
if sys.argv[1] == "plain":
    import monai.inferers, monai.metrics
else:
    from asymtune.monai_import import monai_module
    monai_module("monai.inferers"), monai_module("monai.metrics")
print(before, private_mb())
"""


def monai_import_cost() -> dict[str, tuple[float, float]]:
    """Private memory (MB) of a fresh process before and after importing MONAI's inferers and metrics:
    ``plain`` (``import monai.inferers``) and ``asymtune`` (:func:`asymtune.monai_import.monai_module`)."""
    import subprocess

    cost = {}
    for way in ("plain", "asymtune"):
        done = subprocess.run([sys.executable, "-c", MONAI_PROBE, way], capture_output=True, text=True, check=True)
        before, after = (float(value) for value in done.stdout.split())
        cost[way] = (before, after)
    return cost


def _dataset(root: str | None, work: Path) -> str:
    if root:
        return root
    from asymtune.data.builtin_real import prepare_builtin

    return str(prepare_builtin("brain_atlas", work))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="a prepared brain_atlas folder (default: prepare one in a temporary folder)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round and variant")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 4 steps (a check that it runs)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rounds, steps = (3, 4) if args.quick else (args.rounds, args.steps)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        cache = str(Path(work) / "cache")
        root = _dataset(args.root, Path(work))
        lines = [
            f"Command: `python bench/data_pipeline.py{' --quick' if args.quick else ''}"
            f"{'' if args.quick or (rounds, steps) == (7, 10) else f' --rounds {rounds} --steps {steps}'}` "
            f"(brain atlas set, U-Net of {MODEL['base_channels']} channels and depth {MODEL['depth']}, "
            f"1 thread per trial, {rounds} rounds of {steps} steps)",
            "",
            "| setup | pipeline img/s | in-memory img/s | ratio (median, min-max over rounds) |",
            "|---|---|---|---|",
        ]
        for name, params, train in SETUPS:
            spec = {"source": "nnunet", "params": {"root": root, "cache_dir": cache, **params}}
            t = throughput(spec, train, rounds, steps)
            lines.append(
                f"| {name} | {t['pipeline']:.1f} | {t['memory']:.1f} | "
                f"**{t['ratio']:.3f}** ({t['ratio_min']:.3f}-{t['ratio_max']:.3f}) |"
            )
        lines += ["", "| setup | trials | peak PSS, whole processes (MB) | added by the trials (MB) "
                      "| dataset files (MB) |",
                  "|---|---|---|---|---|"]
        ratios = {}
        for name, params, train in SETUPS[:1]:
            spec = {"source": "nnunet", "params": {"root": root, "cache_dir": cache, **params}}
            results = {n: memory(spec, train, n, cache) for n in (1, 2)}
            for n, peak in results.items():
                lines.append(f"| {name} | {n} | {peak['whole']:.0f} | {peak['added']:.0f} | {peak['data']:.1f} |")
            ratios = {key: results[2][key] / max(results[1][key], 1e-9) for key in results[1]}
        lines += ["", "Two trials against one: "
                  + ", ".join(f"{key} **{value:.2f}x**" for key, value in ratios.items()) + "."]
        lines += ["", "| MONAI imported (fresh process, after `import torch, asymtune.train.trainer`) "
                      "| private MB before | after | added |",
                  "|---|---|---|---|"]
        for way, (before, after) in monai_import_cost().items():
            label = (
                "`import monai.inferers, monai.metrics`" if way == "plain" else "`asymtune.monai_import.monai_module`"
            )
            lines.append(f"| {label} | {before:.0f} | {after:.0f} | {after - before:.0f} |")
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

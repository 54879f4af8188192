"""Reproduction study: each asymmetric technique, its symmetric counterpart and a tuned setting.

On each built-in dataset, at two training-set sizes (``n_train`` of the generator: the paper's
"fraction of the training data"), over several training seeds: the baseline (CE + soft Dice), each
single asymmetric technique at the authors' default strength, its symmetric counterpart
(method.md section 2), and a tuned setting read from an exported config (``asymtune tune`` writes
them to ``<output_dir>/configs/<dataset>.yaml``). Per foreground class: test Dice, sensitivity,
precision, and the logit shift (median boundary distance on the training split minus on the test
split, method.md section 4).

Augmentation needs samples without a rare class for its asymmetry to act (every whole image of the
built-in sets holds one), so the two augmentation settings train on 32 x 32 patches, with their own
baseline on the same patches (``baseline_patches``); every other setting trains on whole images.

    python bench/reproduction.py --estimate                  # time one epoch of each setting, print the total
    python bench/reproduction.py                             # the full study (both datasets, n_train 4 and 16, 3 seeds)
    python bench/reproduction.py --datasets synth_lesions --json outputs/bench/reproduction.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("synth_lesions", "synth_organs")
PATCH = [32, 32]


def _settings_table() -> dict[str, tuple[str, Callable[[int, list[bool]], dict[str, Any]], dict[str, Any]]]:
    """name -> (what it is, settings from (num_classes, rare flags), train options it adds)."""
    from asymtune.train.settings import baseline, from_paper_form

    def paper(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:
        return lambda c, rare: from_paper_form(c, rare, **options).to_dict()

    def every_class(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:  # r = all ones
        return lambda c, rare: from_paper_form(c, [True] * c, **options).to_dict()

    def no_class(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:  # r = all zeros
        return lambda c, rare: from_paper_form(c, [False] * c, **options).to_dict()

    augment = {"augment": True, "patch_size": PATCH}
    return {
        "baseline": ("CE + soft Dice", lambda c, rare: baseline(c).to_dict(), {}),
        "asym_margin": ("margin 1 on the rare classes", paper(margin=1.0), {}),
        "sym_margin": ("margin 1 on every class", every_class(margin=1.0), {}),
        "asym_focal": ("focal gamma 4 on the frequent classes", paper(gamma=4.0), {}),
        "sym_focal": ("focal gamma 4 on every class", no_class(gamma=4.0), {}),
        "asym_mixup": ("mixup alpha 0.2, margin 0.2, asymmetric labels", paper(mixup_alpha=0.2, mixup_margin=0.2), {}),
        "sym_mixup": ("mixup alpha 0.2, soft labels", paper(mixup_alpha=0.2, mixup_symmetric=True), {}),
        "asym_adversarial": ("adversarial eps 10, direction from rare voxels", paper(adv_eps=10.0), {}),
        "sym_adversarial": ("adversarial eps 10, direction from all voxels", every_class(adv_eps=10.0), {}),
        "baseline_patches": ("CE + soft Dice on 32x32 patches", lambda c, rare: baseline(c).to_dict(),
                             {"patch_size": PATCH}),
        "asym_augmentation": ("augmentation, p_bg 0 (patches)", paper(aug_p_bg=0.0), augment),
        "sym_augmentation": ("augmentation of every patch, p_bg 1", lambda c, rare: baseline(c).to_dict(), augment),
    }


SETTINGS = (  # the names of _settings_table, in its order
    "baseline", "asym_margin", "sym_margin", "asym_focal", "sym_focal", "asym_mixup", "sym_mixup",
    "asym_adversarial", "sym_adversarial", "baseline_patches", "asym_augmentation", "sym_augmentation",
)
# Relative cost of a setting (optimiser steps and forward passes per iteration), for packing the jobs.
COST = {"asym_mixup": 2.0, "sym_mixup": 2.0, "asym_adversarial": 2.7, "sym_adversarial": 2.7}


def tuned_settings(path: Path) -> dict[str, Any]:
    """The ``settings`` of an exported config (``asymtune tune``'s ``configs/<dataset>.yaml``)."""
    import yaml

    exported = yaml.safe_load(path.read_text())
    if not isinstance(exported, dict) or "settings" not in exported:
        raise ValueError(f"{path}: expected an exported config with a 'settings' block (asymtune tune's configs/)")
    return dict(exported["settings"])


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (dataset, n_train, setting, seed) and measure it on the test split."""
    from asymtune.data.loading import load_dataset
    from asymtune.train.config import TrainConfig
    from asymtune.train.diagnostics import shift_metrics, split_distances
    from asymtune.train.settings import AsymmetrySettings
    from asymtune.train.trainer import Trainer

    dataset = load_dataset({"source": job["dataset"], "params": {"seed": 0, "n_train": job["n_train"]}})
    rare = [i in dataset.rare_classes for i in range(dataset.num_classes)]
    if job["setting"] == "tuned":
        settings = AsymmetrySettings.from_dict(job["tuned"])
        extra: dict[str, Any] = {}
    else:
        _, make, extra = _settings_table()[job["setting"]]
        settings = AsymmetrySettings.from_dict(make(dataset.num_classes, rare))
    train = TrainConfig(**{**job["train"], **extra, "seed": job["seed"], "device": "cpu"})
    trainer = Trainer(dataset, job["model"], settings, train)
    start = time.perf_counter()
    if job.get("epochs_override") is None:
        trainer.fit()
    else:  # --estimate: a few epochs, no evaluation
        for _ in range(job["epochs_override"]):
            trainer.train_epoch()
    seconds = time.perf_counter() - start
    result = {key: value for key, value in job.items() if key != "tuned"}
    if job["setting"] == "tuned":
        result["tuned_settings"] = job["tuned"]
    result["seconds"] = seconds
    if job.get("epochs_override") is not None:
        return result
    result.update(trainer.evaluate(dataset.test, "test"))
    result.update(shift_metrics(split_distances(trainer, dataset.train), split_distances(trainer, dataset.test), "shift"))
    return result


def _same_job(result: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether a stored result is the training ``job`` describes (tuned settings included)."""
    keys = ("dataset", "n_train", "setting", "seed", "model", "train")
    same = all(result.get(key) == job.get(key) for key in keys)
    return same and (job["setting"] != "tuned" or result.get("tuned_settings") == job.get("tuned"))


def estimate(args: argparse.Namespace, jobs: list[dict[str, Any]]) -> int:
    """Time one epoch of each setting (first dataset, in this process) and extrapolate."""
    per_epoch = {}
    for setting in dict.fromkeys(job["setting"] for job in jobs):
        job = next(j for j in jobs if j["setting"] == setting)
        timed = run_one({**job, "epochs_override": 1})
        per_epoch[setting] = timed["seconds"]
        print(f"{setting:20s} {timed['seconds']:.2f} s per epoch", file=sys.stderr)
    total = sum(per_epoch[job["setting"]] * args.epochs * 1.15 for job in jobs)  # +15%: validation every epoch
    print(f"{len(jobs)} trainings, about {total / 60:.0f} CPU-minutes, {total / 60 / args.workers:.0f} minutes "
          f"with {args.workers} workers on an otherwise idle machine")
    return 0


def _mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def tables(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> list[str]:
    from asymtune.data.loading import load_dataset

    lines = [
        f"Command: `{command}` (U-Net {args.base_channels} channels, depth 3, Adam 2e-3, {args.epochs} epochs x "
        f"{args.iterations} iterations of 8 images; mean ± standard deviation over training seeds "
        f"{', '.join(map(str, args.seeds))}; 16 validation and 32 test images)",
    ]
    for dataset_name in args.datasets:
        dataset = load_dataset({"source": dataset_name, "params": {"seed": 0}})
        names = dataset.class_names[1:]
        rare = {dataset.class_names[i] for i in dataset.rare_classes}
        settings = [s for s in args.settings if any(r["dataset"] == dataset_name and r["setting"] == s for r in results)]
        lines += ["", f"### {dataset_name}: rare-class test Dice by training-set size", "",
                  "| setting | " + " | ".join(f"{c}, n_train={n}" for c in names if c in rare for n in args.n_train) + " |",
                  "|---|" + "---|" * sum(1 for c in names if c in rare for _ in args.n_train)]
        for setting in settings:
            cells = []
            for cls in (c for c in names if c in rare):
                for n in args.n_train:
                    rows = [r for r in results if r["dataset"] == dataset_name and r["setting"] == setting and r["n_train"] == n]
                    base = [r for r in results if r["dataset"] == dataset_name and r["setting"] == "baseline" and r["n_train"] == n]
                    if not rows:
                        cells.append("-")
                        continue
                    mean = statistics.mean(r[f"test/dice/{cls}"] for r in rows)
                    delta = mean - statistics.mean(r[f"test/dice/{cls}"] for r in base) if base and setting != "baseline" else None
                    cells.append(_mean_sd([r[f"test/dice/{cls}"] for r in rows]) + (f" ({delta:+.3f})" if delta is not None else ""))
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
        for n in args.n_train:
            lines += ["", f"### {dataset_name}, n_train={n}: per class", "",
                      "| class | setting | test Dice | test sensitivity | test precision | median s train | "
                      "median s test | shift (train - test) |",
                      "|---|---|---|---|---|---|---|---|"]
            for cls in names:
                for setting in settings:
                    rows = [r for r in results if r["dataset"] == dataset_name and r["setting"] == setting and r["n_train"] == n]
                    if not rows:
                        continue
                    cells = [_mean_sd([r[key] for r in rows]) for key in (
                        f"test/dice/{cls}", f"test/sensitivity/{cls}", f"test/precision/{cls}",
                        f"shift/median_train/{cls}", f"shift/median_val/{cls}", f"shift/shift/{cls}")]
                    lines.append(f"| {cls} | {setting} | " + " | ".join(cells) + " |")
    return lines


def plot(results: list[dict[str, Any]], args: argparse.Namespace, folder: Path) -> list[Path]:
    """Per dataset: test Dice and logit shift of each foreground class per setting, both sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asymtune.data.loading import load_dataset

    paths = []
    for dataset_name in args.datasets:
        names = load_dataset({"source": dataset_name, "params": {"seed": 0}}).class_names[1:]
        settings = [s for s in args.settings if any(r["dataset"] == dataset_name and r["setting"] == s for r in results)]
        figure, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7), squeeze=False)
        width = 0.8 / len(args.n_train)
        for column, cls in enumerate(names):
            for row, (key, label) in enumerate(((f"test/dice/{cls}", "test Dice"), (f"shift/shift/{cls}", "shift (train - test)"))):
                axis = axes[row][column]
                for k, n in enumerate(args.n_train):
                    means, sds = [], []
                    for setting in settings:
                        values = [r[key] for r in results if r["dataset"] == dataset_name and r["setting"] == setting and r["n_train"] == n]
                        means.append(statistics.mean(values) if values else float("nan"))
                        sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
                    axis.bar([i + k * width for i in range(len(settings))], means, width, yerr=sds, label=f"n_train={n}", capsize=2)
                axis.set_xticks([i + width * (len(args.n_train) - 1) / 2 for i in range(len(settings))])
                axis.set_xticklabels(settings, rotation=60, ha="right", fontsize=7)
                axis.set_title(f"{cls}: {label}", fontsize=9)
                axis.axhline(0, color="black", linewidth=0.5)
        axes[0][0].legend(fontsize=7)
        figure.suptitle(f"{dataset_name}: mean over seeds {', '.join(map(str, args.seeds))} (bars: standard deviation)", fontsize=9)
        figure.tight_layout()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"reproduction_{dataset_name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--n-train", type=int, nargs="+", default=[4, 16], help="training images (the fractions)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=[*SETTINGS, "tuned"], choices=[*SETTINGS, "tuned"])
    parser.add_argument("--tuned", nargs="*", default=[], metavar="DATASET=PATH",
                        help="exported config per dataset (default bench/tuned/<dataset>.yaml)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--estimate", action="store_true", help="time one epoch of each setting and print the total")
    parser.add_argument("--quick", action="store_true", help="synth_lesions, 2 settings, 1 seed, 2 epochs: checks that it runs")
    parser.add_argument("--json", type=Path, help="write every training's metrics here, after each one")
    parser.add_argument("--resume", action="store_true", help="take the trainings already in --json (an interrupted "
                        "run with the same options) instead of training them again")
    parser.add_argument("--figure-dir", type=Path, help="write one PNG per dataset here")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.settings, args.seeds = ["synth_lesions"], ["baseline", "asym_focal", "tuned"], [0]
        args.epochs, args.iterations, args.n_train = 2, 3, [4, 16]
    tuned_paths = {name: ROOT / "bench" / "tuned" / f"{name}.yaml" for name in args.datasets}
    for entry in args.tuned:
        name, _, path = entry.partition("=")
        if name not in DATASETS or not path:
            parser.error(f"--tuned {entry!r}: expected DATASET=PATH with DATASET one of {DATASETS}")
        tuned_paths[name] = Path(path)
    tuned = {name: tuned_settings(path) for name, path in tuned_paths.items() if name in args.datasets and path.is_file()}
    jobs = [
        {
            "dataset": dataset, "n_train": n, "setting": setting, "seed": seed, "tuned": tuned.get(dataset),
            "model": {"name": "unet", "base_channels": args.base_channels, "depth": 3},
            "train": {"epochs": args.epochs, "iterations_per_epoch": args.iterations, "batch_size": 8},
        }
        for dataset in args.datasets for n in args.n_train for seed in args.seeds for setting in args.settings
        if setting != "tuned" or dataset in tuned
    ]
    if args.estimate:
        return estimate(args, jobs)
    jobs.sort(key=lambda job: -COST.get(job["setting"], 1.0))  # long ones first: the pool ends together
    start = time.perf_counter()
    # --json is written after every training; with --resume, a rerun takes the trainings it finds there.
    stored = json.loads(args.json.read_text()) if args.resume and args.json and args.json.is_file() else []
    results = [r for r in stored if any(_same_job(r, job) for job in jobs)]
    todo = [job for job in jobs if not any(_same_job(r, job) for r in results)]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(run_one, job) for job in todo]
        for done, future in enumerate(as_completed(futures), 1):
            result = future.result()
            results.append(result)
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(stored + [r for r in results if r not in stored], indent=1))
            print(f"[reproduction] {done}/{len(todo)} {result['dataset']} n_train={result['n_train']} "
                  f"{result['setting']} seed {result['seed']}: {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(f"{len(todo)} trainings in {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    command = "python bench/reproduction.py" + (" --quick" if args.quick else (
        f" --datasets {' '.join(args.datasets)} --n-train {' '.join(map(str, args.n_train))} "
        f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs}"
        + (f" --settings {' '.join(args.settings)}" if args.settings != [*SETTINGS, "tuned"] else "")
    ))
    lines = tables(results, args, command)
    missing = [name for name in args.datasets if name not in tuned and "tuned" in args.settings]
    if missing:
        lines += ["", f"No tuned setting for {', '.join(missing)}: no exported config at "
                      f"{', '.join(str(tuned_paths[n]) for n in missing)}."]
    for name in args.datasets:
        if name in tuned:
            lines += ["", f"`tuned` on {name}: the settings of `{tuned_paths[name].relative_to(ROOT) if tuned_paths[name].is_relative_to(ROOT) else tuned_paths[name]}`: "
                          f"{json.dumps(tuned[name])}"]
    if args.figure_dir:
        for path in plot(results, args, args.figure_dir):
            lines += ["", f"![{path.stem}](figures/{path.name})"]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Reproduction study: each asymmetric technique, its symmetric counterpart and a tuned setting.

On each built-in dataset, at two training-set sizes, over several training seeds: the baseline (CE
+ soft Dice), each single asymmetric technique at the authors' default strength, its symmetric
counterpart (method.md section 2), and a tuned setting read from an exported config (``asymtune
tune`` writes them to ``<output_dir>/configs/<dataset>.yaml``). Per foreground class: test Dice,
sensitivity, precision, and the logit shift (median boundary distance on the training split minus
on the test split, method.md section 4): mean ± standard deviation over the seeds, and, for the test
Dice of every setting but ``baseline``, the paired difference to ``baseline`` (the setting minus
``baseline`` trained with the same seed, over the seeds both have; the augmentation settings minus
``baseline_patches`` where it was trained) with its 95% Student-t interval
over the seeds (asymtune.confirm.stats.paired_difference), in bold where the interval excludes 0
(with one seed, as with --quick, the difference has no interval).

``--json FILE`` writes the per-seed records (one object per training: its job and every measured
value), after each training; ``--render-only --json FILE`` with the options of the run that wrote
them trains nothing and prints the same block from the records alone (and the figures with
--figure-dir), so any table or interval can be recomputed from a committed records file.

Training-set size (the paper's "fraction of the training data"): ``n_train`` of the generator on
the synthetic sets (``--n-train``); ``data.train_fraction`` on the real ones (``--train-fractions``,
nested subsets of the training cases, asymtune.data.splits). The real sets are read as a sweep
reads them (``source: nnunet`` with the folder under data/, prepared on first use) and trained as
their sweep trains (brain_atlas: conf/experiment/brain_atlas.yaml, a 2-D U-Net on 48 x 48 windows
of coronal slices; nuclei: 32 x 32 patches of the 128 x 128 tiles, ``train.patch_size=[32,32]``,
since whole tiles cost ten times as much per step); both are tested on whole held-out cases by
sliding window. Their rare classes are the dataset's own (foreground classes under 2% of the
training voxels), decided once on the full training split and kept at every fraction, so that
each asymmetric setting is the same at both sizes (at fraction 0.5 brain_atlas's hippocampus is
just over 2% and would otherwise stop being rare).

Augmentation needs samples without a rare class for its asymmetry to act. Every whole image of the
synthetic sets holds one, so there the two augmentation settings train on 32 x 32 patches, with
their own baseline on the same patches (``baseline_patches``); every other setting trains on whole
images. The real sets train on samples that often lack the rare classes already (two in five
coronal slices of brain_atlas hold neither hippocampus nor amygdala; about a fifth of the
uniformly drawn 32 x 32 nuclei patches hold no boundary pixel, fewer of those centred on
foreground), so there augmentation trains on the same samples as every other setting,
``baseline`` is its reference, and there is no ``baseline_patches``.

    python bench/reproduction.py --estimate                  # time one epoch of each setting, print the total
    python bench/reproduction.py                             # the synthetic sets, n_train 4 and 16, 3 seeds
    python bench/reproduction.py --datasets synth_lesions --json outputs/bench/reproduction.json
    python bench/reproduction.py --datasets brain_atlas nuclei --json outputs/bench/reproduction_real.json
    python bench/reproduction.py --json docs/data/reproduction.json --render-only   # the default run's block, again
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _output import emit  # bench/ is on sys.path when a script runs

if TYPE_CHECKING:
    from asymtune.confirm.stats import Summary
    from asymtune.data.base import SegmentationDataset

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("synth_lesions", "synth_organs")
PATCH = [32, 32]


@dataclass(frozen=True)
class RealDataset:
    """A built-in real dataset (``asymtune data prepare NAME``) as a sweep trains on it.

    Attributes:
        folder: the prepared folder under data/ (nnU-Net v2 raw layout).
        params: dataset parameters besides the split (``data.params``).
        train: train options the sweep sets for it (``train.*``), on top of the study's.
        augment_patch: the patch the augmentation settings train on, with ``baseline_patches`` as
            their reference; None: they train on the same samples as every other setting.
        samples: what one training sample is, for the tables.
    """

    folder: str
    params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    augment_patch: list[int] | None = None
    samples: str = "whole images"


REAL = {
    "brain_atlas": RealDataset(  # conf/experiment/brain_atlas.yaml
        "Dataset901_BrainAtlas", {"slice_axis": 1}, {"patch_size": [48, 48]}, None, "48 x 48 windows of coronal slices",
    ),
    "nuclei": RealDataset(
        "Dataset902_Nuclei", {}, {"patch_size": [32, 32]}, None, "32 x 32 patches of the 128 x 128 tiles",
    ),
}
ALL_DATASETS = (*DATASETS, *REAL)


def _settings_table(
    patch: list[int] | None = PATCH,
) -> dict[str, tuple[str, Callable[[int, list[bool]], dict[str, Any]], dict[str, Any]]]:
    """name -> (what it is, settings from (num_classes, rare flags), train options it adds).

    ``patch``: the patch the augmentation settings and ``baseline_patches`` train on; None: the
    augmentation settings train on the samples every setting uses (no ``baseline_patches``).
    """
    from asymtune.method.settings import baseline, from_paper_form

    def paper(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:
        return lambda c, rare: from_paper_form(c, rare, **options).to_dict()

    def every_class(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:  # r = all ones
        return lambda c, rare: from_paper_form(c, [True] * c, **options).to_dict()

    def no_class(**options: Any) -> Callable[[int, list[bool]], dict[str, Any]]:  # r = all zeros
        return lambda c, rare: from_paper_form(c, [False] * c, **options).to_dict()

    augment: dict[str, Any] = {"augment": True} if patch is None else {"augment": True, "patch_size": patch}
    where = "" if patch is None else " (patches)"
    table = {
        "baseline": ("CE + soft Dice", lambda c, rare: baseline(c).to_dict(), {}),
        "asym_margin": ("margin 1 on the rare classes", paper(margin=1.0), {}),
        "sym_margin": ("margin 1 on every class", every_class(margin=1.0), {}),
        "asym_focal": ("focal gamma 4 on the frequent classes", paper(gamma=4.0), {}),
        "sym_focal": ("focal gamma 4 on every class", no_class(gamma=4.0), {}),
        "asym_mixup": ("mixup alpha 0.2, margin 0.2, asymmetric labels", paper(mixup_alpha=0.2, mixup_margin=0.2), {}),
        "sym_mixup": ("mixup alpha 0.2, soft labels", paper(mixup_alpha=0.2, mixup_symmetric=True), {}),
        "asym_adversarial": ("adversarial eps 10, direction from rare voxels", paper(adv_eps=10.0), {}),
        "sym_adversarial": ("adversarial eps 10, direction from all voxels", every_class(adv_eps=10.0), {}),
        "baseline_patches": (f"CE + soft Dice on {'x'.join(map(str, patch or []))} patches",
                             lambda c, rare: baseline(c).to_dict(), {"patch_size": patch}),
        "asym_augmentation": (f"augmentation, p_bg 0{where}", paper(aug_p_bg=0.0), augment),
        "sym_augmentation": (f"augmentation of every sample, p_bg 1{where}", lambda c, rare: baseline(c).to_dict(),
                             augment),
    }
    if patch is None:
        del table["baseline_patches"]
    return table


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


def _real_spec(name: str, train_fraction: float, rare_classes: list[str] | None = None) -> dict[str, Any]:
    """The ``data`` entry of a real dataset, as a sweep's (root relative to the repository)."""
    params = {**REAL[name].params, "seed": 0, "train_fraction": train_fraction}
    if rare_classes is not None:
        params["rare_classes"] = rare_classes
    return {"source": "nnunet", "params": {"root": f"data/{REAL[name].folder}", **params}}


def load_job_dataset(job: dict[str, Any]) -> SegmentationDataset:
    """The dataset of a job: the generator at ``n_train``, or a real set at ``data`` (its fraction)."""
    from asymtune.data.loading import load_dataset

    if "data" not in job:
        return load_dataset({"source": job["dataset"], "params": {"seed": 0, "n_train": job["n_train"]}})
    params = dict(job["data"]["params"])
    folder = ROOT / params.pop("root")
    if not folder.is_dir():  # `asymtune data prepare NAME`, a few seconds
        from asymtune.data.builtin_real import prepare_builtin

        prepare_builtin(job["dataset"], folder.parent)
    return load_dataset({"source": job["data"]["source"], "params": {"root": str(folder), **params}})


def rare_class_names(name: str) -> list[str]:
    """The rare classes of a real dataset: its default rule applied to the full training split."""
    dataset = load_job_dataset({"dataset": name, "data": _real_spec(name, 1.0)})
    return [dataset.class_names[i] for i in dataset.rare_classes]


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (dataset, training-set size, setting, seed) and measure it on the test split."""
    from asymtune.train.diagnostics import shift_metrics, split_distances
    from asymtune.train.factory import build_trainer

    dataset = load_job_dataset(job)
    rare = [i in dataset.rare_classes for i in range(dataset.num_classes)]
    if job["setting"] == "tuned":
        settings = dict(job["tuned"])
        extra: dict[str, Any] = {}
    else:
        patch = REAL[job["dataset"]].augment_patch if job["dataset"] in REAL else PATCH
        _, make, extra = _settings_table(patch)[job["setting"]]
        settings = make(dataset.num_classes, rare)
    run = {
        "model": job["model"],
        "train": {**job["train"], **extra, "seed": job["seed"], "device": "cpu"},
        "settings": settings,
    }
    trainer = build_trainer(run, dataset)
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
    result.update(
        shift_metrics(split_distances(trainer, dataset.train), split_distances(trainer, dataset.test), "shift")
    )
    return result


def _same_job(result: dict[str, Any], job: dict[str, Any]) -> bool:
    """Whether a stored result is the training ``job`` describes (tuned settings included)."""
    keys = ("dataset", "n_train", "train_fraction", "data", "setting", "seed", "model", "train")
    same = all(result.get(key) == job.get(key) for key in keys)
    return same and (job["setting"] != "tuned" or result.get("tuned_settings") == job.get("tuned"))


def estimate(args: argparse.Namespace, jobs: list[dict[str, Any]]) -> int:
    """Time one epoch of each (dataset, setting) (in this process, largest size) and extrapolate."""
    per_epoch = {}
    for key in dict.fromkeys((job["dataset"], job["setting"]) for job in jobs):
        job = [j for j in jobs if (j["dataset"], j["setting"]) == key][-1]
        timed = run_one({**job, "epochs_override": 1})
        per_epoch[key] = timed["seconds"]
        print(f"{key[0]:14s} {key[1]:20s} {timed['seconds']:.2f} s per epoch", file=sys.stderr)
    for name in dict.fromkeys(job["dataset"] for job in jobs):
        mine = [job for job in jobs if job["dataset"] == name]
        seconds = sum(per_epoch[(name, job["setting"])] * args.epochs * 1.15 for job in mine)  # +15%: validation
        print(f"{name}: {len(mine)} trainings, about {seconds / 60:.0f} CPU-minutes")
    total = sum(per_epoch[(job["dataset"], job["setting"])] * args.epochs * 1.15 for job in jobs)
    print(f"{len(jobs)} trainings, about {total / 60:.0f} CPU-minutes, {total / 60 / args.workers:.0f} minutes "
          f"with {args.workers} workers on an otherwise idle machine")
    return 0


def _size_key(dataset_name: str) -> str:
    """The job field that holds the training-set size of a dataset."""
    return "train_fraction" if dataset_name in REAL else "n_train"


def _sizes(args: argparse.Namespace, dataset_name: str) -> list[Any]:
    return list(args.train_fractions if dataset_name in REAL else args.n_train)


def _rows(results: list[dict[str, Any]], dataset_name: str, setting: str, size: Any) -> list[dict[str, Any]]:
    key = _size_key(dataset_name)
    return [r for r in results if r["dataset"] == dataset_name and r["setting"] == setting and r[key] == size]


def _describe(dataset_name: str, args: argparse.Namespace) -> tuple[SegmentationDataset, dict[Any, str]]:
    """A dataset (largest size) and a column label per training-set size."""
    if dataset_name not in REAL:
        from asymtune.data.loading import load_dataset

        return load_dataset({"source": dataset_name, "params": {"seed": 0}}), {n: f"n_train={n}" for n in args.n_train}
    labels = {}
    for fraction in args.train_fractions:
        spec = _real_spec(dataset_name, fraction, args.rare[dataset_name])
        dataset = load_job_dataset({"dataset": dataset_name, "data": spec})
        labels[fraction] = f"fraction {fraction:g} ({len(set(dataset.train.case_ids))} cases)"
    return dataset, labels


def _real_header(dataset_name: str, args: argparse.Namespace) -> str:
    """One sentence: what a real dataset's trainings see and what they are tested on."""
    dataset, _ = _describe(dataset_name, args)
    spec = REAL[dataset_name]
    test = sorted(set(dataset.test.case_ids))
    patches = "" if spec.augment_patch is None else f"; the augmentation rows train on {spec.augment_patch} patches"
    return (f"{dataset_name} (`data/{spec.folder}`): trained on {spec.samples}, tested on {len(test)} whole held-out "
            f"case(s) ({', '.join(test)}), validation {len(set(dataset.val.case_ids))} case(s); rare classes "
            f"{', '.join(args.rare[dataset_name])} (the default rule on the full training split: the classes under 2% "
            f"of its voxels, else the smallest), the same at every fraction{patches}")


CONFIDENCE = 0.95  # of the paired intervals against the baseline
DICE_CELL_NOTE = (
    "Test Dice against `baseline`: the mean paired difference (each setting minus `baseline` trained with the same "
    f"seed, over the seeds both have; the augmentation settings minus `baseline_patches`, on whose patches they "
    f"train, where it was trained) and its {CONFIDENCE:.0%} Student-t interval, paired over the training seeds; "
    "**bold**: the interval excludes 0; with 1 seed there is no interval"
)


def _mean_sd(values: list[float]) -> str:
    """``mean ± standard deviation`` of per-seed values (``± 0.000`` for one seed)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def _paired(rows: list[dict[str, Any]], base: list[dict[str, Any]], key: str) -> Summary | None:
    """The paired difference ``rows - base`` of ``key`` over the seeds both have (None: no common seed)."""
    from asymtune.confirm.stats import paired_difference

    mine, theirs = {r["seed"]: r[key] for r in rows}, {r["seed"]: r[key] for r in base}
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return None
    return paired_difference([mine[s] for s in seeds], [theirs[s] for s in seeds], CONFIDENCE)


def _difference(summary: Summary) -> str:
    """``+0.060 [-0.012, +0.132]``, bold where the interval excludes 0; one seed: no interval."""
    if summary.n < 2:
        return f"{summary.mean:+.3f} (1 seed: no interval)"
    text = f"{summary.mean:+.3f} [{summary.low:+.3f}, {summary.high:+.3f}]"
    return f"**{text}**" if summary.low > 0 or summary.high < 0 else text


AUGMENTATION = ("asym_augmentation", "sym_augmentation")
"""Settings whose reference is ``baseline_patches`` where it was trained (they train on its patches)."""


def _reference(setting: str, present: list[str]) -> str:
    """The setting ``setting`` is paired against: ``baseline_patches`` for the augmentation settings
    where it was trained (the same patches, so the difference is the augmentation's), else ``baseline``."""
    return "baseline_patches" if setting in AUGMENTATION and "baseline_patches" in present else "baseline"


def _dice_cell(rows: list[dict[str, Any]], base: list[dict[str, Any]], key: str, versus: bool) -> str:
    """Mean ± sd of ``key`` over seeds and, when ``versus``, the paired difference to ``base``."""
    cell = _mean_sd([r[key] for r in rows])
    summary = _paired(rows, base, key) if versus else None
    return cell if summary is None else f"{cell}, {_difference(summary)}"


def _header(args: argparse.Namespace, command: str) -> list[str]:
    """The block's first line: the command, what each training is, and how the cells read."""
    if all(name not in REAL for name in args.datasets):
        what = "8 images; mean ± standard deviation over training seeds"
        tail = "; 16 validation and 32 test images)"
    else:
        what = "8 samples; mean ± standard deviation over training seeds"
        tail = ")"
    return [
        f"Command: `{command}` (U-Net {args.base_channels} channels, depth 3, Adam 2e-3, {args.epochs} epochs x "
        f"{args.iterations} iterations of {what} {', '.join(map(str, args.seeds))}{tail}. {DICE_CELL_NOTE}.",
    ]


def _settings_present(results: list[dict[str, Any]], args: argparse.Namespace, dataset_name: str) -> list[str]:
    """The settings of ``args`` that have a record on ``dataset_name``, in their order."""
    return [s for s in args.settings if any(r["dataset"] == dataset_name and r["setting"] == s for r in results)]


def _rare_table(
    results: list[dict[str, Any]], args: argparse.Namespace, dataset_name: str, labels: dict[Any, str],
    rare: list[str],
) -> list[str]:
    """Rare-class test Dice per setting and training-set size, paired against ``baseline``."""
    sizes = _sizes(args, dataset_name)
    lines = ["", f"### {dataset_name}: rare-class test Dice by training-set size", "",
             "| setting | " + " | ".join(f"{c}, {labels[n]}" for c in rare for n in sizes) + " |",
             "|---|" + "---|" * (len(rare) * len(sizes))]
    present = _settings_present(results, args, dataset_name)
    for setting in present:
        cells = []
        for cls in rare:
            for n in sizes:
                rows = _rows(results, dataset_name, setting, n)
                base = _rows(results, dataset_name, _reference(setting, present), n)
                cells.append(_dice_cell(rows, base, f"test/dice/{cls}", setting != "baseline") if rows else "-")
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return lines


def _class_table(
    results: list[dict[str, Any]], args: argparse.Namespace, dataset_name: str, size: Any, label: str,
    names: list[str],
) -> list[str]:
    """Per foreground class and setting at one size: Dice (paired against its :func:`_reference`), the
    others mean ± sd."""
    lines = ["", f"### {dataset_name}, {label}: per class", "",
             "| class | setting | test Dice | test sensitivity | test precision | median s train | "
             "median s test | shift (train - test) |",
             "|---|---|---|---|---|---|---|---|"]
    present = _settings_present(results, args, dataset_name)
    for cls in names:
        for setting in present:
            rows = _rows(results, dataset_name, setting, size)
            if not rows:
                continue
            base = _rows(results, dataset_name, _reference(setting, present), size)
            cells = [_dice_cell(rows, base, f"test/dice/{cls}", setting != "baseline")]
            cells += [_mean_sd([r[key] for r in rows]) for key in (
                f"test/sensitivity/{cls}", f"test/precision/{cls}",
                f"shift/median_train/{cls}", f"shift/median_val/{cls}", f"shift/shift/{cls}")]
            lines.append(f"| {cls} | {setting} | " + " | ".join(cells) + " |")
    return lines


def tables(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> list[str]:
    """The Markdown tables of the per-seed records ``results`` (header, then per dataset)."""
    lines = _header(args, command)
    for dataset_name in args.datasets:
        if dataset_name in REAL:
            lines += ["", _real_header(dataset_name, args) + "."]
    for dataset_name in args.datasets:
        dataset, labels = _describe(dataset_name, args)
        names = list(dataset.class_names[1:])
        rare = [dataset.class_names[i] for i in range(1, dataset.num_classes) if i in dataset.rare_classes]
        lines += _rare_table(results, args, dataset_name, labels, rare)
        for n in _sizes(args, dataset_name):
            lines += _class_table(results, args, dataset_name, n, labels[n], names)
    return lines


def plot(results: list[dict[str, Any]], args: argparse.Namespace, folder: Path) -> list[Path]:
    """Per dataset: test Dice and logit shift of each foreground class per setting, both sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dataset_name in args.datasets:
        dataset, labels = _describe(dataset_name, args)
        names = dataset.class_names[1:]
        sizes = _sizes(args, dataset_name)
        settings = [
            s for s in args.settings if any(r["dataset"] == dataset_name and r["setting"] == s for r in results)
        ]
        figure, axes = plt.subplots(2, len(names), figsize=(5.5 * len(names), 7), squeeze=False)
        width = 0.8 / len(sizes)
        for column, cls in enumerate(names):
            for row, (key, label) in enumerate(
                ((f"test/dice/{cls}", "test Dice"), (f"shift/shift/{cls}", "shift (train - test)"))
            ):
                axis = axes[row][column]
                for k, n in enumerate(sizes):
                    means, sds = [], []
                    for setting in settings:
                        values = [r[key] for r in _rows(results, dataset_name, setting, n)]
                        means.append(statistics.mean(values) if values else float("nan"))
                        sds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
                    axis.bar([i + k * width for i in range(len(settings))], means, width, yerr=sds, label=labels[n],
                             capsize=2)
                axis.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(settings))])
                axis.set_xticklabels(settings, rotation=60, ha="right", fontsize=7)
                axis.set_title(f"{cls}: {label}", fontsize=9)
                axis.axhline(0, color="black", linewidth=0.5)
        axes[0][0].legend(fontsize=7)
        figure.suptitle(
            f"{dataset_name}: mean over seeds {', '.join(map(str, args.seeds))} (bars: standard deviation)", fontsize=9
        )
        figure.tight_layout()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"reproduction_{dataset_name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def make_jobs(args: argparse.Namespace, tuned: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One job per (dataset, size, seed, setting); the synthetic jobs' fields are those of stored results."""
    jobs = []
    model = {"name": "unet", "base_channels": args.base_channels, "depth": 3}
    train = {"epochs": args.epochs, "iterations_per_epoch": args.iterations, "batch_size": 8}
    for dataset in args.datasets:
        real = REAL.get(dataset)
        settings = [s for s in args.settings if s != "tuned" or dataset in tuned]
        if real is not None and real.augment_patch is None:  # the same samples as baseline: no baseline_patches
            settings = [s for s in settings if s != "baseline_patches"]
        for size in _sizes(args, dataset):
            for seed in args.seeds:
                for setting in settings:
                    job = {"dataset": dataset, "n_train": size, "setting": setting, "seed": seed,
                           "tuned": tuned.get(dataset), "model": model, "train": train}
                    if real is not None:
                        del job["n_train"]
                        job.update(train_fraction=size, data=_real_spec(dataset, size, args.rare[dataset]),
                                   train={**train, **real.train})
                    jobs.append(job)
    return jobs


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces the tables."""
    if args.quick:
        given = f" --datasets {' '.join(args.datasets)}" if args.datasets_given else ""
        return f"python bench/reproduction.py --quick{given}"
    command = f"python bench/reproduction.py --datasets {' '.join(args.datasets)}"
    if any(name not in REAL for name in args.datasets):
        command += f" --n-train {' '.join(map(str, args.n_train))}"
    if any(name in REAL for name in args.datasets):
        command += f" --train-fractions {' '.join(map(str, args.train_fractions))}"
    command += f" --seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs}"
    return command + (f" --settings {' '.join(args.settings)}" if args.settings != [*SETTINGS, "tuned"] else "")


def _parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=ALL_DATASETS,
                        help=f"default: {' '.join(DATASETS)} (the real ones: {' '.join(REAL)})")
    parser.add_argument("--n-train", type=int, nargs="+", default=[4, 16],
                        help="synthetic sets: training images (the fractions)")
    parser.add_argument("--train-fractions", type=float, nargs="+", default=[0.5, 1.0],
                        help="real sets: data.train_fraction (nested subsets of the training cases)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=[*SETTINGS, "tuned"], choices=[*SETTINGS, "tuned"])
    parser.add_argument("--tuned", nargs="*", default=[], metavar="DATASET=PATH",
                        help="exported config per dataset (default bench/tuned/<dataset>.yaml)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--base-channels", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--estimate", action="store_true", help="time one epoch of each setting and print the total")
    parser.add_argument("--quick", action="store_true", help="synth_lesions (or --datasets), 2 settings + tuned, "
                        "1 seed, 2 epochs: checks that it runs")
    parser.add_argument("--json", type=Path, help="write every training's metrics here (the per-seed records), "
                        "after each one")
    parser.add_argument("--resume", action="store_true", help="take the trainings already in --json (an interrupted "
                        "run with the same options) instead of training them again")
    parser.add_argument("--render-only", action="store_true", help="train nothing: print the block of the records "
                        "in --json (a run with the same options wrote them)")
    parser.add_argument("--figure-dir", type=Path, help="write one PNG per dataset here")
    parser.add_argument("--out", type=Path)
    return parser


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Path]]:
    """The options (``--quick`` applied) and the exported config path of each dataset."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.render_only and (args.json is None or args.estimate or args.resume):
        parser.error("--render-only reads the records of --json FILE (and takes neither --estimate nor --resume)")
    args.datasets_given = args.datasets is not None
    args.datasets = args.datasets or list(DATASETS)
    if args.quick:
        args.datasets = args.datasets if args.datasets_given else ["synth_lesions"]
        args.settings, args.seeds = ["baseline", "asym_focal", "tuned"], [0]
        args.epochs, args.iterations, args.n_train = 2, 3, [4, 16]
    tuned_paths = {name: ROOT / "bench" / "tuned" / f"{name}.yaml" for name in args.datasets}
    for entry in args.tuned:
        name, _, path = entry.partition("=")
        if name not in ALL_DATASETS or not path:
            parser.error(f"--tuned {entry!r}: expected DATASET=PATH with DATASET one of {ALL_DATASETS}")
        tuned_paths[name] = Path(path)
    return args, tuned_paths


def train(args: argparse.Namespace, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train ``jobs`` in a pool (with ``--resume``, take those already in ``--json``); their records."""
    jobs = sorted(jobs, key=lambda job: -COST.get(job["setting"], 1.0))  # long ones first: the pool ends together
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
            size = result.get("n_train", result.get("train_fraction"))
            print(f"[reproduction] {done}/{len(todo)} {result['dataset']} {_size_key(result['dataset'])}={size} "
                  f"{result['setting']} seed {result['seed']}: {result['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(f"{len(todo)} trainings in {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    return results


def read_records(path: Path) -> list[dict[str, Any]]:
    """The per-seed records ``--json`` wrote (a JSON list of one object per training)."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such records file (write it with --json on a run)")
    records = json.loads(path.read_text())
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SystemExit(f"{path}: expected a JSON list of per-training records (as --json writes)")
    return records


def _recorded_tuned(records: list[dict[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    """Per dataset, the tuned settings its ``tuned`` records trained (one set per dataset)."""
    tuned: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("setting") != "tuned":
            continue
        if "tuned_settings" not in record:
            raise SystemExit(f"{path}: a tuned record of {record.get('dataset')} has no field 'tuned_settings'")
        if tuned.setdefault(record["dataset"], record["tuned_settings"]) != record["tuned_settings"]:
            raise SystemExit(f"{path}: the tuned records of {record['dataset']} trained different settings")
    return tuned


def _check_records(results: list[dict[str, Any]], path: Path, args: argparse.Namespace) -> None:
    """Fail naming ``path`` and the field when a record lacks a value the tables read."""
    classes = {name: _describe(name, args)[0].class_names[1:] for name in {r["dataset"] for r in results}}
    for record in results:
        for key in (f"{kind}/{cls}" for cls in classes[record["dataset"]] for kind in (
                "test/dice", "test/sensitivity", "test/precision", "shift/median_train", "shift/median_val",
                "shift/shift")):
            if key not in record:
                raise SystemExit(f"{path}: the record of {record['dataset']} {record['setting']} seed "
                                 f"{record['seed']} has no field {key!r} (rerun the training to record it)")


def recorded(args: argparse.Namespace, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records in ``--json`` of ``jobs`` (what the run with these options trained), checked."""
    records = [r for r in read_records(args.json) if any(_same_job(r, job) for job in jobs)]
    if not records:
        raise SystemExit(f"{args.json}: no record of a training these options describe")
    if len(records) < len(jobs):
        print(f"[reproduction] {len(jobs) - len(records)} of {len(jobs)} trainings have no record in {args.json}; "
              "the tables show the others", file=sys.stderr)
    _check_records(records, args.json, args)
    return records


def render(
    results: list[dict[str, Any]], args: argparse.Namespace, tuned: dict[str, dict[str, Any]],
    tuned_paths: dict[str, Path],
) -> list[str]:
    """The block's lines: the tables, the tuned settings, and the figures (written to ``--figure-dir``)."""
    lines = tables(results, args, _command(args))
    missing = [name for name in args.datasets if name not in tuned and "tuned" in args.settings]
    if missing:
        lines += ["", f"No tuned setting for {', '.join(missing)}: no exported config at "
                      f"{', '.join(str(tuned_paths[n]) for n in missing)}."]
    for name in args.datasets:
        if name in tuned:
            shown = tuned_paths[name].relative_to(ROOT) if tuned_paths[name].is_relative_to(ROOT) else tuned_paths[name]
            lines += ["", f"`tuned` on {name}: the settings of `{shown}`: "
                          f"{json.dumps(tuned[name])}"]
    if args.figure_dir:
        for path in plot(results, args, args.figure_dir):
            lines += ["", f"![{path.stem}](figures/{path.name})"]
    return lines


def main(argv: list[str] | None = None) -> int:
    args, tuned_paths = _parse(argv)
    tuned = {
        name: tuned_settings(path) for name, path in tuned_paths.items() if name in args.datasets and path.is_file()
    }
    if args.render_only:  # the settings the records trained, over the exported configs as they are now
        recorded_tuned = _recorded_tuned(read_records(args.json), args.json)
        tuned |= {name: value for name, value in recorded_tuned.items() if name in args.datasets}
    args.rare = {name: rare_class_names(name) for name in args.datasets if name in REAL}
    jobs = make_jobs(args, tuned)
    if args.estimate:
        return estimate(args, jobs)
    results = recorded(args, jobs) if args.render_only else train(args, jobs)
    return emit(render(results, args, tuned, tuned_paths), args.out)


if __name__ == "__main__":
    sys.exit(main())

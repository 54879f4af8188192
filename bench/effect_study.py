"""The phenomenon on the built-in data, and the asymmetric fix (issue: the method, exact).

Trains the baseline (CE + soft Dice) and asymmetric settings at the authors' defaults (the
asymmetric focal loss, gamma 4 on the frequent classes; the asymmetric margin, m = 1 on the rare
classes; any single technique of bench/reproduction.py; ``tuned``: bench/tuned/<dataset>.yaml) on
several seeds; reports per foreground class the test Dice, sensitivity and precision, the training
sensitivity (whether the training cases are memorised), and the logit shift (median boundary
distance, method.md section 4) on train minus on validation and on train minus on test; with
several seeds and ``baseline`` among the settings, a second table gives each setting's paired
difference to the baseline (same seed, setting minus baseline) with a 95% Student-t interval over
seeds, and a third, for each technique run in both versions (``asym_<technique>`` and
``sym_<technique>``), the asymmetric version's paired difference to the symmetric one. Writes a
Markdown block, and every training's metrics to ``--json``.

Synthetic sets (``synth_lesions``, ``synth_organs``) are generated at their defaults. The real
built-in sets (``brain_atlas``, ``nuclei``) are read and trained as bench/reproduction.py reads and
trains them (prepared folder under data/, split seed 0, rare classes fixed from the full training
split, brain_atlas on 48 x 48 windows of coronal slices, nuclei on 32 x 32 patches); their
training-set size is ``--train-fraction`` (``data.train_fraction``: nested subsets of the
training cases).

    python bench/effect_study.py --dataset synth_lesions --seeds 0 1 2 --out docs/effect_study.md
    python bench/effect_study.py --dataset brain_atlas --train-fraction 0.25 --epochs 60 \\
        --json docs/data/effect_study_brain_atlas.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
OWN = ("asym_focal_margin",)
"""Settings of this study besides bench/reproduction.py's table."""

JOB_KEYS = ("dataset", "data_seed", "data", "train_fraction", "setting", "seed", "model", "train", "tuned")
"""The fields of a job that decide its training (a stored record with the same ones is the same)."""


def _reproduction() -> ModuleType:
    """bench/reproduction.py (its real-set specs and settings table), importable from anywhere."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import reproduction

    return reproduction


def _settings(name: str, num_classes: int, rare: list[bool], real: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``settings`` of a named setting and the train options it adds."""
    from asymtune.method.settings import from_paper_form

    if name == "asym_focal_margin":
        return from_paper_form(num_classes, rare, margin=1.0, gamma=4.0).to_dict(), {}
    reproduction = _reproduction()
    patch = None if real else reproduction.PATCH
    table = reproduction._settings_table(patch)
    if name not in table:
        raise ValueError(f"setting {name!r}: expected one of {', '.join([*table, *OWN, 'tuned'])}")
    _, make, extra = table[name]
    return make(num_classes, rare), dict(extra)


def _dataset(job: dict[str, Any]) -> Any:
    if "data" in job:
        return _reproduction().load_job_dataset(job)
    from asymtune.data.loading import load_dataset

    return load_dataset({"source": job["dataset"], "params": {"seed": job["data_seed"]}})


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train one (dataset, setting, seed) and measure it.

    ``job``: ``dataset``, ``setting``, ``seed``, ``model``, ``train``, and either ``data_seed`` (a
    synthetic set) or ``data`` (a real set's ``data`` entry, bench/reproduction.py ``_real_spec``);
    ``tuned``: the settings of the ``tuned`` setting. Returns the job with ``test/*``, ``train/*``
    metrics, ``diag/*`` (shift train - validation) and ``shift/*`` (shift train - test).
    """
    from asymtune.train.diagnostics import shift_metrics, split_distances
    from asymtune.train.factory import build_trainer

    dataset = _dataset(job)
    rare = [i in dataset.rare_classes for i in range(dataset.num_classes)]
    if job["setting"] == "tuned":
        settings, extra = dict(job["tuned"]), {}
    else:
        settings, extra = _settings(job["setting"], dataset.num_classes, rare, "data" in job)
    run = {
        "dataset_name": job["dataset"],
        "data": job.get("data", {"source": job["dataset"], "params": {"seed": job.get("data_seed", 0)}}),
        "model": job["model"],
        "train": {**job["train"], **extra, "seed": job["seed"], "device": "cpu"},
        "settings": settings,
    }
    trainer = build_trainer(run, dataset)
    start = time.perf_counter()
    trainer.fit()
    result = {**job, "seconds": time.perf_counter() - start}
    result.update(trainer.evaluate(dataset.test, "test"))
    result.update(trainer.evaluate(dataset.train, "train"))
    train = split_distances(trainer, dataset.train)
    result.update(shift_metrics(train, split_distances(trainer, dataset.val)))
    result.update(shift_metrics(train, split_distances(trainer, dataset.test), "shift"))
    return result


def paired_rows(
    results: list[dict[str, Any]], setting: str, key: str, reference: str = "baseline"
) -> tuple[float, float, float, int] | None:
    """Paired difference ``setting - reference`` of metric ``key`` over the seeds both have.

    Returns (mean, low, high, number of seeds) with a 95% Student-t interval (NaN bounds for one
    seed), or None when no seed has both.
    """
    from asymtune.confirm.stats import paired_difference

    by_seed = {r["seed"]: r[key] for r in results if r["setting"] == setting and key in r}
    base = {r["seed"]: r[key] for r in results if r["setting"] == reference and key in r}
    seeds = sorted(set(by_seed) & set(base))
    if not seeds:
        return None
    summary = paired_difference([by_seed[s] for s in seeds], [base[s] for s in seeds])
    return summary.mean, summary.low, summary.high, len(seeds)


def format_paired(value: tuple[float, float, float, int] | None) -> str:
    """``+0.012 [-0.020, +0.044]`` (no interval for one seed, ``n/a`` for none)."""
    if value is None:
        return "n/a"
    mean, low, high, _ = value
    if math.isnan(low):
        return f"{mean:+.3f}"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _stat(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows if key in r]
    if not values:
        return "n/a"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def tables(results: list[dict[str, Any]], class_names: list[str], settings: list[str]) -> list[str]:
    """The per-class table (mean ± sd over seeds) and, with a baseline and several seeds, the paired one."""
    lines = [
        "| class | setting | test Dice | test sensitivity | test precision | train sensitivity | "
        "median s train | median s val | shift (train - val) | median s test | shift (train - test) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cls in class_names:
        for setting in settings:
            rows = [r for r in results if r["setting"] == setting]
            cells = [f"test/dice/{cls}", f"test/sensitivity/{cls}", f"test/precision/{cls}",
                     f"train/sensitivity/{cls}", f"diag/median_train/{cls}", f"diag/median_val/{cls}",
                     f"diag/shift/{cls}", f"shift/median_val/{cls}", f"shift/shift/{cls}"]
            lines.append(f"| {cls} | {setting} | " + " | ".join(_stat(rows, key) for key in cells) + " |")
    seeds = {r["seed"] for r in results}
    others = [s for s in settings if s != "baseline"]
    if "baseline" not in settings or len(seeds) < 2 or not others:
        return lines
    lines += [
        "",
        "Paired difference to the baseline (same seed; mean and 95% Student-t interval over seeds):",
        "",
        "| class | setting | Δ test Dice | Δ test sensitivity | Δ test precision | Δ shift (train - test) |",
        "|---|---|---|---|---|---|",
    ]
    for cls in class_names:
        for setting in others:
            lines.append(f"| {cls} | {setting} | " + _paired_cells(results, cls, setting, "baseline") + " |")
    pairs = symmetric_pairs(settings)
    if pairs:
        lines += [
            "",
            "Asymmetric minus symmetric version of the same technique (same seed; mean and 95% Student-t "
            "interval over seeds):",
            "",
            "| class | asymmetric - symmetric | Δ test Dice | Δ test sensitivity | Δ test precision "
            "| Δ shift (train - test) |",
            "|---|---|---|---|---|---|",
        ]
        for cls in class_names:
            for asymmetric, symmetric in pairs:
                lines.append(f"| {cls} | {asymmetric} - {symmetric} | "
                             + _paired_cells(results, cls, asymmetric, symmetric) + " |")
    return lines


def symmetric_pairs(settings: list[str]) -> list[tuple[str, str]]:
    """(``asym_<technique>``, ``sym_<technique>``) for each technique with both versions in ``settings``.

    >>> symmetric_pairs(["baseline", "asym_focal", "asym_augmentation", "sym_augmentation"])
    [('asym_augmentation', 'sym_augmentation')]
    """
    return [(s, f"sym_{s[len('asym_'):]}") for s in settings
            if s.startswith("asym_") and f"sym_{s[len('asym_'):]}" in settings]


def _paired_cells(results: list[dict[str, Any]], cls: str, setting: str, reference: str) -> str:
    keys = (f"test/dice/{cls}", f"test/sensitivity/{cls}", f"test/precision/{cls}", f"shift/shift/{cls}")
    return " | ".join(format_paired(paired_rows(results, setting, key, reference)) for key in keys)


def _same(record: dict[str, Any], job: dict[str, Any]) -> bool:
    return all(record.get(key) == job.get(key) for key in JOB_KEYS)


def _run_all(jobs: list[dict[str, Any]], workers: int, stored: list[dict[str, Any]],
             save: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """Each job's record: a stored one when there is one, else a training (records saved as they come)."""
    results: list[dict[str, Any] | None] = [next((r for r in stored if _same(r, job)), None) for job in jobs]
    todo = [i for i, r in enumerate(results) if r is None]
    with ProcessPoolExecutor(workers) as pool:
        for index, record in zip(todo, pool.map(run_one, [jobs[i] for i in todo])):
            results[index] = record
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()
                              if not isinstance(v, dict)}), file=sys.stderr, flush=True)
            save([r for r in results if r is not None])
    return [r for r in results if r is not None]


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces the block (its options in bench/run_all.py's order)."""
    command = f"python bench/effect_study.py --dataset {args.dataset}"
    if args.real:
        command += f" --train-fraction {args.train_fraction:g}"
    if args.slice_axis is not None:
        command += f" --slice-axis {args.slice_axis}"
    if args.patch_size is not None:
        command += f" --patch-size {' '.join(map(str, args.patch_size))}"
    command += (f" --seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} --iterations {args.iterations} "
                f"--base-channels {args.base_channels}")
    if args.batch_size != 8:
        command += f" --batch-size {args.batch_size}"
    command += f" --settings {' '.join(args.settings)}"
    if args.json:
        command += f" --json {args.json}"
    return command


def _real_header(args: argparse.Namespace, dataset: Any, rare: list[str]) -> str:
    spec = _reproduction().REAL[args.dataset]
    train = sorted(set(dataset.train.case_ids))
    samples = spec.samples
    if args.slice_axis is not None or args.patch_size is not None:
        where = {None: "slices", "none": "whole volumes (3-D U-Net)"}.get(args.slice_axis, f"slices along axis "
                                                                          f"{args.slice_axis}")
        patch = " x ".join(map(str, args.patch_size or spec.train.get("patch_size", [])))
        samples = f"{patch} patches of {where}" if patch else where
    return (f"{args.dataset} (`data/{spec.folder}`), training fraction {args.train_fraction:g}: {len(train)} "
            f"training case(s) ({', '.join(train)}), {len(set(dataset.val.case_ids))} validation, "
            f"{len(set(dataset.test.case_ids))} test ({', '.join(sorted(set(dataset.test.case_ids)))}); "
            f"trained on {samples}, tested on whole cases; U-Net {args.base_channels} channels, depth 3, "
            f"Adam 2e-3, {args.epochs} epochs x {args.iterations} iterations of {args.batch_size} samples; rare "
            f"classes {', '.join(rare)} (fixed from the full training split); mean ± standard deviation over "
            f"training seeds {', '.join(map(str, args.seeds))}. Shift = median boundary distance on the training "
            f"split minus on the validation (or test) split; train sensitivity is on the training cases.")


def probe_table(records: list[dict[str, Any]]) -> list[str]:
    """One row per (training, rare class) of baseline probes: the regime search's Markdown table."""
    lines = [
        "| dataset | training fraction | channels | epochs | seed | class | train sensitivity | test sensitivity "
        "| test precision | test Dice | shift (train - val) | shift (train - test) | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        for name in record["data"]["params"].get("rare_classes", []):
            lines.append(
                f"| {record['dataset']} | {record.get('train_fraction', 1.0):g} | {record['model']['base_channels']} "
                f"| {record['train']['epochs']} | {record['seed']} | {name} "
                f"| {record[f'train/sensitivity/{name}']:.3f} | {record[f'test/sensitivity/{name}']:.3f} "
                f"| {record[f'test/precision/{name}']:.3f} | {record[f'test/dice/{name}']:.3f} "
                f"| {record[f'diag/shift/{name}']:+.2f} | {record[f'shift/shift/{name}']:+.2f} "
                f"| {record['seconds']:.0f} |"
            )
    return lines


def render_probes(path: Path) -> str:
    """The block of the probes stored in ``path`` (records of ``--json`` runs with ``--settings baseline``)."""
    records = json.loads((path if path.is_absolute() else ROOT / path).read_text())
    return "\n".join([
        f"Command: `python bench/effect_study.py --render-probes {path}` (renders the stored baseline probes; each "
        "probe was `python bench/effect_study.py --dataset D --train-fraction F --seeds S --settings baseline "
        "--epochs E --base-channels C --workers 1 --json ...`)",
        "",
        *probe_table(records),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-probes", type=Path, metavar="JSON",
                        help="print the table of the baseline probes stored in JSON and exit")
    parser.add_argument("--dataset", default="synth_lesions",
                        help="synth_lesions, synth_organs, or a real built-in set: brain_atlas, nuclei")
    parser.add_argument("--train-fraction", type=float, default=1.0,
                        help="real sets: data.train_fraction (the first ceil(f * pool) training cases)")
    parser.add_argument("--slice-axis", choices=["0", "1", "2", "none"],
                        help="real 3-D sets: train on slices along this axis, or on whole volumes (none: a 3-D "
                        "U-Net); default as bench/reproduction.py (brain_atlas: 1)")
    parser.add_argument("--patch-size", type=int, nargs="+", help="train.patch_size (default: the real set's, "
                        "bench/reproduction.py; whole images on the synthetic sets)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=["baseline", "asym_focal", "asym_margin"],
                        help="baseline, asym_focal, asym_margin, asym_focal_margin, any setting of "
                        "bench/reproduction.py, tuned (bench/tuned/<dataset>.yaml)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every training's metrics here (relative to the repository)")
    parser.add_argument("--resume", action="store_true", help="take the trainings already in --json instead of "
                        "training them again")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.render_probes is not None:
        block = render_probes(args.render_probes)
        print(block)
        if args.out:
            args.out.write_text(block + "\n")
        return 0
    reproduction = _reproduction()
    args.real = args.dataset in reproduction.REAL
    if not args.real and args.dataset not in reproduction.DATASETS:
        parser.error(f"--dataset {args.dataset!r}: expected one of {', '.join(reproduction.ALL_DATASETS)}")
    if not 0 < args.train_fraction <= 1:
        parser.error(f"--train-fraction {args.train_fraction}: expected a value in (0, 1]")
    for name, given in (("--train-fraction", args.train_fraction != 1.0), ("--slice-axis", args.slice_axis)):
        if given and not args.real:
            parser.error(f"{name} applies to the real sets ({', '.join(reproduction.REAL)}), not {args.dataset}")
    tuned = None
    if "tuned" in args.settings:
        path = ROOT / "bench" / "tuned" / f"{args.dataset}.yaml"
        if not path.is_file():
            parser.error(f"setting 'tuned': {path} does not exist (an exported config of asymtune tune)")
        tuned = reproduction.tuned_settings(path)
    model = {"name": "unet", "base_channels": args.base_channels, "depth": 3}
    train = {"epochs": args.epochs, "iterations_per_epoch": args.iterations, "batch_size": args.batch_size}
    rare: list[str] = []
    if args.real:
        rare = reproduction.rare_class_names(args.dataset)
        data = reproduction._real_spec(args.dataset, args.train_fraction, rare)
        if args.slice_axis is not None:
            data["params"]["slice_axis"] = None if args.slice_axis == "none" else int(args.slice_axis)
        base = {"dataset": args.dataset, "train_fraction": args.train_fraction, "data": data,
                "train": {**train, **reproduction.REAL[args.dataset].train}}
    else:
        base = {"dataset": args.dataset, "data_seed": 0, "train": train}
    if args.patch_size is not None:
        base["train"] = {**base["train"], "patch_size": args.patch_size}
    jobs = [
        {**base, "setting": setting, "seed": seed, "model": model, **({"tuned": tuned} if setting == "tuned" else {})}
        for setting in args.settings for seed in args.seeds  # setting by setting: the first ones finish first
    ]
    json_path = None if args.json is None else (args.json if args.json.is_absolute() else ROOT / args.json)
    stored = json.loads(json_path.read_text()) if args.resume and json_path and json_path.is_file() else []

    def save(records: list[dict[str, Any]]) -> None:
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")

    results = _run_all(jobs, args.workers, stored, save)
    save(results)
    dataset = _dataset(jobs[0])
    lines = [f"Command: `{_command(args)}`", ""]
    if args.real:
        lines += [_real_header(args, dataset, rare), ""]
    lines += tables(results, list(dataset.class_names[1:]), args.settings)
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Search efficiency of the shipped sweep: the share of a grid's compute that ``asymtune tune`` needs
to come within 1 Dice point of a noise-robust target (issue 13, acceptance 4).

Per dataset:

- **Searches**: ``asymtune tune`` exactly as shipped (``search_spaces/paper.yaml`` with its anchors,
  Optuna's TPE, ASHA, ``search.num_samples`` trials, the default model and training), one command
  per searcher seed (``search.seed`` 0, 1, 2, ...), without the confirmation and the report
  (``confirm.enabled=false report.enabled=false``): what is measured is the sweep. Its trials are
  read back from the sweep's Ray Tune folder (:func:`asymtune.results.trials.load_trials`).
- **Grid**: the paper's strengths on a coarse grid of the same space (:data:`GRID`: margin
  {0, 1, 2} x focal gamma {0, 4} x mixup (alpha, mu) {off, (0.2, 0.2)}, the dataset's rare classes;
  12 settings, the baseline and the authors' default among them), each trained with the training
  seeds :data:`SEEDS` as a trial trains it (:func:`asymtune.confirm.jobs.train_job`, the
  confirmation's training of a sweep trial's contract).
- **Target**: the best grid setting's *mean over the seeds* of the last-epoch validation objective,
  minus ``--tolerance`` (1 Dice point): a mean, so that one lucky seed does not set it.
- **Progress of a search**: after each of its trials ends (in the order they ended), the setting
  the sweep would choose at that moment (:func:`asymtune.confirm.select.select_best`, the product's
  rule) is scored by its mean over the same seeds (trained like the grid; shared with the grid where
  it is a grid setting). The search reaches the target when that score is at or above it; its
  compute is then the trial-epochs every trial had trained by that moment (an ASHA-stopped trial
  counts the epochs it trained). A search that ends below the target did not reach it within the
  shipped budget.
- **Goal**: the median over searcher seeds at most ``--goal`` (30 %) of the grid's compute (one
  training per grid setting: what tuning on that grid costs), on at least 3 of the 4 built-in sets.

A search trial trained with ``train.seed`` 0 for every epoch *is* the seed-0 training of its
setting (same code, one thread, on the CPU bit for bit): its value is reused for seed 0; the block
reports a retrained check of that (the baseline trial of the first search).

Records (``--json``, committed as ``docs/data/search_efficiency.json``): every search's trials
(setting, epochs, objective, end time) and every training's value per (setting, seed), written
after each step; ``--resume`` takes what is there (and lets asymtune resume a search that was
interrupted; without it every search starts from an empty folder), ``--render-only`` prints the
block from the records alone.

    python bench/search_efficiency.py --datasets synth_lesions synth_organs brain_atlas nuclei \\
        --json docs/data/search_efficiency.json                      # about 2 h on 2 cores
    python bench/search_efficiency.py --quick --json /tmp/se.json   # tiny: checks that it runs
    python bench/search_efficiency.py --render-only --datasets ... --json docs/data/search_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs
from _product import asymtune_command, local_ray_env

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("synth_lesions", "synth_organs", "brain_atlas", "nuclei")
OVERRIDES: dict[str, tuple[str, ...]] = {
    "synth_lesions": ("data=synth_lesions",),
    "synth_organs": ("data=synth_organs",),
    "brain_atlas": ("experiment=brain_atlas",),
    "nuclei": ("experiment=nuclei",),
}
"""What selects each dataset in ``asymtune tune`` (the real ones as their experiments ship)."""
QUICK = ("train.epochs=2", "train.iterations_per_epoch=3", "model.base_channels=4", "model.depth=2",
         "search.num_samples=3", "search.n_startup_trials=2", "search.scheduler.grace_period=1")
"""``--quick``: a tiny network and sweep (the figures mean nothing; it checks the path)."""
SEARCH_ONLY = ("confirm.enabled=false", "report.enabled=false", "verbose=0")
GRID = tuple(
    {"margin": margin, "gamma": gamma, "mixup_alpha": mixup, "mixup_margin": mixup,
     "rare": "none" if margin == gamma == mixup == 0.0 else "dataset"}
    for mixup in (0.0, 0.2) for gamma in (0.0, 4.0) for margin in (0.0, 1.0, 2.0)
)
"""Paper-form points: the baseline (margin = gamma = mixup = 0, no rare class) and the authors'
default (margin 1, gamma 4, mixup 0.2/0.2, the dataset's rare classes) among them."""
QUICK_GRID = tuple(p for p in GRID if p["mixup_alpha"] == 0.0 and p["margin"] < 2.0)
SEEDS = (0, 1, 2)
QUICK_SEEDS = (0, 1)


@dataclass(frozen=True)
class Options:
    """What a run measured (records of other options are not mixed in)."""

    quick: bool
    tolerance: float
    goal: float

    @property
    def seeds(self) -> tuple[int, ...]:
        return QUICK_SEEDS if self.quick else SEEDS

    @property
    def grid(self) -> tuple[dict[str, Any], ...]:
        return QUICK_GRID if self.quick else GRID


def settings_key(settings: Mapping[str, Any]) -> str:
    """A setting's identity: its resolved per-class values (``AsymmetrySettings.to_dict``) as JSON."""
    return json.dumps(settings, sort_keys=True)


# ----------------------------------------------------------------------------- the searches
def run_search(dataset: str, seed: int, output_dir: Path, quick: bool, fresh: bool) -> None:
    """One ``asymtune tune`` command into ``output_dir``: emptied first when ``fresh``, else resumed by
    asymtune when it holds an interrupted one."""
    if fresh and output_dir.exists():
        shutil.rmtree(output_dir)
        output_dir.with_suffix(".log").unlink(missing_ok=True)
    arguments = ["tune", *OVERRIDES[dataset], *(QUICK if quick else ()), *SEARCH_ONLY, f"search.seed={seed}",
                 f"output_dir={output_dir}"]
    log = output_dir.with_suffix(".log")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"[search_efficiency] {dataset} search seed {seed}: asymtune {' '.join(arguments)} (log: {log})",
          file=sys.stderr, flush=True)
    with log.open("a") as stream:
        status = subprocess.run([*asymtune_command(), *arguments], cwd=ROOT, stdout=stream, stderr=stream,
                                env=local_ray_env(arguments)).returncode
    if status != 0:
        raise RuntimeError(f"asymtune {' '.join(arguments)} failed (exit {status}); see {log}")


def read_search(output_dir: Path) -> dict[str, Any]:
    """The trials of a finished sweep of one dataset, in the order they ended, with what the
    product's selection needs (objective, mode, constraint) and each trial's training contract."""
    import yaml

    from asymtune.results.layout import RESOLVED_CONFIG, read_manifest
    from asymtune.results.trials import load_trials

    config = yaml.safe_load((output_dir / RESOLVED_CONFIG).read_text())
    (entry,) = read_manifest(output_dir)["datasets"].values()
    metric = str(config["objective"]["metric"])
    trials = []
    loaded = load_trials(entry["experiment_dir"])
    for record in loaded:
        if not record.finished:
            raise RuntimeError(f"{output_dir}: trial {record.trial_id} did not finish ({record.status})")
        trials.append({
            "trial_id": record.trial_id, "settings": record.settings.to_dict(), "epochs": record.epochs,
            "objective": record.objective(metric), "last": _validation(record.last),
            "timestamps": [int(row["timestamp"]) for row in record.history],
            "seed": int(record.spec.run_config(record.settings)["train"]["seed"]),
        })
    trials.sort(key=lambda t: (t["timestamps"][-1], t["epochs"]))
    first = loaded[0]
    run = {k: v for k, v in first.spec.run_config(first.settings).items() if k != "settings"}
    return {"metric": metric, "mode": str(config["objective"]["mode"]),
            "constraint": (config.get("selection") or {}).get("constraint"),
            "max_epochs": int(config["train"]["epochs"]), "spec": first.spec.to_dict(), "run": run,
            "trials": trials}


def _validation(values: Mapping[str, Any]) -> dict[str, float]:
    """The validation metrics of a trial's last result (what the product's selection reads)."""
    return {k: float(v) for k, v in values.items()
            if k.startswith("val/") and isinstance(v, (int, float)) and not isinstance(v, bool)}


# ----------------------------------------------------------------------------- the trainings
def train_value(job: dict[str, Any]) -> float:
    """Train one setting with one seed as a confirmation trains it; its last-epoch objective."""
    import torch

    from asymtune.confirm.jobs import Job, train_job

    torch.set_num_threads(int(job["run"]["train"].get("num_threads") or 1))
    run = job["run"]
    seeded = Job(trial_id="search_efficiency", seed=int(job["seed"]), dataset_name=run["dataset_name"],
                 dataset_spec=run["data"], model=run["model"], train={**run["train"], "seed": int(job["seed"])},
                 settings=run["settings"])
    return float(train_job(seeded)["metrics"][job["metric"]])


def grid_settings(spec: Mapping[str, Any], points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The per-class settings of the paper-form ``points`` in the shipped space, bound to the
    classes and rare classes of a sweep's trial contract ``spec`` (``TrialSpec.to_dict``)."""
    from asymtune.paths import resolve_search_space
    from asymtune.search.space import SearchSpace

    names = list(spec["class_names"])
    bound = SearchSpace.from_file(resolve_search_space("paper")).bind(names, spec["rare"])
    settings = []
    for point in points:
        flags = bound.rare_from_keyword(str(point["rare"]))
        params = {**{k: v for k, v in point.items() if k != "rare"},
                  **{f"rare.{name}": flags[i + 1] for i, name in enumerate(names[1:])}}
        settings.append(bound.to_settings(params).to_dict())
    return settings


def train_all(
    needed: Sequence[tuple[dict[str, Any], int]], run: Mapping[str, Any], metric: str,
    values: dict[str, dict[str, float]], save: Callable[[], None], workers: int,
) -> None:
    """Train each (setting, seed) of ``needed`` missing from ``values`` (``{settings_key: {seed: value}}``),
    ``workers`` at a time, saving after each."""
    todo = [(s, seed) for s, seed in needed if str(seed) not in values.get(settings_key(s), {})]
    todo = list({(settings_key(s), seed): (s, seed) for s, seed in todo}.values())
    if not todo:
        return
    print(f"[search_efficiency] {run['dataset_name']}: {len(todo)} training(s) to run", file=sys.stderr, flush=True)
    jobs = [{"run": {**run, "settings": s}, "seed": seed, "metric": metric} for s, seed in todo]
    with ProcessPoolExecutor(workers) as pool:
        for (setting, seed), value in zip(todo, pool.map(train_value, jobs)):
            values.setdefault(settings_key(setting), {})[str(seed)] = value
            save()


# ----------------------------------------------------------------------------- the measure
def progress(search: Mapping[str, Any]) -> list[dict[str, Any]]:
    """After each trial ends: the trial-epochs trained so far and the setting the sweep would choose."""
    from asymtune.confirm.select import find_baseline, select_best
    from asymtune.method.settings import AsymmetrySettings
    from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY
    from asymtune.results.trials import TrialRecord

    stamps = sorted(t for trial in search["trials"] for t in trial["timestamps"])
    records: list[Any] = []
    steps = []
    for trial in search["trials"]:
        history = [{**trial["last"], "training_iteration": trial["epochs"]}]
        config = {FIXED_KEY: search["spec"], SETTINGS_KEY: trial["settings"]}
        records.append(TrialRecord(trial["trial_id"], config, AsymmetrySettings.from_dict(trial["settings"]), history))
        best = select_best(records, search["metric"], search["mode"], search["constraint"], find_baseline(records))
        end = trial["timestamps"][-1]
        steps.append({"compute": sum(1 for t in stamps if t <= end), "trial": trial["trial_id"],
                      "chosen": None if best is None else best.trial_id})
    return steps


def chosen_settings(search: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every setting the sweep chose at some moment of the search."""
    by_id = {t["trial_id"]: t["settings"] for t in search["trials"]}
    return [by_id[step["chosen"]] for step in progress(search) if step["chosen"] is not None]


def mean_over(values: Mapping[str, float], seeds: Sequence[int]) -> float:
    found = [values[str(s)] for s in seeds if str(s) in values]
    return statistics.mean(found) if len(found) == len(seeds) else math.nan


def reached_at(search: Mapping[str, Any], values: Mapping[str, Mapping[str, float]], seeds: Sequence[int],
               target: float) -> tuple[int | None, int | None]:
    """The trial-epochs, and the trials ended, when the chosen setting's mean first reached ``target``."""
    by_id = {t["trial_id"]: t["settings"] for t in search["trials"]}
    for index, step in enumerate(progress(search)):
        if step["chosen"] is not None and mean_over(values.get(settings_key(by_id[step["chosen"]]), {}), seeds) \
                >= target:
            return step["compute"], index + 1
    return None, None


def seed_zero_from_trials(search: Mapping[str, Any], values: dict[str, dict[str, float]]) -> None:
    """A trial trained for every epoch with ``train.seed`` 0 is its setting's seed-0 training."""
    for trial in search["trials"]:
        if trial["epochs"] == search["max_epochs"] and trial["seed"] == 0:
            values.setdefault(settings_key(trial["settings"]), {}).setdefault("0", trial["objective"])


# ----------------------------------------------------------------------------- one dataset
def run_dataset(dataset: str, options: Options, searches: int, records: dict[str, Any], work: Path,
                save: Callable[[], None], workers: int, fresh: bool) -> None:
    """The searches, the grid and the scores of one dataset into ``records[dataset]`` (a search
    already there is kept; with ``fresh`` a search's leftover output folder is not resumed)."""
    entry = records.setdefault(dataset, {"searches": {}, "values": {}, "check": None})
    for seed in range(searches):
        if str(seed) not in entry["searches"]:
            output_dir = work / f"{dataset}-seed{seed}"
            run_search(dataset, seed, output_dir, options.quick, fresh)
            entry["searches"][str(seed)] = read_search(output_dir)
            save()
    first = entry["searches"]["0"]
    run, metric = first["run"], first["metric"]
    if entry["check"] is None:  # the reuse of seed-0 trials, checked once by training one again
        baseline = next((t for t in first["trials"] if t["epochs"] == first["max_epochs"]
                         and _is_baseline(t["settings"])), None)
        if baseline is not None:
            retrained = train_value({"run": {**run, "settings": baseline["settings"]}, "seed": 0, "metric": metric})
            entry["check"] = {"trial": baseline["objective"], "retrained": retrained}
            save()
    for search in entry["searches"].values():
        seed_zero_from_trials(search, entry["values"])
    grid = grid_settings(first["spec"], options.grid)
    entry["grid"] = grid
    train_all([(s, seed) for s in grid for seed in options.seeds], run, metric, entry["values"], save, workers)
    chosen = [s for search in entry["searches"].values() for s in chosen_settings(search)]
    train_all([(s, seed) for s in chosen for seed in options.seeds], run, metric, entry["values"], save, workers)


def _is_baseline(settings: Mapping[str, Any]) -> bool:
    from asymtune.method.settings import AsymmetrySettings

    return AsymmetrySettings.from_dict(settings).is_baseline


# ----------------------------------------------------------------------------- the block
def describe(settings: Mapping[str, Any], class_names: Sequence[str] | None = None) -> str:
    """``margin 1 (lesion); gamma 4; mixup 0.2/0.2`` in short."""
    parts = []
    margin = [m for m in settings["margin"] if m]
    gamma = [g for g in settings["gamma"] if g]
    if margin:
        parts.append(f"margin {max(margin):.2g}")
    if gamma:
        parts.append(f"gamma {max(gamma):.2g}")
    if settings.get("mixup_alpha"):
        parts.append(f"mixup {settings['mixup_alpha']:.2g}/{settings['mixup_margin']:.2g}")
    if settings.get("adv_eps"):
        parts.append(f"adversarial {settings['adv_eps']:.2g}")
    return ", ".join(parts) or "baseline"


def summarise_dataset(dataset: str, entry: Mapping[str, Any], options: Options) -> tuple[list[str], bool | None]:
    """The rows of one dataset and its verdict (None: no search)."""
    seeds = options.seeds
    grid = entry["grid"]
    means = [(mean_over(entry["values"].get(settings_key(s), {}), seeds), s) for s in grid]
    best_mean, best = max(means, key=lambda pair: pair[0])
    best_values = [entry["values"][settings_key(best)][str(s)] for s in seeds]
    target = best_mean - options.tolerance
    first = next(iter(entry["searches"].values()))
    grid_compute = len(grid) * first["max_epochs"]
    rows, fractions = [], []
    for seed, search in entry["searches"].items():
        compute, trials = reached_at(search, entry["values"], seeds, target)
        spent = sum(len(t["timestamps"]) for t in search["trials"])
        final = progress(search)[-1]["chosen"]
        final_settings = next(t["settings"] for t in search["trials"] if t["trial_id"] == final)
        final_mean = mean_over(entry["values"].get(settings_key(final_settings), {}), seeds)
        fraction = compute / grid_compute if compute is not None else math.inf
        fractions.append(fraction)
        reach = (f"{compute} ({100 * fraction:.0f}%), after {trials} trials" if compute is not None
                 else f"not reached in {spent} ({100 * spent / grid_compute:.0f}%)")
        rows.append(f"| {dataset} | {seed} | {reach} | {describe(final_settings)}: {final_mean:.3f} "
                    f"({final_mean - best_mean:+.3f}) | {spent} |")
    median = statistics.median(fractions)
    met = median <= options.goal
    head = (f"- {dataset}: grid best {describe(best)}, {best_mean:.3f} over seeds "
            f"({', '.join(f'{v:.3f}' for v in best_values)}; sd {statistics.stdev(best_values):.3f}); target "
            f"{target:.3f}; grid compute {grid_compute} trial-epochs ({len(grid)} settings x "
            f"{first['max_epochs']} epochs). Median share to reach: "
            + (f"{100 * median:.0f}%" if math.isfinite(median) else "not reached")
            + f": **{'met' if met else 'not met'}** (goal: at most {100 * options.goal:.0f}%).")
    check = entry.get("check")
    if check:
        head += (f" Seed-0 reuse check: the baseline trial {check['trial']:.4f}, retrained "
                 f"{check['retrained']:.4f} (difference {abs(check['trial'] - check['retrained']):.4f}).")
    return [head, *rows], met


def grid_table(dataset: str, entry: Mapping[str, Any], options: Options) -> list[str]:
    """Every grid setting's value per seed and mean, best first."""
    lines = [f"| {dataset}: grid setting | " + " | ".join(f"seed {s}" for s in options.seeds) + " | mean |",
             "|---|" + "---|" * (len(options.seeds) + 1)]
    scored = [(mean_over(entry["values"].get(settings_key(s), {}), options.seeds), s) for s in entry["grid"]]
    for mean, setting in sorted(scored, key=lambda pair: -pair[0]):
        values = entry["values"].get(settings_key(setting), {})
        lines.append(f"| {describe(setting)} | " + " | ".join(f"{values.get(str(s), math.nan):.3f}"
                                                              for s in options.seeds) + f" | {mean:.3f} |")
    return lines


def summarise(records: Mapping[str, Any], datasets: Sequence[str], options: Options, command: str) -> list[str]:
    """The Markdown block."""
    lines = [
        f"Command: `{command}` (`asymtune tune` as shipped per dataset and searcher seed, without confirmation "
        f"and report; grid: {len(options.grid)} paper-form settings trained with seeds "
        f"{', '.join(map(str, options.seeds))}; target: the grid's best mean over those seeds minus "
        f"{options.tolerance:g}; a search reaches it when the setting it would choose has a mean over the same seeds "
        "at or above it; compute in trial-epochs)",
        "",
    ]
    verdicts = []
    table = ["| dataset | searcher seed | trial-epochs to reach (% of the grid's) | chosen at the end: mean over "
             "seeds (vs the grid's best) | trial-epochs of the search |", "|---|---|---|---|---|"]
    heads = []
    for dataset in datasets:
        entry = records.get(dataset)
        if not entry or not entry.get("searches") or not entry.get("grid"):
            continue
        rows, met = summarise_dataset(dataset, entry, options)
        heads.append(rows[0])
        table += rows[1:]
        verdicts.append(met)
    lines += table + ["", *heads, "",
                      f"Verdict: the goal is met on {sum(bool(v) for v in verdicts)} of {len(verdicts)} datasets "
                      f"(acceptance: at least 3 of the 4 built-in sets)."]
    for dataset in datasets:
        entry = records.get(dataset)
        if entry and entry.get("grid"):
            lines += ["", *grid_table(dataset, entry, options)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--searches", type=int, default=3, help="searcher seeds (search.seed 0, 1, ...)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="1 Dice point")
    parser.add_argument("--goal", type=float, default=0.30)
    parser.add_argument("--workers", type=int, default=2, help="grid trainings at a time")
    parser.add_argument("--quick", action="store_true", help="synth_lesions, tiny network, 1 search, 4-point grid")
    parser.add_argument("--json", type=Path, help="the records, written after every step")
    parser.add_argument("--resume", action="store_true", help="take what --json holds (same options)")
    parser.add_argument("--render-only", action="store_true", help="print the block from --json; run nothing")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "outputs" / "search_efficiency",
                        help="the searches' output folders")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.searches = 1
        if args.datasets == list(DATASETS):
            args.datasets = ["synth_lesions"]
    options = Options(quick=args.quick, tolerance=args.tolerance, goal=args.goal)
    command = "python bench/search_efficiency.py" + (" --quick" if args.quick else "") \
        + f" --datasets {' '.join(args.datasets)}" + ("" if args.quick else f" --searches {args.searches}")
    stored: dict[str, Any] = {}
    if (args.resume or args.render_only) and args.json and args.json.is_file():
        stored = json.loads(args.json.read_text())
        if stored.get("options") != vars(options) | {"searches": args.searches}:
            parser.error(f"{args.json}: its records were measured with {stored.get('options')}, "
                         f"not {vars(options) | {'searches': args.searches}}")
    elif args.render_only:
        parser.error("--render-only needs an existing --json file")
    records: dict[str, Any] = stored.get("datasets", {})

    def save() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"options": vars(options) | {"searches": args.searches},
                                             "datasets": records}, indent=1))

    if not args.render_only:
        for dataset in args.datasets:
            if dataset in ("brain_atlas", "nuclei"):
                _prepare(dataset)
            run_dataset(dataset, options, args.searches, records, args.work_dir, save, args.workers,
                        fresh=not args.resume)
    return emit(summarise(records, args.datasets, options, command), args.out)


def _prepare(dataset: str) -> None:
    """Build a real built-in dataset where it is missing (``asymtune data prepare``)."""
    folder = {"brain_atlas": "Dataset901_BrainAtlas", "nuclei": "Dataset902_Nuclei"}[dataset]
    if not (ROOT / "data" / folder).is_dir():
        from asymtune.data.builtin_real import prepare_builtin

        prepare_builtin(dataset, ROOT / "data")


if __name__ == "__main__":
    sys.exit(main())

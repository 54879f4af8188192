"""Search efficiency: TPE + ASHA against random search and against the paper's grid.

For each dataset, the grid the paper's ranges suggest (focal gamma in {0, 2, 4, 6} by margin in
{0, 0.5, 1, 2}, the rare set fixed to the dataset's small classes) is trained in full; its best
last-epoch validation Dice (``val/mean_fg_dice``, what asymtune's report selects on) sets the
target: within ``--tolerance`` (1 Dice point) of it. Then each searcher runs ``--repeats`` times
(searcher seed 0, 1, 2, ...) with a budget of as many trials as the grid has, over the continuous
box margin in [0, 2] x gamma in [0, 6], and stops as soon as one of its trials ends with a
validation Dice at or above the target. Compute is counted in trial-epochs: every epoch any trial
trained up to that moment (ASHA stops trials early, so they count fewer).

Searchers (all through Ray Tune's ``OptunaSearch``, the trainable of ``asymtune tune``, the same
dataset, model and training options as ``asymtune tune`` composes them, 2 trials at a time):

- ``tpe_asha``: asymtune's sweep as shipped: Optuna's TPE (``search.n_startup_trials`` random
  trials first) with ASHA (``search.scheduler``), the space's anchors (baseline, authors' defaults)
  evaluated first.
- ``tpe_asha_no_anchors``: the same without the anchors (the authors' default, margin 1 and gamma 4,
  is a grid point: this shows what TPE + ASHA does without being handed it).
- ``random``: Optuna's RandomSampler, every trial trained in full, no anchors.
- ``tpe_no_asha`` (only when asked for): ``tpe_asha`` with every trial trained in full.
- ``tpe_asha_single_anchors`` (only when asked for): ``tpe_asha`` with the paper's single-technique
  defaults among the anchors: baseline, margin 1 alone, focal gamma 4 alone, then the shipped
  authors' default (both). Both single points are grid points: this measures what such anchors buy.

The training seed is the same for every trial (``train.seed``, one thread per trial), so a
setting gives the same Dice in every searcher: the grid is an exact reference, not a noisy one, and
the repeats vary only the searcher.

    python bench/search_efficiency.py                         # synth_lesions + synth_organs (+ brain atlas if prepared)
    python bench/search_efficiency.py --quick                 # tiny data and network: checks that it runs
    python bench/search_efficiency.py --datasets synth_lesions --repeats 3 --json outputs/bench/search.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _output import emit  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parent.parent
GRID_GAMMA = (0.0, 2.0, 4.0, 6.0)
GRID_MARGIN = (0.0, 0.5, 1.0, 2.0)
QUICK_GRID_GAMMA = (0.0, 4.0)
QUICK_GRID_MARGIN = (0.0, 1.0)
METHODS = ("tpe_asha", "tpe_asha_no_anchors", "random")
EXTRA_METHODS = ("tpe_no_asha", "tpe_asha_single_anchors")  # what ASHA adds or costs; what more anchors buy
TPE_METHODS = ("tpe_asha", "tpe_asha_no_anchors", "tpe_no_asha", "tpe_asha_single_anchors")
ANCHORED = ("tpe_asha", "tpe_no_asha", "tpe_asha_single_anchors")
WITH_ASHA = ("tpe_asha", "tpe_asha_no_anchors", "tpe_asha_single_anchors")
# The paper's default strength of each technique alone, in paper form (tpe_asha_single_anchors).
SINGLE_ANCHORS = {"margin_alone": {"margin": 1.0, "gamma": 0.0, "rare": "dataset"},
                  "focal_alone": {"margin": 0.0, "gamma": 4.0, "rare": "dataset"}}
METRIC = "val/mean_fg_dice"
BRAIN_ATLAS = ROOT / "data" / "Dataset901_BrainAtlas"

# What each dataset adds to `asymtune tune`'s composition (besides the common options below).
DATASET_OVERRIDES: dict[str, tuple[str, ...]] = {
    "synth_lesions": ("data=synth_lesions",),
    "synth_organs": ("data=synth_organs",),
    # 2-D coronal slices of the 3-D cases keep a trial to seconds on a CPU.
    "brain_atlas": ("data=nnunet", f"data.root={BRAIN_ATLAS}", "data.params.slice_axis=1"),
}


def space_mapping(with_anchors: bool, single_anchors: bool = False) -> dict[str, Any]:
    """margin in [0, 2] and gamma in [0, 6] in the paper's form, the rare set fixed to the
    dataset's small classes; with the anchors of ``search_spaces/paper.yaml`` when asked, and
    :data:`SINGLE_ANCHORS` after the baseline with ``single_anchors``."""
    from asymtune.paths import resolve_search_space
    from asymtune.search.space import SearchSpace

    mapping: dict[str, Any] = {
        "form": "paper",
        "params": {
            "margin": {"type": "float", "low": 0.0, "high": 2.0},
            "gamma": {"type": "float", "low": 0.0, "high": 6.0},
        },
        "fixed": {"schedule": "separate"},
    }
    if with_anchors:
        shipped = SearchSpace.from_file(resolve_search_space("paper")).anchors
        anchors = {name: {k: v for k, v in point.items() if k in ("margin", "gamma", "rare")}
                   for name, point in shipped.items()}
        if single_anchors:
            baseline = next(iter(anchors.items()))
            anchors = dict([baseline, *SINGLE_ANCHORS.items(), *list(anchors.items())[1:]])
        mapping["anchors"] = anchors
    return mapping


@dataclasses.dataclass
class Progress:
    """What the driver saw of one search, in the order it saw it (Ray Tune callback + stopper)."""

    target: float | None
    epochs: int = 0
    reached_at: int | None = None
    trials_to_reach: int | None = None
    completed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    curves: dict[str, list[float]] = dataclasses.field(default_factory=dict)


def make_callback_and_stopper(progress: Progress) -> tuple[Any, Any]:
    from ray import tune

    class Count(tune.Callback):
        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            progress.epochs += 1
            progress.curves.setdefault(trial.trial_id, []).append(float(result.get(METRIC, math.nan)))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            result = trial.last_result or {}
            value = float(result.get(METRIC, math.nan))
            params = {k: v for k, v in (trial.config or {}).items() if k != "asymtune"}
            progress.completed.append({
                "params": params, "epochs": int(result.get("training_iteration", 0)), "value": value,
                "compute_so_far": progress.epochs, "curve": progress.curves.get(trial.trial_id, []),
            })
            if progress.target is not None and progress.reached_at is None and value >= progress.target:
                progress.reached_at = progress.epochs
                progress.trials_to_reach = len(progress.completed)

    class StopWhenReached(tune.Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return progress.reached_at is not None

    return Count(), StopWhenReached()


def run_search(
    plan: Any, cfg: Mapping[str, Any], method: str, seed: int, num_samples: int, target: float | None,
    points: Sequence[Mapping[str, Any]] | None, storage: Path,
) -> dict[str, Any]:
    """One search (or the grid, with ``points``) on one dataset; returns its record."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from asymtune.results.layout import FIXED_KEY
    from asymtune.search.space import SearchSpace
    from asymtune.search.sweep import trial_name, trial_spec_of
    from asymtune.search.trainable import run_trial

    space = SearchSpace.from_mapping(space_mapping(method in ANCHORED, method == "tpe_asha_single_anchors"),
                                     f"<search_efficiency {method}>")
    bound = space.bind(plan.dataset.class_names, plan.dataset.rare_classes)
    plan = dataclasses.replace(plan, space=bound)
    search = cfg["search"]
    scheduler: Any = None
    if method in WITH_ASHA:
        scheduler = ASHAScheduler(
            time_attr="training_iteration", max_t=int(cfg["train"]["epochs"]),
            grace_period=int(search["scheduler"]["grace_period"]),
            reduction_factor=float(search["scheduler"]["reduction_factor"]),
        )
    if method in TPE_METHODS:
        sampler: Any = optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(search["n_startup_trials"]))
        points = list(bound.anchor_points().values())
    else:  # random search, or the grid (every point given, the sampler never asked)
        sampler = optuna.samplers.RandomSampler(seed=seed)
    progress = Progress(target=target)
    callback, stopper = make_callback_and_stopper(progress)
    searcher = OptunaSearch(
        space=bound, metric=METRIC, mode="max", points_to_evaluate=list(points or []) or None, sampler=sampler,
    )
    resources = {"cpu": float(cfg["resources"]["cpu"]), "gpu": float(cfg["resources"]["gpu"])}
    tuner = tune.Tuner(
        tune.with_resources(run_trial, resources),
        param_space={FIXED_KEY: trial_spec_of(plan, cfg).to_dict()},
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
            max_concurrent_trials=int(search["max_concurrent_trials"]), trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"{plan.name}-{method}-{seed}", storage_path=str(storage), callbacks=[callback], stop=stopper,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=0,
        ),
    )
    start = time.perf_counter()
    grid = tuner.fit()
    errors = [str(result.error)[:300] for result in grid if result.error]
    if errors:
        raise RuntimeError(f"{plan.name} {method} seed {seed}: {len(errors)} trials failed, first: {errors[0]}")
    return {
        "dataset": plan.name, "method": method, "seed": seed, "target": target, "compute": progress.epochs,
        "epochs": int(cfg["train"]["epochs"]), "iterations": int(cfg["train"]["iterations_per_epoch"]),
        "reached_at": progress.reached_at, "trials_to_reach": progress.trials_to_reach,
        "trials": progress.completed, "seconds": time.perf_counter() - start,
    }


def compose_config(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    from asymtune.cli import compose

    overrides = [*DATASET_OVERRIDES[dataset], "ray.num_cpus=2", "verbose=0", "report.enabled=false"]
    if args.quick:
        overrides += ["experiment=smoke", "search.n_startup_trials=2"] if dataset != "brain_atlas" else []
    overrides += [f"train.epochs={args.epochs}", f"search.scheduler.grace_period={args.grace_period}"]
    return compose("tune", overrides + list(args.override))


def grid_points(args: argparse.Namespace) -> list[dict[str, float]]:
    gammas, margins = (QUICK_GRID_GAMMA, QUICK_GRID_MARGIN) if args.quick else (GRID_GAMMA, GRID_MARGIN)
    return [{"margin": m, "gamma": g} for g in gammas for m in margins]


def _same_run(record: Mapping[str, Any], key: Mapping[str, Any]) -> bool:
    return all(record.get(name) == value for name, value in key.items())


def run_dataset(
    dataset: str, args: argparse.Namespace, storage: Path, stored: list[dict[str, Any]], save: Any,
) -> list[dict[str, Any]]:
    """The grid and every search of one dataset; searches found in ``stored`` (an interrupted
    run's ``--json``, same options) are not run again, and ``save(records)`` follows every search."""
    import os

    from asymtune.pipeline import start_ray
    from asymtune.search.plan import plan_datasets

    # Ray starts its workers at nice 15: on a machine shared with other work the trials would get a
    # small share of the CPU. Trial-epochs do not depend on it, the wall time does.
    os.environ.setdefault("RAY_worker_niceness", "0")

    cfg = compose_config(dataset, args)
    (plan,) = plan_datasets(cfg)
    start_ray(cfg["ray"])
    points = grid_points(args)
    print(f"[search_efficiency] {dataset}: grid of {len(points)} points", file=sys.stderr, flush=True)
    options = {"source": dataset, "epochs": args.epochs, "grace_period": args.grace_period, "quick": args.quick,
               "iterations": int(cfg["train"]["iterations_per_epoch"])}
    records: list[dict[str, Any]] = []

    def search(method: str, seed: int, target: float | None, given: list[dict[str, float]] | None) -> dict[str, Any]:
        key = {**options, "method": method, "seed": seed, "target": target}
        # the grid trains every point in full: a stored grid of another ASHA grace period is the same grid
        match = {name: value for name, value in key.items() if not (method == "grid" and name == "grace_period")}
        found = next((r for r in stored if _same_run(r, match)), None)
        found = {**(found or run_search(plan, cfg, method, seed, len(points), target, given, storage)), **key}
        records.append(found)
        save(records)
        return found

    grid = search("grid", 0, None, points)
    target = max(trial["value"] for trial in grid["trials"]) - args.tolerance
    for method in args.methods:
        for seed in range(args.repeats):
            record = search(method, seed, target, None)
            print(f"[search_efficiency] {dataset} {method} seed {seed}: reached at {record['reached_at']} "
                  f"trial-epochs ({record['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return records


def _fmt_point(params: Mapping[str, Any]) -> str:
    return f"margin {float(params['margin']):.2g}, gamma {float(params['gamma']):.2g}"


def summarise(records: list[dict[str, Any]], args: argparse.Namespace, command: str) -> list[str]:
    lines = [
        f"Command: `{command}` ({args.epochs} epochs x {records[0]['iterations']} iterations per trial, ASHA grace "
        f"{args.grace_period} and factor 3 for TPE, 2 trials at a time, {args.repeats} searcher seeds; "
        f"target: within {args.tolerance:g} of the grid's best validation Dice)",
        "",
        "| dataset | grid: best val Dice (setting), compute | searcher | trial-epochs to reach the target, per seed "
        "| median | % of the grid's compute, median (range) | trials to reach, per seed "
        "| best val Dice found, per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        grid = next(r for r in records if r["dataset"] == dataset and r["method"] == "grid")
        best = max(grid["trials"], key=lambda t: t["value"])
        grid_compute = grid["compute"]
        head = f"{best['value']:.3f} ({_fmt_point(best['params'])}), {grid_compute}"
        for method in args.methods:
            rows = [r for r in records if r["dataset"] == dataset and r["method"] == method]
            if not rows:
                continue
            costs = [r["reached_at"] if r["reached_at"] is not None else math.inf for r in rows]
            shown = [str(c) if c != math.inf else f">{r['compute']}" for c, r in zip(costs, rows)]
            median = statistics.median(costs)
            fractions = [100 * c / grid_compute for c in costs]
            span = (f"{min(fractions):.0f}-{max(fractions):.0f}" if math.isfinite(max(fractions)) else
                    f"{min(fractions):.0f}-not reached" if math.isfinite(min(fractions)) else "none reached")
            median_text = f"{median:.0f}" if math.isfinite(median) else "not reached"
            percent = f"{100 * median / grid_compute:.0f}% ({span})" if math.isfinite(median) else f"- ({span})"
            trials = ", ".join(str(r["trials_to_reach"]) if r["trials_to_reach"] else "-" for r in rows)
            found = ", ".join(f"{max(t['value'] for t in r['trials']):.3f}" if r["trials"] else "-" for r in rows)
            lines.append(f"| {dataset} | {head} | {method} | {', '.join(shown)} | {median_text} | {percent} "
                         f"| {trials} | {found} |")
            head = ""
            if method == "tpe_asha":
                reached = sum(math.isfinite(c) for c in costs)
                best_found = statistics.median(max(t["value"] for t in r["trials"]) for r in rows if r["trials"])
                verdicts.append((dataset, median / grid_compute if math.isfinite(median) else math.inf,
                                 reached, len(rows), best_found, best["value"] - args.tolerance,
                                 statistics.median(r["compute"] for r in rows)))
    lines.append("")
    for dataset, fraction, reached, runs, found, target, spent in verdicts:
        if math.isfinite(fraction):
            met = "meets" if fraction <= args.goal else "misses"
            lines.append(f"- {dataset}: TPE + ASHA needs {100 * fraction:.0f}% of the grid's compute (median over "
                         f"seeds): {met} the goal of at most {100 * args.goal:.0f}%.")
        else:
            lines.append(f"- {dataset}: TPE + ASHA reaches the target in {reached} of {runs} searches, so the median "
                         f"is not reached: **misses the goal** of at most {100 * args.goal:.0f}%. "
                         "With its whole budget "
                         f"(median {spent:.0f} trial-epochs, {100 * spent / grid_compute:.0f}% of the grid's) its best "
                         f"validation Dice is {found:.3f} (median over seeds), {target - found:.3f} below the target "
                         f"{target:.3f}.")
    rungs = rung_correlations(records, args)
    if rungs:
        lines += ["", rungs]
    determinism = check_determinism(records)
    if determinism:
        lines += ["", determinism]
    return lines


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    for rank, index in enumerate(order):
        ranks[index] = float(rank)
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Rank correlation (ties broken by order; enough for a diagnostic)."""
    ra, rb = _ranks(a), _ranks(b)
    mean_a, mean_b = statistics.mean(ra), statistics.mean(rb)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(ra, rb))
    norm = math.sqrt(sum((x - mean_a) ** 2 for x in ra) * sum((y - mean_b) ** 2 for y in rb))
    return cov / norm if norm else math.nan


def rung_correlations(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """How well the validation Dice at ASHA's rungs predicts the last epoch's, across the grid."""
    messages = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        grid = next(r for r in records if r["dataset"] == dataset and r["method"] == "grid")
        curves = [t.get("curve") or [] for t in grid["trials"]]
        if len(curves) < 3 or not all(len(c) == args.epochs for c in curves):
            continue
        rungs, rung = [], args.grace_period
        while rung < args.epochs:
            rungs.append(rung)
            rung *= 3
        final = [c[-1] for c in curves]
        shown = ", ".join(f"epoch {r}: {spearman([c[r - 1] for c in curves], final):.2f}" for r in rungs)
        messages.append(f"{dataset}: {shown}")
    if not messages:
        return ""
    return ("Rank correlation, across the grid's trials, of the validation Dice at ASHA's rungs with the "
            "last epoch's (1: the rung ranks trials as the end does; 0: no better than chance): "
            + "; ".join(messages) + ".")


def check_determinism(records: list[dict[str, Any]]) -> str:
    """Compare the grid's value at the authors' default with what the anchored TPE runs got there."""
    messages = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        grid = next(r for r in records if r["dataset"] == dataset and r["method"] == "grid")
        reference = {(round(float(t["params"]["margin"]), 6), round(float(t["params"]["gamma"]), 6)): t["value"]
                     for t in grid["trials"] if t["epochs"] == max(x["epochs"] for x in grid["trials"])}
        differences = []
        for record in records:
            if record["dataset"] != dataset or record["method"] == "grid":
                continue
            for trial in record["trials"]:
                key = (round(float(trial["params"]["margin"]), 6), round(float(trial["params"]["gamma"]), 6))
                if key in reference and trial["epochs"] == max(x["epochs"] for x in grid["trials"]):
                    differences.append(abs(trial["value"] - reference[key]))
        if differences:
            messages.append(f"{dataset}: {len(differences)} searcher trials repeated a grid point, largest "
                            f"difference in validation Dice {max(differences):.4f}")
    return (
        ("Reproducibility check (same setting, same seed, another process): " + "; ".join(messages) + ".")
        if messages
        else ""
    )


def plot(records: list[dict[str, Any]], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.6), squeeze=False)
    colours = {"grid": "black", "tpe_asha": "tab:blue", "tpe_asha_no_anchors": "tab:green", "random": "tab:orange",
               "tpe_no_asha": "tab:purple", "tpe_asha_single_anchors": "tab:red"}
    for axis, dataset in zip(axes[0], datasets):
        for record in (r for r in records if r["dataset"] == dataset):
            best, xs, ys = -math.inf, [], []
            for trial in record["trials"]:
                best = max(best, trial["value"])
                xs.append(trial["compute_so_far"])
                ys.append(best)
            label = record["method"] if record["seed"] == 0 else None
            axis.step(xs, ys, where="post", color=colours.get(record["method"]), alpha=0.8, label=label)
        grid = next(r for r in records if r["dataset"] == dataset and r["method"] == "grid")
        target = max(t["value"] for t in grid["trials"]) - args.tolerance
        axis.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
        axis.axvline(args.goal * grid["compute"], color="red", linestyle=":", linewidth=1, label="goal (30% of grid)")
        axis.set_title(dataset)
        axis.set_xlabel("trial-epochs")
        axis.set_ylabel("best validation Dice so far")
        axis.set_ylim(bottom=max(0.0, target - 0.15))
    axes[0][0].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="of synth_lesions, synth_organs, brain_atlas (default: the synthetic two, "
                             "plus brain_atlas when data/Dataset901_BrainAtlas exists)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS + EXTRA_METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--grace-period", type=int, default=4)
    parser.add_argument("--tolerance", type=float, default=0.01, help="1 Dice point")
    parser.add_argument("--goal", type=float, default=0.30)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides of conf/tune.yaml")
    parser.add_argument("--quick", action="store_true", help="tiny data and network, a 2x2 grid, 1 repeat, 3 epochs")
    parser.add_argument("--json", type=Path, help="write every search's record here, after each one")
    parser.add_argument("--resume", action="store_true", help="take the searches already in --json (an interrupted "
                        "run with the same options) instead of running them again")
    parser.add_argument("--figure", type=Path, help="write the best-so-far curves here (PNG)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs, args.grace_period = 1, 3, 1
    datasets = args.datasets or (["synth_lesions"] if args.quick else
                                 ["synth_lesions", "synth_organs"] + (["brain_atlas"] if BRAIN_ATLAS.is_dir() else []))
    unknown = sorted(set(datasets) - set(DATASET_OVERRIDES))
    if unknown:
        parser.error(f"--datasets {unknown}: expected some of {sorted(DATASET_OVERRIDES)}")
    command = "python bench/search_efficiency.py" + (" --quick" if args.quick else "")
    if args.datasets:
        command += " --datasets " + " ".join(args.datasets)
    if not args.quick:
        command += f" --repeats {args.repeats} --epochs {args.epochs} --grace-period {args.grace_period}"
    if args.methods != list(METHODS):
        command += " --methods " + " ".join(args.methods)
    if args.override:
        command += " --override " + " ".join(args.override)
    if "brain_atlas" in datasets and not BRAIN_ATLAS.is_dir():  # `asymtune data prepare brain_atlas`, a few seconds
        from asymtune.data.builtin_real import prepare_builtin

        prepare_builtin("brain_atlas", BRAIN_ATLAS.parent)
    stored = json.loads(args.json.read_text()) if args.resume and args.json and args.json.is_file() else []
    records: list[dict[str, Any]] = []

    def save(dataset_records: list[dict[str, Any]]) -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(records + dataset_records, indent=1))

    with tempfile.TemporaryDirectory(prefix="asymtune-search-efficiency-") as tmp:
        for dataset in datasets:
            records += run_dataset(dataset, args, Path(tmp), stored, save)
    lines = summarise(records, args, command)
    if args.figure:
        plot(records, args, args.figure)
        lines += ["", f"![best validation Dice so far against trial-epochs]({args.figure.name})"
                  if args.figure.parent.name != "figures" else
                  f"![best validation Dice so far against trial-epochs](figures/{args.figure.name})"]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

"""Scale on a simulated cluster: makespan, driver cost as trials grow, asymtune's layers over bare Ray Tune.

A **simulation**: a local Ray runtime with many logical CPUs (``ray.num_cpus``, more than the
machine has cores) and trials that train no network (``train.simulate_epoch_seconds``,
:mod:`asymtune.train.simulated`: each epoch sleeps, the metrics follow a simulated learning
curve). Everything else is real: ``asymtune tune``'s pipeline, Ray Tune, OptunaSearch on the RDB,
ASHA, MLflow nested runs with per-epoch metrics, checkpoints and diagnostics, the confirmation
race on Ray tasks, the report. The datasets are the built-in synthetic ones (small, loaded by
every trial, never trained on). Three measurements, each in a fresh process, repeated
``--repeats`` times round-robin (interleaved), reported as the median with its range:

- **makespan**: ``asymtune tune`` on ``--datasets`` datasets x ``--trials`` trials on ``--slots``
  logical CPUs (one per trial), every dataset side by side with ``slots / datasets`` concurrent
  trials each, against the ideal: the stand-in seconds of everything the run
  trained (every epoch of every sweep trial, every confirmation training) / slots; and where the
  time beyond the ideal went, from Ray's task events (:func:`slot_use`). Epochs of 10 s: with
  shorter ones the CPU work of 32 trial processes and the driver on 2 cores, not the
  orchestration, sets the makespan (2-s epochs: a CPU floor of 1.84x the ideal in a run at 8b9ecd6).
- **growth**: one dataset, ``--growth`` trials each (same slots, shorter trials, no
  confirmation): the driver process's CPU seconds during the sweep per trial and per reported
  result, and the report build's seconds. Linear cost means the per-trial figure stays flat.
- **layers**: ``--layers-trials`` identical trials (the baseline setting, ASHA never stopping
  one) as ``asymtune tune`` (confirmation off: it trains more models) and as a bare ``Tuner.fit``
  of the same stand-in trainable (no Optuna, no MLflow, no checkpoints, no report): wall and
  driver CPU, and their ratio.

Driver CPU is ``time.process_time()`` of the process that runs the stage (all its threads); Ray's
own processes (raylet, GCS) and the trial processes are not counted.

Records: with ``--json``, each measurement's record (what was measured, with which arguments, in
which repeat, when, at which commit, on which CPU, and its figures) is written to that file as soon
as it ends (committed: ``docs/data/scale.json``), and the block is rendered from the records. A run
without ``--resume`` first drops the file's records of the measurements it will make; ``--resume``
takes the records already in the file for the same measurement, arguments and repeat, measured on
this CPU type (another one's are measured again), instead of measuring again, so a run of several
hours can be split over several invocations (the block says how many were taken).

    python bench/scale.py                # the published figures (about 140 min on 2 cores)
    python bench/scale.py --quick        # 2 datasets x 8 trials on 8 slots, growth 20 and 100, 1 repeat
    python bench/scale.py --json docs/data/scale.json --resume   # continue an interrupted run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _machine import BusyCores, cpu_model  # bench/ is on sys.path when a script runs
from _output import emit

ROOT = Path(__file__).resolve().parent.parent
DATA_PARAMS = {"image_size": 32, "n_train": 8, "n_val": 8, "n_test": 8}
MODEL = {"name": "unet", "base_channels": 4, "depth": 2, "norm": "instance"}
FIXED_SPACE = {
    "form": "paper",
    "params": {"margin": {"type": "categorical", "choices": [0.0]}},
    "fixed": {"schedule": "separate"},
}
RAY_TUNE_ANCHOR = (
    "Ray Tune's own scalability benchmark: 10,000 trials of 1 s on 16 cores in 715 s against 625 s minimum "
    "(ratio 1.14)"
)
GOALS = {"makespan": 1.10, "growth": 1.5, "layers": 1.10}
TRAINING_TASK = "train_job"
"""The Ray task name of a confirmation training (:func:`asymtune.confirm.jobs.train_job`)."""


# ------------------------------------------------------------------------------- the runs
def dataset_sets(count: int) -> dict[str, dict[str, Any]]:
    """``count`` datasets: the two synthetic sources in turn, each with its own seed and name."""
    sources = ("synth_lesions", "synth_organs")
    return {
        f"sim_{sources[index % 2].removeprefix('synth_')}_{index}": {
            "source": sources[index % 2], "params": {**DATA_PARAMS, "seed": index},
        }
        for index in range(count)
    }


def tune_config(
    output_dir: Path, datasets: int, trials: int, slots: int, epochs: int, epoch_seconds: float, grace_period: int,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """The resolved ``conf/tune.yaml`` of one simulated sweep."""
    from asymtune.cli import compose

    cfg = compose("tune", [
        f"output_dir={output_dir}", "verbose=0", f"ray.num_cpus={slots}", "resources.cpu=1",
        f"search.num_samples={trials}", f"search.max_concurrent_trials={slots}",
        f"search.scheduler.grace_period={grace_period}", f"train.epochs={epochs}",
        f"train.simulate_epoch_seconds={epoch_seconds}", "train.device=cpu",
        *(f"model.{key}={value}" for key, value in MODEL.items() if key != "name"),
        *overrides,
    ])
    cfg["data"]["sets"] = dataset_sets(datasets)
    return cfg


def _work(output_dir: Path) -> dict[str, Any]:
    """Epochs trained by the sweep trials, results reported, confirmation trainings (not reused), and
    per dataset (``per_dataset``) its sweep's trial-epochs and the rounds of trainings its confirmation
    waited on (the race's seeds and whether the verdict's seeds were a round of their own: report.json)."""
    from mlflow.tracking import MlflowClient

    from asymtune.results.layout import REPORT_JSON, read_manifest
    from asymtune.results.trials import load_trials
    from asymtune.tracking.confirmation import list_confirmation_runs

    manifest = read_manifest(output_dir)
    report = json.loads((output_dir / REPORT_JSON).read_text())["datasets"]
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    per_dataset = {}
    for name, entry in manifest["datasets"].items():
        records = load_trials(entry["experiment_dir"])
        runs = list_confirmation_runs(client, entry["parent_run_id"])
        per_dataset[name] = {
            "trials": len(records), "trial_epochs": sum(record.epochs for record in records),
            "confirm_trainings": sum(run.trained_here for run in runs),
            **_race_rounds((report[name].get("decision") or {}).get("race") or {}),
        }
    totals = {key: sum(d[key] for d in per_dataset.values()) for key in ("trials", "trial_epochs", "confirm_trainings")}
    return {**totals, "per_dataset": per_dataset}


def _race_rounds(race: Mapping[str, Any]) -> dict[str, int]:
    """The race's seeds per setting, and 1 when the verdict's seeds were a round of their own
    (``decision.race`` of report.json; zeros without a race)."""
    seeds = int(race.get("seeds") or 0)
    return {"seeds": seeds, "verdict_round": int(int(race.get("verdict_seeds") or 0) > seeds)}


def worker_processes() -> int:
    """Worker processes that this process's Ray runtime has started so far (trial actors,
    confirmation tasks, Ray's idle workers; one ``python-core-worker-*.log`` each in the session's logs)."""
    from ray._private import worker

    session = Path(worker._global_node.get_session_dir_path())
    return len(list((session / "logs").glob("python-core-worker-*.log")))


def sweep_phases(output_dir: Path, started: float, slots: int) -> dict[str, float | None]:
    """Where a makespan run's time went, from its sweep trials' MLflow runs (the driver opens a
    trial's run when the trial starts and closes it when it ends; times in seconds since ``started``,
    the moment ``run_tune`` was called):

    - ``first_trial``: the first sweep trial's start (stores, Ray and the first worker started);
    - ``all_slots``: when ``slots`` sweep trials first ran at once (None: never; each running trial
      holds a worker, so this is when every slot's worker had started);
    - ``sweeps_end``: the last sweep trial's end; the rest of the makespan is confirmation and report;
    - ``sweep_occupancy``: trial-run seconds / (``slots`` x ``sweeps_end``), the share of the slots
      that held a sweep trial until the sweeps ended.
    """
    from mlflow.tracking import MlflowClient

    from asymtune.results.layout import read_manifest

    tracking = read_manifest(output_dir)["mlflow"]
    client = MlflowClient(tracking_uri=tracking["tracking_uri"])
    experiment = client.get_experiment_by_name(tracking["experiment_name"])
    runs = client.search_runs([experiment.experiment_id], "tags.`asymtune.role` = 'trial'", max_results=50_000)
    spans = [(run.info.start_time / 1000 - started, run.info.end_time / 1000 - started)
             for run in runs if run.info.end_time]
    return phases_of(spans, slots)


def phases_of(spans: Sequence[tuple[float, float]], slots: int) -> dict[str, float | None]:
    """:func:`sweep_phases` from the trials' ``(start, end)`` seconds (an end before a start at the
    same moment: a slot handed from one trial to the next is not counted as all slots busy)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running, all_slots = 0, None
    for moment, change in events:
        running += change
        if running >= slots and all_slots is None:
            all_slots = moment
    sweeps_end = max(end for _, end in spans)
    return {
        "first_trial": min(start for start, _ in spans), "all_slots": all_slots, "sweeps_end": sweeps_end,
        "sweep_occupancy": sum(end - start for start, end in spans) / (slots * sweeps_end),
    }


def task_spans(started: float) -> list[tuple[tuple[float, float], str]]:
    """Every Ray task this runtime executed (a trial's epoch, its checkpoint save, a confirmation
    training, a test evaluation ...) as ``((start, end), name)``: seconds since ``started`` (a
    ``time.time()``) and the task's name (:data:`TRAINING_TASK` for a confirmation training), from
    Ray's task events (``ray.timeline()``)."""
    import ray

    return [
        ((event["ts"] / 1e6 - started, (event["ts"] + event["dur"]) / 1e6 - started),
         str(event["cat"]).removeprefix("task::"))
        for event in ray.timeline() if event.get("ph") == "X" and str(event.get("cat", "")).startswith("task::")
    ]


def slot_use(spans: Sequence[tuple[float, float]], slots: int, wall: float, ideal: float,
             bucket: float = 5.0) -> dict[str, float]:
    """Where a makespan run's time went beyond its ideal, from its tasks' ``(start, end)`` seconds
    since ``run_tune`` was called, in seconds of the makespan (slot-seconds / ``slots``):

    - ``before``: until the first task starts (stores, Ray, the plans); ``after``: from the last
      task's end (the report);
    - ``ramp``: idle slots from the first task until, for the first time, ``slots - 2`` tasks run
      at once over a ``bucket`` (workers starting); ``tail``: idle slots after the last such
      bucket (the last confirmation rounds); ``between``: idle slots in the rest;
    - ``beyond``: task time beyond the stand-in seconds (each epoch's and training's own
      overhead, checkpoint saves, test evaluations).

    ``ideal`` + all six = ``wall``, up to the tasks that overlap on a slot (none: one task per
    worker at a time). ``ramp_s``, ``tail_s``: the two phases' lengths.
    """
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    count = int((last - first) // bucket) + 1
    busy = [0.0] * count
    for start, end in spans:
        moment = start
        while moment < end:
            index = min(int((moment - first) // bucket), count - 1)
            step = min(end, first + (index + 1) * bucket) - moment
            busy[index] += max(step, 0.0)
            moment += max(step, 1e-9)
    lengths = [min(bucket, last - first - index * bucket) for index in range(count)]
    full = [index for index in range(count) if busy[index] >= (slots - 2) * lengths[index]]
    ramp_end, tail_start = (full[0], full[-1] + 1) if full else (count, count)

    def idle(indices: range) -> float:
        return sum(slots * lengths[i] - busy[i] for i in indices) / slots

    task_seconds = sum(end - start for start, end in spans)
    return {
        "before": first, "after": wall - last, "ramp": idle(range(0, ramp_end)), "ramp_s": sum(lengths[:ramp_end]),
        "between": idle(range(ramp_end, tail_start)), "tail": idle(range(tail_start, count)),
        "tail_s": sum(lengths[tail_start:]), "beyond": task_seconds / slots - ideal,
    }


def critical_path(per_dataset: Mapping[str, Mapping[str, int]], slots_each: int, first_seeds: int, epochs: int,
                  epoch_seconds: float, rounds_wait: bool = True) -> float:
    """The longest dataset's lower bound on its own time: its sweep's stand-in seconds on its
    ``slots_each`` slots, then one training's seconds per round of its confirmation race (the first
    round trains ``first_seeds`` seeds at once, each later round one more, then the verdict's seeds
    at once; rounds wait on each other). Without ``rounds_wait`` (``confirm.train_ahead``: later
    rounds' trainings may run beside the first), one training's seconds in all."""
    return max(
        d["trial_epochs"] * epoch_seconds / slots_each
        + ((1 + max(0, d["seeds"] - first_seeds) + d.get("verdict_round", 0)) if rounds_wait else 1)
        * epochs * epoch_seconds
        for d in per_dataset.values()
    )


def measure_makespan(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    """``asymtune tune`` as a user runs it; its wall time against the ideal."""
    from asymtune.pipeline import run_tune

    # every dataset side by side, the slots shared out: what a user of a cluster of `slots` GPUs would set
    per_dataset = max(1, args.slots // args.datasets)
    cfg = tune_config(output_dir, args.datasets, args.trials, args.slots, args.epochs, args.epoch_seconds,
                      args.grace_period, [f"search.parallel_datasets={args.datasets}",
                                          f"search.max_concurrent_trials={per_dataset}", *args.set])
    with BusyCores() as machine:
        started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
        run_tune(cfg)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    workers = worker_processes()
    work = _work(output_dir)
    stand_in = (work["trial_epochs"] + work["confirm_trainings"] * args.epochs) * args.epoch_seconds
    ideal = stand_in / args.slots
    phases = sweep_phases(output_dir, started, args.slots)
    spans = task_spans(started)
    phases.update(slot_use([span for span, _ in spans], args.slots, wall, ideal))
    phases["sweep_ideal"] = work["trial_epochs"] * args.epoch_seconds / args.slots
    # trainings run ahead of a race that no round used: every confirmation training task, less those logged
    phases["ahead_dropped"] = sum(name == TRAINING_TASK for _, name in spans) - work["confirm_trainings"]
    bound = max(ideal, critical_path(work["per_dataset"], per_dataset, int(cfg["confirm"]["seeds"]), args.epochs,
                                     args.epoch_seconds, rounds_wait=not cfg["confirm"]["train_ahead"]))
    return {**work, **phases, "wall": wall, "driver_cpu": cpu, "ideal": ideal, "ratio": wall / ideal, "bound": bound,
            "bound_ratio": wall / bound, "busy": machine.busy, "workers": workers}


def _stages(cfg: Mapping[str, Any]) -> tuple[Any, list[Any]]:
    """Stages 1 to 3 of the pipeline (check, plan, start): the context and the plans."""
    from asymtune.config import check_tune_config
    from asymtune.confirm.options import DecisionOptions
    from asymtune.pipeline import start_sweep
    from asymtune.search.plan import plan_datasets

    check_tune_config(cfg)
    resolved = json.loads(json.dumps(dict(cfg), default=str))
    decision = DecisionOptions.from_config(cfg)
    plans = plan_datasets(cfg)
    return start_sweep(cfg, Path(cfg["output_dir"]), resolved, decision), plans


def measure_growth(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    """One dataset's sweep of ``args.size`` trials, then its report, stage by stage: driver CPU of
    each. No confirmation: its trainings do not grow with the trials (the makespan run has it)."""
    from asymtune.pipeline import sweep_dataset
    from asymtune.report.build import build_report

    cfg = tune_config(output_dir, 1, args.size, args.slots, args.growth_epochs, args.growth_epoch_seconds,
                      args.growth_grace_period, ["confirm.enabled=false"])
    context, (plan,) = _stages(cfg)
    figures: dict[str, Any] = {}
    stages = (("sweep", lambda: sweep_dataset(context, plan)), ("report", lambda: build_report(context.output_dir)))
    for stage, run in stages:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        figures[f"{stage}_wall"], figures[f"{stage}_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    work = _work(output_dir)
    return {
        **figures, **work, "workers": worker_processes(), "cpu_per_trial": figures["sweep_cpu"] / work["trials"],
        "cpu_per_result": figures["sweep_cpu"] / work["trial_epochs"],
    }


def measure_layers(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    """``asymtune tune`` (no confirmation) on ``args.size`` identical trials that all run every epoch."""
    import yaml

    from asymtune.pipeline import run_tune
    from asymtune.results.layout import read_manifest

    space = output_dir.parent / "fixed_space.yaml"
    space.write_text(yaml.safe_dump(FIXED_SPACE))
    cfg = tune_config(output_dir, 1, args.size, args.slots, args.growth_epochs, args.growth_epoch_seconds,
                      args.growth_epochs, [f"search.space={space}", "confirm.enabled=false"])
    wall, cpu = time.perf_counter(), time.process_time()
    run_tune(cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fit = next(iter(read_manifest(output_dir)["datasets"].values()))["fit_seconds"]
    return {"wall": wall, "driver_cpu": cpu, "fit_wall": fit, "workers": worker_processes(), **_work(output_dir)}


def bare_trial(config: dict[str, Any]) -> None:
    """The stand-in trial under bare Ray Tune: load the dataset, build the simulated trainer, report
    every epoch's metrics; no checkpoint, no diagnostics."""
    from ray import tune

    from asymtune.data.loading import load_dataset
    from asymtune.train.factory import build_trainer

    dataset = load_dataset(config["data"], config["name"])
    trainer = build_trainer(config["run"], dataset)
    trainer.fit(lambda record: tune.report(dict(record.metrics, epoch=record.epoch)))


def measure_bare(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    """The same trials as :func:`measure_layers` under a bare ``Tuner.fit`` with ASHA."""
    import logging

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from asymtune.data.loading import load_dataset
    from asymtune.method import baseline

    (name, entry), = dataset_sets(1).items()
    dataset = load_dataset(entry, name)
    run = {
        "model": MODEL, "settings": baseline(dataset.num_classes).to_dict(),
        "train": {"epochs": args.growth_epochs, "simulate_epoch_seconds": args.growth_epoch_seconds, "device": "cpu"},
    }
    wall, cpu = time.perf_counter(), time.process_time()
    ray.init(num_cpus=args.slots, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    tuner = tune.Tuner(
        tune.with_resources(bare_trial, {"cpu": 1.0}),
        param_space={"data": entry, "name": name, "run": run},
        tune_config=tune.TuneConfig(
            metric="val/mean_fg_dice", mode="max", num_samples=args.size, max_concurrent_trials=args.slots,
            reuse_actors=True,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=args.growth_epochs,
                                    grace_period=args.growth_epochs),
        ),
        run_config=tune.RunConfig(name="bare", storage_path=str(output_dir), verbose=0),
    )
    fit = time.perf_counter()
    results = tuner.fit()
    fit = time.perf_counter() - fit
    workers = worker_processes()
    ray.shutdown()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    epochs = sum(int((result.metrics or {}).get("training_iteration", 0)) for result in results)
    return {"wall": wall, "driver_cpu": cpu, "fit_wall": fit, "trials": len(results), "trial_epochs": epochs,
            "workers": workers}


MEASURES = {"makespan": measure_makespan, "growth": measure_growth, "layers": measure_layers, "bare": measure_bare}


# ------------------------------------------------------------------------------ the driver
def run_measure(kind: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a fresh process (its own Ray runtime, stores and folders)."""
    with tempfile.TemporaryDirectory(prefix=f"scale-{kind}-") as tmp:
        record = Path(tmp) / "record.json"
        command = [sys.executable, __file__, "--measure", kind, "--size", str(size), "--record", str(record),
                   *_shared_arguments(args)]
        print(f"[scale] {kind} {size}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        # a Ray runtime of its own, even where `ray start` left a cluster on this machine
        subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "RAY_ADDRESS": "local"})
        result: dict[str, Any] = json.loads(record.read_text())
    print(f"[scale] {kind} {size}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def _shared_arguments(args: argparse.Namespace) -> list[str]:
    names = ("datasets", "trials", "slots", "epochs", "epoch_seconds", "grace_period", "growth_epochs",
             "growth_epoch_seconds", "growth_grace_period")
    return [item for name in names for item in (f"--{name.replace('_', '-')}", str(getattr(args, name)))] + (
        ["--set", *args.set] if args.set else [])


# ------------------------------------------------------------------------------ the records
def record_key(kind: str, size: int, repeat: int, args: argparse.Namespace) -> str:
    """The measurement a record stands for, as one comparable string: its kind, size, repeat
    (0-based) and every argument that shapes it."""
    return json.dumps({"kind": kind, "size": size, "repeat": repeat, "arguments": _shared_arguments(args)},
                      sort_keys=True)


def record_key_of(record: Mapping[str, Any]) -> str:
    """:func:`record_key` of a stored record."""
    return json.dumps({name: record.get(name) for name in ("kind", "size", "repeat", "arguments")}, sort_keys=True)


def measurement_record(kind: str, size: int, repeat: int, args: argparse.Namespace,
                       result: Mapping[str, Any]) -> dict[str, Any]:
    """One measurement's record: its key's fields, when and at which commit it was measured, its figures."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "asymtune", "conf", "search_spaces", "bench"],
                           cwd=ROOT, capture_output=True, text=True)
    return {
        "kind": kind, "size": size, "repeat": repeat, "arguments": _shared_arguments(args),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(),
        "commit": (commit.stdout.strip() or None) if commit.returncode == 0 else None,
        "uncommitted_changes": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None,
        "result": dict(result),
    }


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of ``path`` (none when it does not exist yet).

    Raises:
        ValueError: naming the file, when it is not a records file of this script.
    """
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text())["measurements"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"--json {path}: not a records file of bench/scale.py (expected a JSON object with a "
                         f"'measurements' list): {error}") from error
    return list(records)


def write_records(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "about": "bench/scale.py: one record per measurement (kind: makespan, growth, layers or bare; size: trials of "
                 "a growth, layers or bare run; repeat: 0-based; arguments: those that shape it), with the commit and "
                 "time it was measured at and its figures (result). The block of docs/benchmarks.md is rendered "
                 "from them.",
        "measurements": list(records),
    }, indent=1) + "\n")


def _shown(path: Path) -> str:
    """``path`` relative to the repository root where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def summary(values: Sequence[float], digits: int = 2) -> str:
    """``median (min-max)`` of ``values``."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def column(rows: Sequence[Mapping[str, Any]], key: str, digits: int = 2, scale: float = 1.0) -> str:
    """:func:`summary` of one figure over the repeats."""
    return summary([scale * row[key] for row in rows], digits)


def _busy(rows: Sequence[Mapping[str, Any]]) -> str:
    """The machine's busy share over the repeats, in percent (n/a where /proc/stat was not read)."""
    values = [100 * row["busy"] for row in rows if row.get("busy") is not None]
    return summary(values, 0) if values else "n/a"


def _phase(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    """A :func:`slot_use` figure over the repeats ("-" for a record made before it existed)."""
    return column(rows, key, 0) if all(key in row for row in rows) else "-"


def _reached(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    """:func:`summary` of a moment that some repeats may never have reached (None)."""
    values = [row[key] for row in rows if row.get(key) is not None]
    never = len(rows) - len(values)
    text = summary(values, 0) if values else "never"
    return text + (f"; never in {never} of {len(rows)}" if values and never else "")


def _cpu_floor(rows: Sequence[Mapping[str, Any]]) -> str:
    """The machine's CPU floor over the ideal, per repeat: the CPU-seconds every process used, over
    the cores (= busy share x makespan), divided by the ideal; n/a where /proc/stat was not read."""
    values = [row["busy"] * row["ratio"] for row in rows if row.get("busy") is not None]
    return summary(values) if values else "n/a"


def _verdict(value: float, goal: float) -> str:
    return f"{'met' if value <= goal else 'NOT met'} (goal <= {goal:.2f})"


def render(args: argparse.Namespace, runs: Mapping[tuple[str, int], list[dict[str, Any]]], command: str) -> list[str]:
    """The Markdown block: one table per measurement, medians with their ranges over repeats."""
    repeats = len(next(iter(runs.values())))
    makespan = runs[("makespan", 0)]
    lines = [
        f"Command: `{command}` (a simulation: {args.slots} logical CPUs on this machine's cores, trials that "
        "sleep instead of training; everything else real; "
        f"median (min-max) of {repeats} interleaved repeat{'s' if repeats > 1 else ''})",
        "",
        f"**Makespan**: {args.datasets} datasets x {args.trials} trials on {args.slots} slots, all datasets side by "
        f"side (`search.parallel_datasets={args.datasets}`, `search.max_concurrent_trials="
        f"{max(1, args.slots // args.datasets)}`), {args.epochs} epochs of {args.epoch_seconds:g} s (ASHA grace "
        f"period {args.grace_period}), each dataset's confirmation when its sweep ends, its part of the report when "
        "it is confirmed, then the report",
        "",
        "| makespan s | ideal s (stand-in seconds / slots) | makespan / ideal | critical-path bound s | "
        "makespan / bound | trial-epochs trained | confirmation trainings | trainings ahead dropped | "
        "worker processes | driver CPU s | machine CPU busy % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {column(makespan, 'wall', 0)} | {column(makespan, 'ideal', 0)} | {column(makespan, 'ratio')} | "
        f"{column(makespan, 'bound', 0)} | {column(makespan, 'bound_ratio')} | "
        f"{column(makespan, 'trial_epochs', 0)} | {column(makespan, 'confirm_trainings', 0)} | "
        f"{_phase(makespan, 'ahead_dropped')} | "
        f"{column(makespan, 'workers', 0)} | {column(makespan, 'driver_cpu', 0)} | {_busy(makespan)} |",
        "",
        "The critical-path bound is the longest dataset's own minimum: its sweep's stand-in seconds on its "
        f"{max(1, args.slots // args.datasets)} slots, then one training (`confirm.train_ahead`: a later round's "
        "trainings may run beside the first round's); the makespan cannot be below it or the ideal, whatever the "
        "orchestration costs. Confirmation trainings: those logged, which the ideal counts; trainings ahead "
        "dropped: trainings run ahead of a race that no round used (`confirm.train_ahead`; Ray's task events less "
        "the logged ones), not in the ideal: their slot time is in the makespan. "
        "Machine CPU busy: all cores, every process (driver, Ray's daemons, trial processes). Worker processes: "
        "those Ray started (trial actors, confirmation tasks, idle ones), from its session's logs.",
        "",
        "Where the makespan went (seconds from the start of `run_tune`; from the sweep trials' MLflow runs):",
        "",
        "| first sweep trial starts | all slots hold a sweep trial | sweeps end | sweeps' ideal (their stand-in "
        "seconds / slots) | slots holding a sweep trial until the sweeps end | confirmation and report (makespan - "
        "sweeps end) |",
        "|---|---|---|---|---|---|",
        f"| {column(makespan, 'first_trial', 0)} | {_reached(makespan, 'all_slots')} | "
        f"{column(makespan, 'sweeps_end', 0)} | {column(makespan, 'sweep_ideal', 0)} | "
        f"{column(makespan, 'sweep_occupancy', 0, 100)} % | "
        f"{summary([row['wall'] - row['sweeps_end'] for row in makespan], 0)} |",
        "",
        "The makespan beyond its ideal, in seconds (slot-seconds / slots; from Ray's task events: each trial epoch, "
        "checkpoint save, confirmation training and test evaluation is a task): before the first task (stores, Ray, "
        "plans); idle slots while workers start (until all but 2 slots run a task over 5 s), in between, and in the "
        "tail (after the last 5 s with all but 2 busy: the last confirmation rounds); task time beyond the "
        "stand-in's (overheads, saves, test evaluations, trainings ahead dropped); after the last task (the report):",
        "",
        "| makespan - ideal | before the first task | idle: start-up | idle: in between | idle: tail | "
        "beyond the stand-in | after the last task | start-up s | tail s |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {summary([row['wall'] - row['ideal'] for row in makespan], 0)} | {_phase(makespan, 'before')} | "
        f"{_phase(makespan, 'ramp')} | {_phase(makespan, 'between')} | {_phase(makespan, 'tail')} | "
        f"{_phase(makespan, 'beyond')} | {_phase(makespan, 'after')} | {_phase(makespan, 'ramp_s')} | "
        f"{_phase(makespan, 'tail_s')} |",
        "",
        f"**Growth**: one dataset, {args.growth_epochs} epochs of {args.growth_epoch_seconds:g} s (ASHA grace period "
        f"{args.growth_grace_period}), {args.slots} slots, no confirmation; driver CPU of each stage",
        "",
        "| trials | results | worker processes | sweep wall s | sweep driver CPU s | per trial ms | per result ms | "
        "report build s | report driver CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.growth:
        rows = runs[("growth", size)]
        lines.append(
            f"| {size} | {column(rows, 'trial_epochs', 0)} | {column(rows, 'workers', 0)} | "
            f"{column(rows, 'sweep_wall', 0)} | "
            f"{column(rows, 'sweep_cpu', 1)} | {column(rows, 'cpu_per_trial', 0, 1000)} | "
            f"{column(rows, 'cpu_per_result', 0, 1000)} | {column(rows, 'report_wall', 1)} | "
            f"{column(rows, 'report_cpu', 1)} |"
        )
    layers, bare = runs[("layers", args.layers_trials)], runs[("bare", args.layers_trials)]
    pairs = list(zip(layers, bare))
    lines += [
        "",
        f"**Layers**: {args.layers_trials} identical trials (the baseline, every epoch run), {args.growth_epochs} "
        f"epochs of {args.growth_epoch_seconds:g} s, {args.slots} slots; ratios per repeat",
        "",
        "| side | wall s | Tuner.fit s | driver CPU s | worker processes |",
        "|---|---|---|---|---|",
        f"| bare Ray Tune (`Tuner.fit`, ASHA, the stand-in trainable) | {column(bare, 'wall', 1)} | "
        f"{column(bare, 'fit_wall', 1)} | {column(bare, 'driver_cpu', 1)} | {column(bare, 'workers', 0)} |",
        f"| `asymtune tune` (Optuna RDB, MLflow, checkpoints, diagnostics, report; no confirmation) | "
        f"{column(layers, 'wall', 1)} | {column(layers, 'fit_wall', 1)} | {column(layers, 'driver_cpu', 1)} | "
        f"{column(layers, 'workers', 0)} |",
        f"| ratio | {summary([a['wall'] / b['wall'] for a, b in pairs])} | "
        f"{summary([a['fit_wall'] / b['fit_wall'] for a, b in pairs])} | "
        f"{summary([a['driver_cpu'] / b['driver_cpu'] for a, b in pairs])} | "
        f"{summary([a['workers'] / b['workers'] for a, b in pairs])} |",
        "",
    ]
    smallest, largest = min(args.growth), max(args.growth)
    growth = [
        large["cpu_per_trial"] / small["cpu_per_trial"]
        for small, large in zip(runs[("growth", smallest)], runs[("growth", largest)])
    ]
    layer_ratios = [a["wall"] / b["wall"] for a, b in pairs]
    lines += [
        f"- makespan / ideal: {summary([r['ratio'] for r in makespan])}, "
        f"{_verdict(statistics.median(r['ratio'] for r in makespan), GOALS['makespan'])}; "
        f"over the critical-path bound: {summary([r['bound_ratio'] for r in makespan])}. The machine's CPU floor "
        "(the CPU-seconds every process used, over the cores: busy share x makespan; no orchestration does the "
        f"same work on these cores in less) / ideal: {_cpu_floor(makespan)}. Where it is close to the makespan / "
        "ideal, the cores, shared by all logical slots, set the makespan rather than the orchestration.",
        f"- driver CPU per trial at {largest} trials / at {smallest}: {summary(growth)}, "
        f"{_verdict(statistics.median(growth), GOALS['growth'])}.",
        f"- asymtune's layers / bare Ray Tune, whole command wall time: {summary(layer_ratios)}, "
        f"{_verdict(statistics.median(layer_ratios), GOALS['layers'])}.",
        f"- Anchor: {RAY_TUNE_ANCHOR}.",
    ]
    return lines


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--trials", type=int, default=32, help="trials per dataset of the makespan run")
    parser.add_argument("--slots", type=int, default=32, help="logical CPUs of the Ray runtime, one per trial")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--epoch-seconds", type=float, default=10.0, help="stand-in seconds per epoch (makespan)")
    parser.add_argument("--grace-period", type=int, default=2)
    parser.add_argument("--growth", type=int, nargs="+", default=[100, 2000], help="trials of the growth series")
    parser.add_argument("--growth-epochs", type=int, default=3)
    parser.add_argument("--growth-epoch-seconds", type=float, default=0.5)
    parser.add_argument("--growth-grace-period", type=int, default=1)
    parser.add_argument("--layers-trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="asymtune config overrides of the makespan run, e.g. confirm.train_ahead=false (an A/B)")
    parser.add_argument("--quick", action="store_true", help="2 datasets x 8 trials on 8 slots, growth 20 and 100, "
                        "1 repeat: checks that it runs")
    parser.add_argument("--json", type=Path, help="the measurements' records: each written as soon as it ends "
                        "(records of other arguments already there are kept)")
    parser.add_argument("--resume", action="store_true",
                        help="take the records in --json of the same measurement, arguments and repeat instead of "
                        "measuring again")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.resume and not args.json:
        parser.error("--resume: takes the records of --json; give --json PATH")
    if args.json:
        args.json = args.json.resolve()
    if args.quick:
        args.datasets, args.trials, args.slots, args.repeats = 2, 8, 8, 1
        args.growth, args.layers_trials = [20, 100], 20
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.measure:  # one measurement, in its own process
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            result = MEASURES[args.measure](args, Path(tmp) / "out")
        args.record.write_text(json.dumps(result))
        return 0
    plan = [("makespan", 0), *(("growth", size) for size in args.growth), ("layers", args.layers_trials),
            ("bare", args.layers_trials)]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {key: [] for key in plan}
    records = read_records(args.json) if args.json else []
    if args.json and not args.resume:  # a new measurement: no record of an earlier run is left to be resumed
        planned = {record_key(kind, size, repeat, args) for repeat in range(args.repeats) for kind, size in plan}
        records = [record for record in records if record_key_of(record) not in planned]
        write_records(args.json, records)
    taken = 0
    for repeat in range(args.repeats):  # interleaved: machine noise hits every measurement alike
        for kind, size in plan:
            key = record_key(kind, size, repeat, args)
            same = [record for record in records if record_key_of(record) == key] if args.resume else []
            kept = [record for record in same if record.get("cpu") == cpu_model()]  # timed on this CPU type only
            if same and not kept:
                print(f"[scale] the record of {kind} {size} repeat {repeat} was measured on another CPU than this "
                      f"one ({cpu_model()}) or on one not recorded: measured again", file=sys.stderr, flush=True)
            if kept:
                runs[(kind, size)].append(kept[-1]["result"])
                taken += 1
                continue
            result = run_measure(kind, size, args)
            runs[(kind, size)].append(result)
            if args.json:  # at once: an interrupted run keeps what it measured
                records = [record for record in records if record_key_of(record) != key]
                records.append(measurement_record(kind, size, repeat, args, result))
                write_records(args.json, records)
    command = "python bench/scale.py" + (" --quick" if args.quick else "") + (
        f" --set {' '.join(args.set)}" if args.set else "") + (f" --json {_shown(args.json)}" if args.json else "")
    lines = render(args, runs, command)
    if taken:
        lines[0] += (f". {taken} of {args.repeats * len(plan)} measurements were taken from an earlier invocation's "
                     f"records (`--resume`, `{_shown(args.json)}`), not measured by this command")
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())

"""``asymtune tune``, stage by stage: config -> plan -> sweep -> confirm -> report/export.

1. **check**: every config value and cross-field rule (:mod:`asymtune.config`), before anything
   is prepared or created;
2. **plan**: every dataset loaded and checked against the search space, the model and the
   objective (:func:`asymtune.search.plan.plan_datasets`), and the decision options;
3. **start**: the output folder, the stores (Ray Tune storage, MLflow experiment, Optuna RDB),
   the Ray runtime and the manifest (:class:`SweepContext`);
4. **per dataset**, an independent unit of work (:func:`run_dataset`):
   **sweep** (Optuna through Ray Tune, tracked in MLflow: :class:`DatasetSweep`), then
   **confirm** (retrain the leaders and the baseline over seeds, choose on validation, test
   once: :class:`asymtune.confirm.retrain.Confirmation`), then its part of the report (its plots,
   exported config and numbers: :func:`asymtune.report.build.dataset_part`); up to
   ``search.parallel_datasets`` datasets run side by side, so that a job lasts about its longest
   dataset, not their sum;
5. **report**: ``report.md``, ``report.html`` and ``report.json`` assembled from the datasets'
   parts once all are done (:func:`asymtune.report.build.build_report`).

Datasets side by side: each dataset's unit runs in its own thread of this driver
(:mod:`asymtune.side_by_side`), with its own ``tune.Tuner``, Optuna study, ASHA and MLflow
tracker, exactly as one dataset alone; at most ``search.parallel_datasets`` x
``search.max_concurrent_trials`` trials run at once, and Ray queues what the cluster cannot hold.
Why threads of one driver rather than one Ray task per dataset or one multiplexing ``Tuner``
(Ray 2.60; ``docs/architecture.md`` has the details): Ray Tune's driver loop only talks to Ray,
which accepts calls from any thread, and it installs its Ctrl+C handler only in the main thread;
the trial table, the logs and the MLflow and Optuna writes stay in this process, where the
local stores live; one ``Tuner`` per dataset keeps each dataset's experiment folder, resume and
study as they were. Two things are shared and guarded here: the manifest (one lock) and torch's
global random generator, which in-process confirmations (``confirm.executor=local``) seed, so
those run one at a time.

Every stage reads what the earlier ones wrote through the output folder's contract
(:mod:`asymtune.results`), so ``asymtune report`` rebuilds stage 5 alone, and rerunning the same
command resumes where an interrupted run stopped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asymtune.config import ConfigError, check_cluster_resources, check_tune_config
from asymtune.confirm.executors import LocalExecutor, RayExecutor
from asymtune.confirm.options import DecisionOptions
from asymtune.confirm.retrain import Confirmation, confirm_dataset
from asymtune.paths import resolve_search_space
from asymtune.report.build import DatasetPart, build_report, dataset_part
from asymtune.report.export import dataset_fingerprint
from asymtune.report.render import DatasetReport
from asymtune.results.layout import MANIFEST, RESOLVED_CONFIG, write_manifest
from asymtune.results.sqlite import local_sqlite_in_wal_mode
from asymtune.results.storage import check_storage, resolve_storage_path
from asymtune.search.plan import DatasetPlan, plan_datasets
from asymtune.search.priority import local_worker_priority, priority_runtime_env, warn_if_unreachable
from asymtune.search.progress import quiet_terminal
from asymtune.search.storage import open_optuna_storage
from asymtune.search.sweep import experiment_path, run_dataset_sweep
from asymtune.search.warm_start import WarmStart, plan_warm_starts
from asymtune.side_by_side import run_side_by_side
from asymtune.tracking import (
    DatasetRecord,
    MLflowSweepTracker,
    TrialParams,
    drop_lost_trials,
    get_or_create_experiment,
)
from asymtune.versions import code_version, library_versions

log = logging.getLogger(__name__)
# Keys (dotted prefixes) that may change between an interrupted run and its resume.
RESUME_FREE_KEYS = (
    "ray", "verbose", "report", "resources.wait_for_resources", "mlflow.request_retries", "mlflow.request_timeout_s",
    "mlflow.flush_timeout_s", "selection", "confirm", "export", "search.parallel_datasets",
)
_MANIFEST_LOCK = threading.Lock()  # datasets side by side update their manifest entries
_IN_PROCESS_TRAINING = threading.Lock()  # trainings in the driver seed torch's global generator


@dataclass(frozen=True)
class SweepContext:
    """What every dataset's unit of work shares (stage 3's output).

    Attributes:
        cfg: the resolved ``conf/tune.yaml``.
        output_dir: the sweep's folder (absolute).
        sweep_id: identifies the sweep across resumes (MLflow tags, Optuna study names).
        tracking_uri: the MLflow tracking URI.
        artifact_location: the artifact root of a local MLflow store (None for a server).
        optuna_storage: the Optuna storage's URL (a database, or ``journal:///PATH``).
        storage_path: Ray Tune's storage (a path or a URI, :mod:`asymtune.results.storage`).
        decision: the selection, confirmation and export options.
        warm_starts: per dataset, the earlier trials its sweep starts from (``search.warm_start``).
    """

    cfg: Mapping[str, Any]
    output_dir: Path
    sweep_id: str
    tracking_uri: str
    artifact_location: str | None
    optuna_storage: str
    storage_path: str
    decision: DecisionOptions
    warm_starts: Mapping[str, WarmStart] = field(default_factory=dict)

    @property
    def experiment_name(self) -> str:
        return str(self.cfg["mlflow"]["experiment_name"])

    @property
    def search_space(self) -> str:
        return str(resolve_search_space(str(self.cfg["search"]["space"])))


@dataclass(frozen=True)
class DatasetSweep:
    """One dataset's sweep as the manifest records it (stage 4a's output).

    Attributes:
        name: the dataset's name.
        experiment_dir: Ray Tune's experiment folder of the sweep.
        study_name: the Optuna study.
        parent_run_id: the MLflow parent run of the dataset.
        class_names: the dataset's classes, background first.
        resumed: whether an interrupted sweep was continued.
        fit_seconds: wall time of this run of the sweep.
    """

    name: str
    experiment_dir: str
    study_name: str
    parent_run_id: str
    class_names: tuple[str, ...]
    resumed: bool
    fit_seconds: float

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "experiment_dir": self.experiment_dir, "study_name": self.study_name,
            "parent_run_id": self.parent_run_id, "class_names": list(self.class_names),
            "fit_seconds": round(self.fit_seconds, 2),
        }


# ------------------------------------------------------------------------------------ the story
def run_tune(cfg: Mapping[str, Any]) -> float:
    """Run the whole product on a resolved ``conf/tune.yaml``.

    Returns:
        the mean over datasets of the selected settings' validation objective
        (:func:`mean_selected_objective`; NaN when nothing was selected).
    """
    check_tune_config(cfg)  # 1. check: values and cross-field rules, before anything is prepared
    quiet_terminal(int(cfg["verbose"]))  # at the default verbose=1: one progress line per dataset, no INFO chatter
    output_dir = Path(cfg["output_dir"]).expanduser().resolve()
    resolved = json.loads(json.dumps(dict(cfg), default=str))
    _check_resume(output_dir, resolved)
    decision = _decision_options(cfg)  # 2. plan: the decision options, every dataset checked
    plans = plan_datasets(cfg)
    warm_starts = plan_warm_starts(cfg, plans)  # the earlier sweep's best settings, read before anything starts
    context = start_sweep(cfg, output_dir, resolved, decision, warm_starts)  # 3. start: stores, Ray, manifest
    parts = run_side_by_side(  # 4. each dataset: sweep, confirm, its part of the report; datasets side by side
        [(plan.name, functools.partial(run_dataset, context, plan)) for plan in plans],
        int(cfg["search"]["parallel_datasets"]),
    )
    if cfg["report"]["enabled"]:
        log.info("writing the report of %d datasets", len(plans))
    reports = (  # 5. the report, from the datasets' parts
        build_report(output_dir, parts={plan.name: part for plan, part in zip(plans, parts) if part is not None})
        if cfg["report"]["enabled"] else []
    )
    print(f"asymtune: report at {output_dir / 'report.html'}; configs in {output_dir / 'configs'}")
    return mean_selected_objective(reports, str(cfg["objective"]["metric"]))


def run_dataset(context: SweepContext, plan: DatasetPlan) -> DatasetPart | None:
    """One dataset's unit of work: its sweep, then (when enabled) its confirmation, then (when
    enabled) its part of the report: plots, exported config, numbers (None: no report). Independent
    of the other datasets', so that datasets can run side by side and a dataset's report work
    overlaps the others' trainings."""
    sweep_dataset(context, plan)
    if context.decision.confirm.enabled:
        confirm_swept_dataset(context, plan.name)
    return dataset_part(context.output_dir, plan.name) if context.cfg["report"]["enabled"] else None


# ------------------------------------------------------------------------------------- 1. check
def _decision_options(cfg: Mapping[str, Any]) -> DecisionOptions:
    """``selection``, ``confirm`` and ``export``, checked before any trial starts."""
    try:
        return DecisionOptions.from_config(cfg)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _check_resume(output_dir: Path, resolved: dict[str, Any]) -> None:
    """An ``output_dir`` that holds a sweep is resumed only with the same config (but for
    :data:`RESUME_FREE_KEYS`)."""
    path = output_dir / RESOLVED_CONFIG
    if not path.is_file():
        return
    stored_config = yaml.safe_load(path.read_text())
    if "faults" in stored_config:
        raise ConfigError(
            f"output_dir {output_dir} holds a sweep made by an asymtune older than the trial contract "
            "(its trials do not record their resolved settings), which cannot be resumed: choose a new output_dir"
        )
    stored = _flatten(stored_config)
    current = _flatten(resolved)
    changed = sorted(
        key for key in set(stored) | set(current)
        if not any(key == free or key.startswith(free + ".") for free in RESUME_FREE_KEYS)
        and stored.get(key) != current.get(key)
    )
    if changed:
        raise ConfigError(
            f"output_dir {output_dir} holds a sweep made with a different config (changed: {', '.join(changed)}): "
            "rerun with the same values to resume it, or choose a new output_dir"
        )


# ------------------------------------------------------------------------------------- 3. start
def start_sweep(
    cfg: Mapping[str, Any], output_dir: Path, resolved: Mapping[str, Any], decision: DecisionOptions,
    warm_starts: Mapping[str, WarmStart] | None = None,
) -> SweepContext:
    """Create the output folder, check the stores, start Ray, write the resolved config and the
    manifest (keeping the sweep id of an interrupted run)."""
    local_sqlite_in_wal_mode()  # the default stores, before MLflow or Optuna opens them
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(int(cfg["mlflow"]["request_retries"]))
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(cfg["mlflow"]["request_timeout_s"]))
    tracking_uri, artifact_location = _tracking(cfg, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    experiment_name = str(cfg["mlflow"]["experiment_name"])
    storage_path = _check_storage(cfg, output_dir)
    _start_ray_and_check_mlflow(cfg["ray"], tracking_uri, experiment_name, artifact_location)
    _check_cluster(cfg)

    (output_dir / RESOLVED_CONFIG).write_text(yaml.safe_dump(dict(resolved), sort_keys=False))
    manifest_path = output_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"sweep_id": uuid.uuid4().hex[:12]}
    context = SweepContext(
        cfg=cfg, output_dir=output_dir, sweep_id=str(manifest["sweep_id"]), tracking_uri=tracking_uri,
        artifact_location=artifact_location,
        optuna_storage=cfg["optuna"]["storage"] or f"sqlite:///{output_dir / 'optuna.db'}",
        storage_path=storage_path, decision=decision, warm_starts=dict(warm_starts or {}),
    )
    manifest.update(
        objective=dict(cfg["objective"]),
        num_samples=int(cfg["search"]["num_samples"]),
        search_space=context.search_space,
        mlflow={"tracking_uri": tracking_uri, "experiment_name": experiment_name},
        optuna_storage=context.optuna_storage,
        storage_path=storage_path,
        code_version=code_version(),
        libraries=library_versions(),
    )
    manifest.setdefault("datasets", {})
    write_manifest(output_dir, manifest)
    open_optuna_storage(context.optuna_storage)  # a new database's tables, once: datasets side by side open it
    return context


def _check_cluster(cfg: Mapping[str, Any]) -> None:
    """On a Ray cluster: the per-trial resources exist (or the config asks to wait for them)."""
    import ray

    check_cluster_resources(cfg, ray.cluster_resources())  # type: ignore[no-untyped-call]


def _tracking(cfg: Mapping[str, Any], output_dir: Path) -> tuple[str, str | None]:
    """The tracking URI and, for a local store, its artifact root (None for a tracking server)."""
    uri = cfg["mlflow"]["tracking_uri"] or f"sqlite:///{output_dir / 'mlflow.db'}"
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    artifacts = (output_dir / "mlartifacts").as_uri() if local else None
    return uri, artifacts


def _check_mlflow(uri: str, experiment_name: str, artifact_location: str | None) -> None:
    from mlflow.tracking import MlflowClient

    try:
        get_or_create_experiment(MlflowClient(tracking_uri=uri), experiment_name, artifact_location)
    except Exception as error:  # MLflow raises many kinds (connection, REST, SQL)
        raise ConfigError(
            f"mlflow.tracking_uri={uri!r} cannot be used: {type(error).__name__}: {str(error)[:300]}"
        ) from error


def _check_storage(cfg: Mapping[str, Any], output_dir: Path) -> str:
    """The resolved ``storage_path`` (see :mod:`asymtune.results.storage`), checked with
    ``search.checkpoint_every`` before any trial starts."""
    every = cfg["search"]["checkpoint_every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"search.checkpoint_every={every!r}: expected an integer >= 1 (epochs between checkpoints)")
    location = resolve_storage_path(cfg["storage_path"], output_dir)
    try:
        check_storage(location)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return location


def _start_ray_and_check_mlflow(
    ray_cfg: Mapping[str, Any], uri: str, experiment_name: str, artifact_location: str | None
) -> None:
    """Check MLflow's store and start Ray. A tracking server is checked first, so that an
    unreachable one fails at once with one line; a local store (SQLite, a folder) is checked while
    Ray starts, as both take seconds (SQL migrations, processes to spawn) and overlap on two cores.
    A store that cannot be used stops the Ray runtime started here and raises :class:`ConfigError`;
    no trial has started."""
    import ray

    if artifact_location is None:  # a tracking server (see _tracking)
        _check_mlflow(uri, experiment_name, artifact_location)
        start_ray(ray_cfg)
        return
    started_here = not ray.is_initialized()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-check") as pool:
        check = pool.submit(_check_mlflow, uri, experiment_name, artifact_location)
        try:
            start_ray(ray_cfg)
        finally:
            error = check.exception()
    if error is not None:
        if started_here:
            ray.shutdown()
        raise error


def start_ray(ray_cfg: Mapping[str, Any]) -> None:
    """Start a local Ray runtime, or join the cluster at ``ray.address``; the job's workers run at
    ``ray.worker_niceness`` (:mod:`asymtune.search.priority`)."""
    import ray

    if ray.is_initialized():
        return
    if ray_cfg["address"]:
        ray.init(
            address=ray_cfg["address"], logging_level=logging.WARNING,
            log_to_driver=bool(ray_cfg["log_to_driver"]),
            runtime_env=priority_runtime_env(ray_cfg["worker_niceness"]),  # the trials' niceness, on every node
        )
    else:
        warn_if_unreachable(ray_cfg["worker_niceness"])  # local workers inherit this process's privileges
        with local_worker_priority(ray_cfg["worker_niceness"]):  # the raylet started here passes it on
            ray.init(
                address="local",  # a new runtime, even where `ray start` left /tmp/ray/ray_current_cluster
                num_cpus=ray_cfg["num_cpus"],
                include_dashboard=bool(ray_cfg["include_dashboard"]),
                logging_level=logging.WARNING,
                log_to_driver=bool(ray_cfg["log_to_driver"]),
            )


# ------------------------------------------------------------------------------------- 4. sweep
def sweep_dataset(context: SweepContext, plan: DatasetPlan) -> DatasetSweep:
    """Run (or resume) one dataset's sweep, tracked in MLflow under the dataset's parent run, and
    record it in the manifest."""
    cfg = context.cfg
    study_name = f"asymtune-{context.sweep_id}-{plan.name}"
    tracker = MLflowSweepTracker(
        tracking_uri=context.tracking_uri,
        experiment_name=context.experiment_name,
        artifact_location=context.artifact_location,
        sweep_id=context.sweep_id,
        dataset_name=plan.name,
        parent_params={
            "dataset": plan.name, "classes": ",".join(plan.dataset.class_names),
            "search_space": context.search_space, "num_samples": int(cfg["search"]["num_samples"]),
            "objective": cfg["objective"]["metric"], "optuna_study": study_name,
        },
        parent_tags={"asymtune.code_version": code_version()},
        trial_params=TrialParams(plan.dataset.class_names),
        parent_artifacts=[str(context.output_dir / RESOLVED_CONFIG)],
        flush_timeout_s=float(cfg["mlflow"]["flush_timeout_s"]),
        dataset=DatasetRecord.of(
            plan.name, dataset_fingerprint(plan.spec), plan.spec, plan.dataset.class_names,
            {"train": len(plan.dataset.train), "val": len(plan.dataset.val), "test": len(plan.dataset.test)},
        ),
    )
    parent_run_id = tracker.ensure_parent_run()
    experiment_dir = experiment_path(context.storage_path, plan.name)
    warm_start = context.warm_starts.get(plan.name)
    _record_dataset(context, plan.name, {
        "experiment_dir": experiment_dir, "study_name": study_name, "parent_run_id": parent_run_id,
        "class_names": list(plan.dataset.class_names),
        "class_fractions": [float(f) for f in plan.dataset.class_fractions()],  # what a later warm start compares
        **({"warm_start": warm_start.to_dict()} if warm_start is not None else {}),
    })
    log.info("sweep %s: dataset %s (%d trials)", context.sweep_id, plan.name, int(cfg["search"]["num_samples"]))
    started = time.perf_counter()
    results, resumed = run_dataset_sweep(
        plan, cfg, context.storage_path, context.optuna_storage, study_name, [tracker],
        warm_points=warm_start.points if warm_start is not None else (),
    )
    if resumed:
        drop_lost_trials(tracker, results)
    sweep = DatasetSweep(
        name=plan.name, experiment_dir=experiment_dir, study_name=study_name, parent_run_id=parent_run_id,
        class_names=tuple(plan.dataset.class_names), resumed=resumed, fit_seconds=time.perf_counter() - started,
    )
    _record_dataset(context, plan.name, sweep.manifest_entry())
    return sweep


def _record_dataset(context: SweepContext, name: str, entry: Mapping[str, Any]) -> None:
    """Update one dataset's entry of the manifest (read, change, replace: other entries stay).
    Datasets side by side take turns, so that no update is lost."""
    path = context.output_dir / MANIFEST
    with _MANIFEST_LOCK:
        manifest = json.loads(path.read_text())
        manifest.setdefault("datasets", {}).setdefault(name, {}).update(entry)
        write_manifest(context.output_dir, manifest)


# ----------------------------------------------------------------------------------- 4. confirm
def confirm_swept_dataset(context: SweepContext, name: str) -> Confirmation | str:
    """Confirm one dataset's choice (:func:`asymtune.confirm.retrain.confirm_dataset`) on the
    executor ``confirm.executor`` names (Ray tasks get the trials' ``resources``)."""
    decision = context.decision
    in_process = decision.confirm.executor != "ray"
    executor = LocalExecutor() if in_process else RayExecutor(context.cfg["resources"])
    entry = json.loads((context.output_dir / MANIFEST).read_text())["datasets"][name]
    started = time.perf_counter()
    # Trainings in this process seed torch's global generator: one dataset's at a time, so that a
    # confirmation is the same training side by side as alone (its exported config retrains to it).
    with _IN_PROCESS_TRAINING if in_process else contextlib.nullcontext():
        outcome = confirm_dataset(name, entry, context.sweep_id, context.tracking_uri, decision, executor)
    if isinstance(outcome, str):
        log.warning("%s: not confirmed: %s", name, outcome)
    else:
        log.info("%s: confirmed trial %s (sweep choice %s) in %.1f s", name, outcome.selected,
                 outcome.sweep_choice, time.perf_counter() - started)
    return outcome


# ------------------------------------------------------------------------------------ 5. report
def selected_objective(report: DatasetReport, metric: str) -> float:
    """The selected setting's validation ``metric``: the mean over its confirmed models' seeds when the
    confirmation ran (a rival that won, e.g. the logit offset, has no sweep trial whose history holds
    it), else its sweep trial's last value; NaN when there is none."""
    confirmed = report.results.summaries.get("selected", {}) if report.results is not None else {}
    if metric in confirmed:
        return float(confirmed[metric].mean)
    return report.selected.objective(metric) if report.selected is not None else math.nan


def mean_selected_objective(reports: list[DatasetReport], metric: str) -> float:
    """The mean over datasets of :func:`selected_objective` (datasets without a finite value left out;
    NaN when none has one)."""
    values = [value for value in (selected_objective(r, metric) for r in reports) if math.isfinite(value)]
    return float(sum(values) / len(values)) if values else math.nan

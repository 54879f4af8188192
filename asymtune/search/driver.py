"""``asymtune tune``: check everything, then sweep every dataset, then report and export.

Order matters for users: every input (datasets, search space, model, objective, MLflow store) is
checked before the first trial starts, so a bad value fails in seconds with one clear sentence.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import yaml

from asymtune.data.loading import load_dataset
from asymtune.models import create_model
from asymtune.paths import resolve_search_space
from asymtune.search.space import SearchSpace
from asymtune.search.storage import check_storage, resolve_storage_path
from asymtune.search.sweep import DatasetPlan, TrialParams, experiment_path, run_dataset_sweep
from asymtune.train.config import TrainConfig
from asymtune.versions import code_version, library_versions

log = logging.getLogger(__name__)
MANIFEST = "sweep.json"
RESOLVED_CONFIG = "config.yaml"
# Keys (dotted prefixes) that may change between an interrupted run and its resume.
RESUME_FREE_KEYS = (
    "ray", "verbose", "report", "faults", "mlflow.request_retries", "mlflow.request_timeout_s",
    "mlflow.flush_timeout_s", "selection", "confirm", "export",
)


class ConfigError(ValueError):
    """A configuration value is wrong; raised before any trial starts."""


def metric_names(class_names: tuple[str, ...]) -> list[str]:
    """The validation metrics every trial reports (valid objectives)."""
    names = [f"val/mean_fg_{m}" for m in ("dice", "sensitivity", "precision")]
    names += [f"val/{m}/{c}" for m in ("dice", "sensitivity", "precision") for c in class_names[1:]]
    return names


def dataset_entries(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``data.sets`` (each with ``data.common`` under its own params) plus one entry per folder of
    ``data.root`` (named after the folder, with ``data.params`` and an absolute path, so that
    trials in other working folders find it)."""
    common = dict(data.get("common") or {})
    sets = {
        name: {**dict(entry), "params": {**common, **dict(entry.get("params") or {})}}
        for name, entry in (data.get("sets") or {}).items()
    }
    if "root" not in data:
        return sets
    roots = data["root"]
    if roots is None:
        raise ConfigError("data.root is not set: expected the folder of a dataset (data=nnunet data.root=PATH)")
    for root in [roots] if isinstance(roots, (str, os.PathLike)) else list(roots):
        path = Path(str(root)).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"data.root={str(root)!r}: no such folder (expected a dataset folder holding dataset.json)")
        if path.name in sets:
            raise ConfigError(f"data.root: two datasets are named {path.name!r}: expected folders with different names")
        params = dict(data.get("params") or {})
        sets[path.name] = {"source": data.get("source", "nnunet"), "params": {**params, "root": str(path)}}
    return sets


def plan_datasets(cfg: Mapping[str, Any]) -> list[DatasetPlan]:
    """Load and check every dataset, the search space, the model and the objective."""
    sets = dataset_entries(cfg["data"])
    if not sets:
        raise ConfigError("data.sets is empty: expected at least one dataset to tune (or data.root=PATH)")
    train_config = TrainConfig.from_mapping(cfg["train"])
    objective = cfg["objective"]
    if objective["mode"] not in ("max", "min"):
        raise ConfigError(f"objective.mode={objective['mode']!r}: expected 'max' or 'min'")
    space_path = resolve_search_space(str(cfg["search"]["space"]))
    space = SearchSpace.from_file(space_path)
    searched = {spec.name for spec in space.params} | set(space.fixed)
    if "aug_p_bg" in searched and not cfg["train"]["augment"]:
        raise ConfigError(
            f"search space {space_path} sets aug_p_bg but train.augment=false: set train.augment=true "
            "(and train.patch_size) or use a space without aug_p_bg"
        )
    plans = []
    for name, spec in sets.items():
        dataset = load_dataset(spec, name)
        valid = metric_names(dataset.class_names)
        if objective["metric"] not in valid:
            raise ConfigError(
                f"objective.metric={objective['metric']!r} is not reported for dataset {name!r}: expected one of {valid}"
            )
        try:
            bound = space.bind(dataset.class_names, dataset.rare_classes)
        except ValueError as error:
            raise ConfigError(f"search space does not fit dataset {name!r}: {error}") from error
        _check_model(cfg["model"], dataset, name, train_config)
        plans.append(DatasetPlan(name=name, spec=dict(spec), dataset=dataset, space=bound))
    return plans


def _check_model(model_cfg: Mapping[str, Any], dataset: Any, name: str, train_config: TrainConfig) -> None:
    """Build the model and run it on one training input (a patch, or a whole image)."""
    from asymtune.train.trainer import Trainer

    options = dict(model_cfg)
    model = create_model(str(options.pop("name")), dataset.spatial_dims, dataset.in_channels, dataset.num_classes, **options)
    try:
        patch = Trainer.patch_size_for(dataset, train_config)
        shape = patch if patch is not None else dataset.train.labels.shape[1:]
        with torch.no_grad():
            model(torch.zeros(1, dataset.in_channels, *shape))
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"model does not fit dataset {name!r}: {error}") from error


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
    path = output_dir / RESOLVED_CONFIG
    if not path.is_file():
        return
    stored = _flatten(yaml.safe_load(path.read_text()))
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


def _tracking(cfg: Mapping[str, Any], output_dir: Path) -> tuple[str, str | None]:
    """The tracking URI and, for a local store, its artifact root (None for a tracking server)."""
    uri = cfg["mlflow"]["tracking_uri"] or f"sqlite:///{output_dir / 'mlflow.db'}"
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    artifacts = (output_dir / "mlartifacts").as_uri() if local else None
    return uri, artifacts


def _check_mlflow(uri: str, experiment_name: str, artifact_location: str | None) -> None:
    from mlflow.tracking import MlflowClient

    from asymtune.tracking import get_or_create_experiment

    try:
        get_or_create_experiment(MlflowClient(tracking_uri=uri), experiment_name, artifact_location)
    except Exception as error:  # MLflow raises many kinds (connection, REST, SQL)
        raise ConfigError(
            f"mlflow.tracking_uri={uri!r} cannot be used: {type(error).__name__}: {str(error)[:300]}"
        ) from error


def _check_storage(cfg: Mapping[str, Any], output_dir: Path) -> str:
    """The resolved ``storage_path`` (see :mod:`asymtune.search.storage`), checked with
    ``search.checkpoint_every`` before any trial starts."""
    every = cfg["search"].get("checkpoint_every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"search.checkpoint_every={every!r}: expected an integer >= 1 (epochs between checkpoints)")
    location = resolve_storage_path(cfg.get("storage_path"), output_dir)
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
        _init_ray(ray_cfg)
        return
    started_here = not ray.is_initialized()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-check") as pool:
        check = pool.submit(_check_mlflow, uri, experiment_name, artifact_location)
        try:
            _init_ray(ray_cfg)
        finally:
            error = check.exception()
    if error is not None:
        if started_here:
            ray.shutdown()
        raise error


def _init_ray(ray_cfg: Mapping[str, Any]) -> None:
    import ray

    if ray.is_initialized():
        return
    if ray_cfg.get("address"):
        ray.init(
            address=ray_cfg["address"], logging_level=logging.WARNING,
            log_to_driver=bool(ray_cfg.get("log_to_driver", False)),
        )
    else:
        ray.init(
            num_cpus=ray_cfg.get("num_cpus"),
            include_dashboard=bool(ray_cfg.get("include_dashboard", False)),
            logging_level=logging.WARNING,
            log_to_driver=bool(ray_cfg.get("log_to_driver", False)),
        )


def _check_decision(cfg: Mapping[str, Any]) -> None:
    """``selection``, ``confirm`` and ``export`` are checked before any trial starts."""
    from asymtune.report.options import DecisionOptions

    try:
        DecisionOptions.from_config(cfg)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def run_tune(cfg: Mapping[str, Any]) -> float:
    """Run the whole sweep described by a resolved ``conf/tune.yaml``.

    Returns:
        the mean over datasets of the selected trials' validation objective.
    """
    from mlflow.tracking import MlflowClient  # noqa: F401  (fail early when MLflow is missing)

    from asymtune.report.build import build_report
    from asymtune.tracking.mlflow_tracker import MLflowSweepTracker

    output_dir = Path(cfg["output_dir"]).expanduser().resolve()
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(int(cfg["mlflow"]["request_retries"]))
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(cfg["mlflow"]["request_timeout_s"]))
    resolved = json.loads(json.dumps(dict(cfg), default=str))
    _check_resume(output_dir, resolved)
    _check_decision(cfg)
    plans = plan_datasets(cfg)
    tracking_uri, artifact_location = _tracking(cfg, output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    experiment_name = str(cfg["mlflow"]["experiment_name"])
    storage_path = _check_storage(cfg, output_dir)
    _start_ray_and_check_mlflow(cfg["ray"], tracking_uri, experiment_name, artifact_location)

    (output_dir / RESOLVED_CONFIG).write_text(yaml.safe_dump(resolved, sort_keys=False))
    manifest_path = output_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"sweep_id": uuid.uuid4().hex[:12]}
    sweep_id = manifest["sweep_id"]
    optuna_storage = cfg["optuna"]["storage"] or f"sqlite:///{output_dir / 'optuna.db'}"
    manifest.update(
        objective=dict(cfg["objective"]),
        num_samples=int(cfg["search"]["num_samples"]),
        search_space=str(resolve_search_space(str(cfg["search"]["space"]))),
        mlflow={"tracking_uri": tracking_uri, "experiment_name": experiment_name},
        optuna_storage=optuna_storage,
        storage_path=storage_path,
        code_version=code_version(),
        libraries=library_versions(),
    )
    manifest.setdefault("datasets", {})

    results = []
    for plan in plans:
        study_name = f"asymtune-{sweep_id}-{plan.name}"
        tracker = MLflowSweepTracker(
            tracking_uri=tracking_uri,
            experiment_name=experiment_name,
            artifact_location=artifact_location,
            sweep_id=sweep_id,
            dataset_name=plan.name,
            parent_params={
                "dataset": plan.name, "classes": ",".join(plan.dataset.class_names),
                "search_space": manifest["search_space"], "num_samples": manifest["num_samples"],
                "objective": cfg["objective"]["metric"], "optuna_study": study_name,
            },
            parent_tags={"asymtune.code_version": code_version()},
            trial_params=TrialParams(plan.dataset.class_names),
            parent_artifacts=[str(output_dir / RESOLVED_CONFIG)],
            flush_timeout_s=float(cfg["mlflow"]["flush_timeout_s"]),
        )
        parent_run_id = tracker.ensure_parent_run()
        manifest["datasets"][plan.name] = {
            "experiment_dir": experiment_path(storage_path, plan.name),
            "study_name": study_name,
            "parent_run_id": parent_run_id,
            "class_names": list(plan.dataset.class_names),
        }
        manifest_path.write_text(json.dumps(manifest, indent=2))
        log.info("sweep %s: dataset %s (%d trials)", sweep_id, plan.name, manifest["num_samples"])
        started = time.perf_counter()
        results.append(
            run_dataset_sweep(plan, cfg, storage_path, optuna_storage, study_name, tracker)
        )
        manifest["datasets"][plan.name]["fit_seconds"] = round(time.perf_counter() - started, 2)
        manifest_path.write_text(json.dumps(manifest, indent=2))
    if cfg["confirm"]["enabled"]:
        from asymtune.report.confirm import confirm_sweep

        confirm_sweep(output_dir, cfg["resources"])
    reports = build_report(output_dir) if cfg["report"]["enabled"] else []
    values = [r.selected.objective(cfg["objective"]["metric"]) for r in reports if r.selected is not None]
    print(f"asymtune: report at {output_dir / 'report.html'}; configs in {output_dir / 'configs'}")
    return float(sum(values) / len(values)) if values else float("nan")

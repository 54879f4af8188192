"""Checks of the composed ``asymtune tune`` config that no single key's type can express.

:func:`check_tune_config` runs before anything starts (no data prepared, no MLflow run, no Ray
runtime): ranges of the search, the resources and the trials' niceness, the grace period against
the epochs, that a local Ray runtime has the CPUs and GPUs one trial asks for, and the form of
``optuna.storage`` (a journal file's folder exists). :func:`check_cluster_resources`
runs right after ``ray.init``, with what the Ray runtime (a cluster or the local one) has.
Each refusal is one sentence naming the keys, their values and what was expected.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asymtune.config.errors import ConfigError

log = logging.getLogger(__name__)


def check_tune_config(cfg: Mapping[str, Any]) -> None:
    """Refuse values that would fail, hang or mean nothing once the sweep has started.

    Args:
        cfg: the resolved ``conf/tune.yaml`` (:func:`asymtune.config.compose`).

    Raises:
        ConfigError: the first rule broken, naming its keys and values.
    """
    _check_ranges(cfg)
    _check_schedule(cfg)
    _check_local_resources(cfg)
    _check_optuna_storage(cfg["optuna"]["storage"])


def _number(value: Any) -> str:
    """``1`` for 1.0, ``0.25`` for 0.25: values as a user typed them."""
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def _at_least(key: str, value: Any, low: float, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(f"{key}={_number(value)}: expected {meaning}")


def _check_ranges(cfg: Mapping[str, Any]) -> None:
    search, scheduler = cfg["search"], cfg["search"]["scheduler"]
    mode = cfg["objective"]["mode"]
    if mode not in ("max", "min"):
        raise ConfigError(f"objective.mode={mode!r}: expected 'max' or 'min'")
    if cfg["verbose"] not in (0, 1, 2, 3):
        raise ConfigError(f"verbose={_number(cfg['verbose'])}: expected 0 (no progress), 1 (a progress line), "
                          "2 (Ray Tune's trial table) or 3 (also every result)")
    _at_least("search.num_samples", search["num_samples"], 1, "an integer >= 1 (trials per dataset)")
    _at_least("search.max_concurrent_trials", search["max_concurrent_trials"], 1, "an integer >= 1")
    _at_least("search.parallel_datasets", search["parallel_datasets"], 1,
              "an integer >= 1 (datasets whose sweeps run at the same time)")
    _at_least("search.n_startup_trials", search["n_startup_trials"], 0, "an integer >= 0 (random trials before TPE)")
    _at_least(
        "search.checkpoint_every", search["checkpoint_every"], 1, "an integer >= 1 (epochs between checkpoints)"
    )
    _at_least("search.checkpoints_to_keep", search["checkpoints_to_keep"], 1, "an integer >= 1 (per trial)")
    _at_least("search.max_failures", search["max_failures"], -1, "an integer >= 0, or -1 to retry without end")
    _at_least("search.warm_start_top_k", search["warm_start_top_k"], 1,
              "an integer >= 1 (earlier trials each dataset starts from, with search.warm_start)")
    _at_least(
        "search.scheduler.grace_period", scheduler["grace_period"], 1,
        "an integer >= 1 (epochs every trial trains before ASHA may stop it)",
    )
    factor = scheduler["reduction_factor"]
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise ConfigError(
            f"search.scheduler.reduction_factor={_number(factor)}: expected a number > 1 "
            "(ASHA keeps 1 / reduction_factor of the trials at each rung)"
        )
    _at_least("search.scheduler.probe_trials", scheduler["probe_trials"], 0,
              "an integer >= 0 (first trials never stopped, to measure the rungs)")
    _at_least("search.scheduler.min_pairs", scheduler["min_pairs"], 3,
              "an integer >= 3 (trials that reached a rung and the end before the rung may stop trials)")
    rho = scheduler["min_rho"]
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not -1 <= rho <= 1:
        raise ConfigError(f"search.scheduler.min_rho={_number(rho)}: expected a Spearman rho in [-1, 1]")
    resources, ray = cfg["resources"], cfg["ray"]
    _at_least("resources.cpu", resources["cpu"], 0, "a number >= 0 (CPUs per trial)")
    _at_least("resources.gpu", resources["gpu"], 0, "a number >= 0 (GPUs per trial, 0.25 shares one GPU by 4)")
    if ray["num_cpus"] is not None:
        _at_least("ray.num_cpus", ray["num_cpus"], 1, "an integer >= 1, or null for all of this machine's CPUs")
    niceness = ray["worker_niceness"]
    if niceness is not None and not -20 <= niceness <= 19:
        raise ConfigError(
            f"ray.worker_niceness={niceness}: expected an integer from -20 (highest priority) to 19 (lowest), "
            "or null to leave it to Ray"
        )
    mlflow = cfg["mlflow"]
    _at_least("mlflow.request_retries", mlflow["request_retries"], 0, "an integer >= 0")
    _at_least("mlflow.request_timeout_s", mlflow["request_timeout_s"], 1, "an integer >= 1 (seconds)")
    _at_least("mlflow.flush_timeout_s", mlflow["flush_timeout_s"], 0, "a number >= 0 (seconds)")


def _check_schedule(cfg: Mapping[str, Any]) -> None:
    epochs = cfg["train"]["epochs"]
    grace = cfg["search"]["scheduler"]["grace_period"]
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1 and grace > epochs:
        raise ConfigError(
            f"search.scheduler.grace_period={grace} is more than train.epochs={epochs}: expected a grace period of "
            f"at most train.epochs (ASHA lets every trial train grace_period epochs before it may stop it), "
            f"e.g. search.scheduler.grace_period={max(1, epochs // 2)}"
        )


def _check_optuna_storage(storage: str | None) -> None:
    """``optuna.storage`` is null, a journal file ``journal:///ABSOLUTE/PATH`` in a folder that
    exists, or a database URL (what :mod:`asymtune.search.storage` opens)."""
    if storage is None:
        return
    expected = (
        "expected null (SQLite in output_dir), a database URL (sqlite:///PATH, postgresql+psycopg2://...) or "
        "journal:///ABSOLUTE/PATH (a journal file, e.g. journal:///shared/sweeps/optuna.log)"
    )
    if storage.startswith("journal:"):
        path = Path(storage.removeprefix("journal://"))
        if not storage.startswith("journal:///") or storage.endswith("/"):
            raise ConfigError(f"optuna.storage={storage!r}: {expected}; a journal's path is absolute (three slashes)")
        if not path.parent.is_dir() or path.is_dir():
            raise ConfigError(
                f"optuna.storage={storage!r}: {'is a folder' if path.is_dir() else f'no folder {path.parent}'}: "
                "expected a journal file in a folder that exists (shared, when several drivers write to it)"
            )
    elif "://" not in storage:
        raise ConfigError(f"optuna.storage={storage!r}: {expected}")


def _check_local_resources(cfg: Mapping[str, Any]) -> None:
    """A local Ray runtime (``ray.address`` null) never gets more CPUs or GPUs than this machine
    has: a trial that asks for more would wait forever without a word."""
    if cfg["ray"]["address"]:
        return
    cpu, gpu = cfg["resources"]["cpu"], cfg["resources"]["gpu"]
    num_cpus = cfg["ray"]["num_cpus"]
    if num_cpus is not None and cpu > num_cpus:
        raise ConfigError(
            f"resources.cpu={_number(cpu)} per trial is more than ray.num_cpus={num_cpus} of the local Ray runtime "
            "(ray.address=null), so no trial could start: expected resources.cpu <= ray.num_cpus"
        )
    machine_cpus = os.cpu_count() or 1
    if num_cpus is None and cpu > machine_cpus:
        raise ConfigError(
            f"resources.cpu={_number(cpu)} per trial but this machine has {machine_cpus} CPUs for the local Ray "
            f"runtime (ray.address=null), so no trial could start: expected resources.cpu <= {machine_cpus}, "
            "or ray.address of a cluster"
        )
    if gpu > 0:
        gpus = local_gpu_count()
        if gpu > gpus:
            raise ConfigError(
                f"resources.gpu={_number(gpu)} per trial but this machine has {gpus} GPUs "
                "(torch.cuda.device_count()) for the local Ray runtime (ray.address=null), so no trial could start: "
                "expected resources.gpu=0, or ray.address of a Ray cluster with GPUs"
            )


def local_gpu_count() -> int:
    """The GPUs torch sees on this machine (what a local Ray runtime can hand to trials)."""
    import torch

    return int(torch.cuda.device_count())


def check_cluster_resources(cfg: Mapping[str, Any], available: Mapping[str, float]) -> None:
    """Refuse a Ray runtime that lacks the CPUs or GPUs one trial asks for, where trials would
    wait for them forever.

    On a cluster (``ray.address`` set) with ``resources.wait_for_resources: true`` (an
    autoscaler may add nodes), log a warning naming what is missing and return instead.

    Args:
        cfg: the resolved ``conf/tune.yaml``.
        available: what the Ray runtime has, ``ray.cluster_resources()`` (``CPU``, ``GPU``, ...).

    Raises:
        ConfigError: naming each missing resource, the key that asks for it and what the runtime has.
    """
    resources = cfg["resources"]
    address = cfg["ray"]["address"]
    missing = [
        f"resources.{key}={_number(float(resources[key]))} per trial but the {_runtime(address)} has "
        f"{_number(float(available.get(name, 0.0)))} {name}s"
        for key, name in (("cpu", "CPU"), ("gpu", "GPU"))
        if float(resources[key]) > float(available.get(name, 0.0))
    ]
    if not missing:
        return
    what = " and ".join(missing)
    if address and resources.get("wait_for_resources", False):
        log.warning(
            "%s: trials wait until the cluster has them (resources.wait_for_resources=true; an autoscaler may add "
            "nodes)", what,
        )
        return
    raise ConfigError(
        f"{what}, so no trial could start: expected fewer resources per trial or a runtime that has them"
        + (", or resources.wait_for_resources=true to wait for nodes an autoscaler adds" if address else "")
    )


def _runtime(address: str | None) -> str:
    return f"Ray cluster at {address}" if address else "local Ray runtime"

"""Export the chosen setting of a dataset: a config ``asymtune train --config`` reads unchanged, the
same as a Hydra experiment file for ``conf/experiment/``, and a provenance record beside them.

``configs/<dataset>.yaml``             the train config (with a short ``provenance`` block)
``configs/<dataset>.provenance.json``  sweep and trial ids, metrics with intervals, versions, data
``configs/experiment/<dataset>.yaml``  ``# @package _global_`` overlay: copy it to conf/experiment/
                                      and run ``asymtune train experiment=<dataset>``
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from asymtune.results.trials import TrialRecord
from asymtune.versions import code_version, library_versions

TRAIN_KEYS = ("dataset_name", "data", "model", "train", "settings")


def trial_train_config(trial: TrialRecord) -> dict[str, Any]:
    """The train config of a sweep trial as it ran (``train.epochs``: the epochs it trained,
    fewer than configured when ASHA stopped it)."""
    run = trial.spec.run_config(trial.settings)
    run["train"]["epochs"] = trial.epochs
    return run


def dataset_fingerprint(fingerprint: str, spec: dict[str, Any]) -> str:
    """The dataset's own fingerprint (data on disk), else a hash of its config entry (synthetic data,
    fully determined by it): ``spec-sha256:<hex>``."""
    if fingerprint:
        return fingerprint
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return f"spec-sha256:{digest}"


def provenance_record(**fields: Any) -> dict[str, Any]:
    """``fields`` plus the code version, library versions and the export time."""
    return {
        **fields,
        "code_version": code_version(),
        "libraries": library_versions(),
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_export(train_config: dict[str, Any], provenance: dict[str, Any], folder: Path) -> Path:
    """Write the three files of one dataset into ``folder``; returns the train config's path.

    The config carries a short ``provenance`` block (ids, the test metrics of exactly this
    training when it was tested) that ``asymtune train`` ignores; the whole record is in the
    ``.provenance.json`` beside it.
    """
    name = train_config["dataset_name"]
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{name}.yaml"
    record_path = folder / f"{name}.provenance.json"
    short: dict[str, Any] = {
        key: provenance[key]
        for key in (
            "sweep_id", "trial_id", "seed", "confirmed", "verdict", "rivals", "mlflow_run_id", "test_metrics",
            "code_version", "exported_at",
        )
        if key in provenance
    }
    short["record"] = record_path.name
    config = {**{key: train_config[key] for key in TRAIN_KEYS}, "provenance": short}
    config_path.write_text(
        f"# asymtune exported config for dataset {name!r} (provenance: {record_path.name})\n"
        + (f"# verdict: {provenance['verdict']}\n" if provenance.get("verdict") else "")
        + (f"# rivals: {provenance['rivals']}\n" if provenance.get("rivals") else "")
        + f"# train it: asymtune train --config {config_path.name}\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    record_path.write_text(json.dumps(provenance, indent=2, default=str) + "\n")
    experiment = folder / "experiment" / f"{name}.yaml"
    experiment.parent.mkdir(exist_ok=True)
    experiment.write_text(experiment_file(train_config))
    return config_path


def experiment_file(train_config: dict[str, Any]) -> str:
    """A ``conf/experiment/`` overlay that turns ``conf/train.yaml`` into ``train_config``."""
    name = train_config["dataset_name"]
    body = {
        "defaults": [{"override /model": train_config["model"]["name"]}],
        **{key: train_config[key] for key in TRAIN_KEYS},
    }
    return (
        "# @package _global_\n"
        f"# The setting asymtune chose for dataset {name!r}. Copy this file to conf/experiment/{name}.yaml, then:\n"
        f"#   asymtune train experiment={name}\n"
        + str(yaml.safe_dump(body, sort_keys=False))
    )

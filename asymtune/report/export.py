"""Export the chosen setting of a dataset as a config that ``asymtune train --config`` reads."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

from asymtune.report.collect import TrialRecord
from asymtune.search.trainable import FIXED_KEY
from asymtune.versions import code_version


def exported_config(trial: TrialRecord, provenance: dict[str, Any]) -> dict[str, Any]:
    """The train-command config of ``trial``: data, model, train options, settings, provenance.

    ``train.epochs`` is the number of epochs the trial trained (ASHA may have stopped it early).
    """
    fixed = trial.config[FIXED_KEY]
    train = dict(fixed["train"])
    train["epochs"] = trial.epochs
    return {
        "dataset_name": fixed["dataset_name"],
        "data": fixed["dataset"],
        "model": dict(fixed["model"]),
        "train": train,
        "settings": trial.settings.to_dict(),
        "provenance": {
            **provenance,
            "trial_id": trial.trial_id,
            "code_version": code_version(),
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }


def write_config(config: dict[str, Any], path: Path) -> Path:
    """Write ``config`` as YAML with a header saying how to use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# asymtune exported config for dataset {config['dataset_name']!r}\n"
        f"# train it: asymtune train --config {path.name}\n"
    )
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path

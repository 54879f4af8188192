"""Export the chosen setting of a dataset: a config ``asymtune train --config`` reads unchanged, the
same as a Hydra experiment file for ``conf/experiment/``, and a provenance record beside them.

``configs/<dataset>.yaml``             the train config (with a short ``provenance`` block)
``configs/<dataset>.provenance.json``  sweep and trial ids, metrics with intervals, versions, data
``configs/experiment/<dataset>.yaml``  ``# @package _global_`` overlay: copy it to conf/experiment/
                                      and run ``asymtune train experiment=<dataset>``

Nothing under ``configs/`` holds the sweep machine's absolute paths, so the folder moves to another
machine or checkout unchanged: the ``data`` entry names the data by ``source``, ``params``,
``fingerprint`` and, for data on disk, a ``root`` relative to the data directory
(:func:`portable_data`, found again by :mod:`asymtune.data.locate`); the provenance's locations
(MLflow and Optuna stores, search space) are written relative to the sweep's output folder or the
asymtune checkout, or by name (:func:`portable_provenance`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

import asymtune
from asymtune.data.locate import DATA_DIR_ENV, data_fingerprint, portable_root, resolve_entry
from asymtune.paths import search_spaces_dir
from asymtune.results.trials import TrialRecord
from asymtune.versions import code_version, library_versions

TRAIN_KEYS = ("dataset_name", "data", "model", "train", "settings")
MACHINE_PARAMS = ("root", "cache_dir")
"""Parameters of a ``data`` entry that are paths of the sweep machine: never exported."""
PATHS_NOTE = (
    "mlflow.tracking_uri and optuna.storage are relative to the sweep's output folder (the parent of "
    "configs/; run mlflow ui or optuna from there), search_space to the asymtune checkout; a location "
    "elsewhere is given by its file name"
)
_FILE_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*:///)(?P<path>/.*)$")


def trial_train_config(trial: TrialRecord) -> dict[str, Any]:
    """The train config of a sweep trial as it ran (``train.epochs``: the epochs it trained,
    fewer than configured when ASHA stopped it)."""
    run = trial.spec.run_config(trial.settings)
    run["train"]["epochs"] = trial.epochs
    return run


def dataset_fingerprint(spec: Mapping[str, Any]) -> str:
    """The fingerprint ``asymtune train`` checks the data against: ``files-sha256:<hex>`` of the
    files of data on disk (their bytes, not their paths or times), else ``spec-sha256:<hex>`` of the
    config entry (synthetic data, fully determined by it); :func:`asymtune.data.locate.data_fingerprint`."""
    return data_fingerprint(resolve_entry(spec))


def checkout() -> Path | None:
    """The asymtune source checkout this code runs from (it holds ``conf/``), else None (a wheel)."""
    root = Path(asymtune.__file__).resolve().parents[1]
    return root if (root / "conf").is_dir() and (root / "asymtune").is_dir() else None


def data_bases() -> list[Path]:
    """The folders an exported ``data.root`` is made relative to, in order: ``$ASYMTUNE_DATA_DIR``
    (when set), then the checkout (``data/Dataset901_BrainAtlas``)."""
    bases = [Path(os.environ[DATA_DIR_ENV]).expanduser()] if os.environ.get(DATA_DIR_ENV) else []
    found = checkout()
    return bases + ([found] if found is not None else [])


def portable_data(spec: Mapping[str, Any], fingerprint: str, bases: Sequence[Path] | None = None) -> dict[str, Any]:
    """A trial's ``data`` entry (``{"source", "params"}``, root absolute) as exported.

    Data on disk: ``source``, ``params`` without the machine's paths (``root``, ``cache_dir``),
    ``root`` relative to the first of ``bases`` (default :func:`data_bases`) that holds it, else the
    folder's name, ``data_dir: null`` and ``fingerprint``. Generated data: ``source``, ``params``
    and ``fingerprint``.
    """
    params = dict(spec.get("params") or {})
    if params.get("root") in (None, ""):  # the params are what the fingerprint hashes: unchanged
        return {"source": spec["source"], "params": params, "fingerprint": fingerprint}
    return {
        "source": spec["source"],
        "params": {key: value for key, value in params.items() if key not in MACHINE_PARAMS},
        "root": portable_root(params["root"], data_bases() if bases is None else bases),
        "data_dir": None,
        "fingerprint": fingerprint,
    }


def portable_location(value: str | None, output_dir: Path) -> str | None:
    """A store or file location of the sweep without its absolute path: relative to ``output_dir``
    (``sqlite:///mlflow.db``) or to the checkout (``search_spaces/paper.yaml``), else the file's
    name alone (``optuna.log``); server URLs (``http://``, ``postgresql://``) are kept."""
    if value is None:
        return None
    match = _FILE_URI.match(str(value))
    scheme, path = (match.group("scheme"), match.group("path")) if match else ("", str(value))
    if not os.path.isabs(path):
        return str(value)
    bases = [output_dir, search_spaces_dir().parent]
    found = checkout()
    bases += [found] if found is not None else []
    for base in bases:
        for form in {Path(os.path.abspath(base)), Path(base).resolve()}:
            try:
                return scheme + Path(path).relative_to(form).as_posix()
            except ValueError:
                continue
    return Path(path).name


def portable_provenance(record: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """``record`` with its locations made portable (:func:`portable_location`), every remaining
    mention of ``output_dir`` or the checkout made relative, and :data:`PATHS_NOTE`."""
    out: dict[str, Any] = json.loads(json.dumps(record, default=str))
    if isinstance(out.get("mlflow"), dict):
        out["mlflow"]["tracking_uri"] = portable_location(out["mlflow"].get("tracking_uri"), output_dir)
    if isinstance(out.get("optuna"), dict):
        out["optuna"]["storage"] = portable_location(out["optuna"].get("storage"), output_dir)
    if out.get("search_space"):
        out["search_space"] = portable_location(out["search_space"], output_dir)
    out["paths"] = PATHS_NOTE
    portable: dict[str, Any] = _without_prefixes(out, _anchors(output_dir))
    return portable


def _anchors(output_dir: Path) -> list[str]:
    """Absolute folders of this machine that an export must not name, longest first."""
    folders = {output_dir, search_spaces_dir().parent, *data_bases()}
    forms = {str(form) for folder in folders for form in (Path(os.path.abspath(folder)), Path(folder).resolve())}
    return sorted((form for form in forms if form != os.sep), key=len, reverse=True)


def _without_prefixes(value: Any, anchors: list[str]) -> Any:
    """Every string in ``value`` with ``anchor/`` removed and a bare ``anchor`` written ``.``."""
    if isinstance(value, dict):
        return {key: _without_prefixes(item, anchors) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_prefixes(item, anchors) for item in value]
    if isinstance(value, str):
        for anchor in anchors:
            value = value.replace(anchor + "/", "")
            value = re.sub(rf"{re.escape(anchor)}(?![\w.-])", ".", value)
        return value
    return value


def provenance_record(**fields: Any) -> dict[str, Any]:
    """``fields`` plus the code version, library versions and the export time."""
    return {
        **fields,
        "code_version": code_version(),
        "libraries": library_versions(),
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_export(train_config: dict[str, Any], provenance: dict[str, Any], folder: Path) -> Path:
    """Write the three files of one dataset into ``folder`` (``<output_dir>/configs``); returns
    the train config's path.

    The config carries a short ``provenance`` block (ids, the test metrics of exactly this
    training when it was tested) that ``asymtune train`` ignores; the whole record is in the
    ``.provenance.json`` beside it. ``train_config["data"]`` is the trial's entry; it is written
    portably (:func:`portable_data`, with ``provenance["dataset_fingerprint"]``, computed when
    absent), and so are the provenance's locations (:func:`portable_provenance`).
    """
    name = train_config["dataset_name"]
    fingerprint = provenance.get("dataset_fingerprint") or dataset_fingerprint(train_config["data"])
    provenance = portable_provenance({**provenance, "dataset_fingerprint": fingerprint}, folder.parent)
    train_config = {
        **_without_prefixes({k: v for k, v in train_config.items() if k != "data"}, _anchors(folder.parent)),
        "data": portable_data(train_config["data"], fingerprint),
    }
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
        + (f"# data: data.root is looked up in data.data_dir (else ${DATA_DIR_ENV}), then the current folder; "
           "data whose fingerprint differs is refused\n" if "root" in train_config["data"] else "")
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

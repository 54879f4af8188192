"""The names and the manifest of a sweep's output folder: the contract every stage reads and writes.

``<output_dir>/`` holds:

- ``config.yaml`` (:data:`RESOLVED_CONFIG`): the resolved ``conf/tune.yaml`` of the sweep; a rerun
  with a different config is refused, a rerun with the same one resumes.
- ``sweep.json`` (:data:`MANIFEST`): the sweep id, objective, stores (MLflow, Optuna, Ray Tune
  storage) and, per dataset, its Ray Tune experiment folder, Optuna study and MLflow parent run.
- ``report.json`` (:data:`REPORT_JSON`), ``report.md``, ``report.html``, ``configs/``: the report.

A trial's config holds the sweep's fixed part under :data:`FIXED_KEY`, its resolved per-class
setting under :data:`SETTINGS_KEY` (so that nothing downstream needs the search space to read a
trial) and Optuna's raw values at the top level. Its checkpoints hold :data:`STATE_FILE` and, at
the epochs where it may end, :data:`DIAGNOSTICS_FILE` and its histograms :data:`DIAGNOSTICS_PLOT`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "sweep.json"
RESOLVED_CONFIG = "config.yaml"
REPORT_JSON = "report.json"
FIXED_KEY = "asymtune"
SETTINGS_KEY = "settings"
STATE_FILE = "state.pt"
DIAGNOSTICS_FILE = "diagnostics.npz"
DIAGNOSTICS_PLOT = "logit_shift.png"
CASE_SERIES = "test/per_case/dice"
"""``<CASE_SERIES>/<class>``: each test case's Dice in a confirmation run's MLflow metrics, logged with the
case's index as the step (a series, read with :func:`asymtune.tracking.confirmation.metric_series`)."""


def read_manifest(output_dir: Path) -> dict[str, Any]:
    """The sweep manifest, with a clear error when ``output_dir`` holds no sweep."""
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected the output_dir of an 'asymtune tune' run")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def write_manifest(output_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``sweep.json`` whole (a replace, so a reader never sees half a file)."""
    path = Path(output_dir) / MANIFEST
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(manifest, indent=2))
    scratch.replace(path)
    return path

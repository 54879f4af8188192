"""MLflow runs of the confirmation: one nested run per retrained (setting, seed) under the
dataset's parent run, found again by tags so that a rerun never duplicates one.

A run is written in one go once its training is done (params, validation metrics, the weights as
``weights/state.pt``) and only then tagged ``asymtune.confirm_status = trained``; the test metrics
and the boundary distances are added after the selection (status ``tested``). A run without the
status tag was interrupted while being written and is deleted before the confirmation resumes.
Like a trial's run, each carries MLflow's source tags (the command line and git commit of the
process that logged it) and the parent run's dataset input.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from asymtune.results.layout import CASE_SERIES
from asymtune.tracking.mlflow_tracker import TAG_DATASET, TAG_PARENT, TAG_ROLE, TAG_SWEEP, TAG_TRIAL, _param_value
from asymtune.tracking.source import source_tags

ROLE = "confirmation"
TAG_CONFIRM_ROLE = "asymtune.confirm_role"      # "candidate" or "baseline"
TAG_SEED = "asymtune.seed"
TAG_STATUS = "asymtune.confirm_status"          # "trained", then "tested"
TAG_REUSED = "asymtune.reused_trial"            # "true" when the sweep trial itself is this seed
TAG_REGISTERED = "asymtune.registered_model"    # "<name>/<version>"
TAG_DERIVED = "asymtune.derived_from_run"       # the run whose weights this one reuses untrained (logit offsets)
TAG_MACHINE = "asymtune.machine"                # the processor it trained on (asymtune.versions.machine)
STATE_ARTIFACT = "weights/state.pt"  # not under "model/": MLflow 3 treats that folder as the logged model
DISTANCES_ARTIFACT = "diagnostics/distances.npz"
_FLUENT_LOCK = threading.Lock()  # datasets side by side are threads of one driver


@dataclass
class ConfirmationRun:
    """One confirmation run as stored.

    Attributes:
        run_id: the MLflow run.
        trial_id: the sweep trial whose setting it retrained.
        seed: ``train.seed`` of this training.
        confirm_role: ``"candidate"`` or ``"baseline"``.
        status: ``"trained"`` (validation metrics and weights) or ``"tested"`` (test metrics too).
        metrics: the run's metrics (``val/...``, ``test/...``).
        tags: the run's tags.
    """

    run_id: str
    trial_id: str
    seed: int
    confirm_role: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def tested(self) -> bool:
        return self.status == "tested"

    @property
    def trained_here(self) -> bool:
        """A model the confirmation trained (not a sweep trial reused, not derived from another run)."""
        return self.tags.get(TAG_REUSED) != "true" and TAG_DERIVED not in self.tags


def trained_on(runs: Sequence[ConfirmationRun]) -> dict[str, int]:
    """How many of ``runs`` trained on each processor (:data:`TAG_MACHINE`); a sweep trial reused as
    a seed counts as ``"not recorded (a sweep trial)"``; a run derived from another's weights is
    left out (it trained nothing)."""
    counts: dict[str, int] = {}
    for run in runs:
        if TAG_DERIVED in run.tags:
            continue
        name = run.tags.get(TAG_MACHINE) or (
            "not recorded (a sweep trial)" if run.tags.get(TAG_REUSED) == "true" else "not recorded")
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _experiment_id(client: MlflowClient, parent_run_id: str) -> str:
    return str(client.get_run(parent_run_id).info.experiment_id)


def _search(client: MlflowClient, parent_run_id: str) -> list[Any]:
    query = f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_ROLE}` = '{ROLE}'"
    return client.search_runs(
        [_experiment_id(client, parent_run_id)], filter_string=query, order_by=["attributes.start_time ASC"],
        max_results=5000,
    )


def list_confirmation_runs(client: MlflowClient, parent_run_id: str) -> list[ConfirmationRun]:
    """The complete confirmation runs under a parent run, oldest first (one per trial and seed)."""
    runs: dict[tuple[str, int], ConfirmationRun] = {}
    for run in _search(client, parent_run_id):
        tags = run.data.tags
        if TAG_STATUS not in tags:
            continue
        key = (tags[TAG_TRIAL], int(tags[TAG_SEED]))
        runs.setdefault(key, ConfirmationRun(
            run_id=run.info.run_id, trial_id=key[0], seed=key[1], confirm_role=tags.get(TAG_CONFIRM_ROLE, ""),
            status=tags[TAG_STATUS], tags=dict(tags),
            metrics={k: v for k, v in run.data.metrics.items() if not k.startswith(CASE_SERIES + "/")},
        ))
    return list(runs.values())


def discard_incomplete(client: MlflowClient, parent_run_id: str) -> int:
    """Delete confirmation runs interrupted while being written; returns how many."""
    incomplete = [run.info.run_id for run in _search(client, parent_run_id) if TAG_STATUS not in run.data.tags]
    for run_id in incomplete:
        client.delete_run(run_id)
    return len(incomplete)


def log_trained(
    client: MlflowClient,
    parent_run_id: str,
    identity: Mapping[str, str],
    trial_id: str,
    seed: int,
    confirm_role: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    step: int,
    state: bytes,
    reused_trial: bool,
    derived_from: str | None = None,
    machine: str | None = None,
) -> ConfirmationRun:
    """Write one trained confirmation model: params, validation metrics at ``step`` and weights;
    the run also gets the source tags and the parent run's dataset inputs.

    Args:
        identity: ``{"sweep_id": ..., "dataset": ...}`` tags shared with the sweep's runs.
        state: the model's ``state_dict`` as written by ``torch.save``.
        reused_trial: the sweep trial itself is this seed (no training).
        derived_from: the confirmation run whose weights these are (no training; the logit-offset rival).
        machine: the processor it trained on (``asymtune.versions.machine``): a seeded training
            gives the same model again only on the same type.
    """
    tags = {
        TAG_PARENT: parent_run_id, TAG_ROLE: ROLE, TAG_SWEEP: identity["sweep_id"], TAG_DATASET: identity["dataset"],
        TAG_TRIAL: trial_id, TAG_SEED: str(seed), TAG_CONFIRM_ROLE: confirm_role,
        TAG_REUSED: "true" if reused_trial else "false",
        **({TAG_DERIVED: derived_from} if derived_from else {}),
        **({TAG_MACHINE: machine} if machine else {}),
    }
    parent = client.get_run(parent_run_id)
    run = client.create_run(
        str(parent.info.experiment_id), run_name=f"{identity['dataset']}-confirm-{trial_id}-seed{seed}",
        tags={**source_tags(), **tags},
    )
    run_id = run.info.run_id
    if parent.inputs is not None and parent.inputs.dataset_inputs:
        client.log_inputs(run_id, datasets=list(parent.inputs.dataset_inputs))
    client.log_batch(
        run_id,
        params=[Param(k, _param_value(v)) for k, v in sorted(params.items())],
        metrics=[Metric(k, float(v), _now(), step) for k, v in metrics.items() if _finite(v)],
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / Path(STATE_ARTIFACT).name
        path.write_bytes(state)
        client.log_artifact(run_id, str(path), artifact_path=str(Path(STATE_ARTIFACT).parent))
    client.set_tag(run_id, TAG_STATUS, "trained")
    client.set_terminated(run_id, status="FINISHED")
    return ConfirmationRun(run_id, trial_id, seed, confirm_role, "trained", dict(metrics), tags)


def log_tested(
    client: MlflowClient, run: ConfirmationRun, metrics: Mapping[str, float], distances: bytes | None,
    series: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """Add the test metrics (and the train/test boundary distances, an ``.npz``) to a run;
    ``series`` (``{key: values}``, e.g. each test case's Dice) is logged with the value's index as
    the step, so MLflow's metric history holds it (:func:`metric_series` reads it back)."""
    now = _now()
    steps = [Metric(k, float(v), now, i) for k, values in (series or {}).items() for i, v in enumerate(values)
             if _finite(v)]
    for start in range(0, len(steps), 1000):  # MLflow takes at most 1000 metrics per batch
        client.log_batch(run.run_id, metrics=steps[start:start + 1000])
    client.log_batch(run.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)])
    if distances is not None:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / Path(DISTANCES_ARTIFACT).name
            path.write_bytes(distances)
            client.log_artifact(run.run_id, str(path), artifact_path=str(Path(DISTANCES_ARTIFACT).parent))
    client.set_tag(run.run_id, TAG_STATUS, "tested")
    run.status = "tested"
    run.metrics.update(metrics)


def metric_series(client: MlflowClient, run_id: str, key: str) -> list[float]:
    """A metric logged by steps (:func:`log_tested`'s ``series``), in step order; empty when absent."""
    history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return [float(m.value) for m in {m.step: m for m in history}.values()]


def download(client: MlflowClient, run_id: str, artifact: str, directory: Path) -> Path | None:
    """A run's artifact downloaded into ``directory``, or None when the run has none."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar per file in the logs
    folder = str(Path(artifact).parent)
    if not any(item.path == artifact for item in client.list_artifacts(run_id, folder)):
        return None
    return Path(client.download_artifacts(run_id, artifact, str(directory)))


def register_model(tracking_uri: str, run: ConfirmationRun, model: Any, name: str) -> str:
    """Log ``model`` (a ``torch.nn.Module``) on the run and register it as a new version of ``name``.

    Returns ``"<name>/<version>"``; a run already registered is left as it is.
    """
    if TAG_REGISTERED in run.tags:
        return run.tags[TAG_REGISTERED]
    with _FLUENT_LOCK:  # MLflow's fluent API (tracking URI, active run, active model) is process state
        return _register_model(tracking_uri, run, model, name)


def _register_model(tracking_uri: str, run: ConfirmationRun, model: Any, name: str) -> str:
    import mlflow
    import mlflow.pytorch

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    quiet = logging.getLogger("mlflow.pytorch")  # its warning about pickle: our own model class, loaded by us
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with mlflow.start_run(run_id=run.run_id):
            info = mlflow.pytorch.log_model(
                model, name="model", serialization_format="pickle", pip_requirements=["torch", "asymtune"],
            )
        version = mlflow.register_model(info.model_uri, name, tags={TAG_TRIAL: run.trial_id, TAG_SEED: str(run.seed)})
    finally:
        mlflow.set_tracking_uri(previous)
        quiet.setLevel(level)
    value = f"{name}/{version.version}"
    client = MlflowClient(tracking_uri=tracking_uri)
    client.set_tag(run.run_id, TAG_REGISTERED, value)
    run.tags[TAG_REGISTERED] = value
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _now() -> int:
    return int(time.time() * 1000)

"""MLflow tracking of a sweep: one parent run per dataset sweep, one nested child run per trial.

All writes happen in the Tune driver (a :class:`ray.tune.Callback` that queues each event for its
sender thread), so trials on any node are tracked through the results they report, and the
tracker finds its runs again by tags after a resume instead of creating duplicates.

What the MLflow UI shows: the experiment is of the kind "custom model development" (its runs
table, not the GenAI traces, is what it opens on); every run carries the source tags (the command
line, the git commit: :mod:`asymtune.tracking.source`) and the dataset as a dataset input
(:mod:`asymtune.tracking.datasets`); the parent run's description says what the sweep is and,
once the report is built, the chosen setting and its verdict (:func:`describe_run`). Metrics
named ``system/...`` (the trial's CPU, memory and GPU when ``mlflow.system_metrics`` is on) are
MLflow's system metrics and appear in the run page's "System metrics" tab.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_RUN_NOTE, MLFLOW_SOURCE_NAME
from ray import tune

from asymtune.method.settings import AsymmetrySettings
from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY
from asymtune.tracking.datasets import DatasetRecord
from asymtune.tracking.source import source_tags

log = logging.getLogger(__name__)
TAG_SWEEP = "asymtune.sweep_id"
TAG_DATASET = "asymtune.dataset"
TAG_TRIAL = "asymtune.trial_id"
TAG_ROLE = "asymtune.role"
TAG_PARENT = "mlflow.parentRunId"
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"  # read by the MLflow 3 UI to choose the experiment's page
EXPERIMENT_KIND = "custom_model_development"  # training runs (the other kind, genai_development: traces)
METRIC_PREFIXES = ("train/", "val/", "diag/", "sys/", "system/")
_MAX_BATCH = 900
_PAGE = 1000  # runs per page of a search
_RETRY_S = 2.0  # a sender whose event was refused tries again after this long (or at the next event)


def get_or_create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``) if missing, and marked
    as an experiment of training runs (``mlflow.experimentKind``) unless it already has a kind."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return str(client.create_experiment(
            name, artifact_location=artifact_location, tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND},
        ))
    if TAG_EXPERIMENT_KIND not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
    return str(experiment.experiment_id)


def find_run(client: MlflowClient, experiment_id: str, tags: Mapping[str, str]) -> str | None:
    """The id of the oldest active run carrying all ``tags``, or None."""
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = client.search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time ASC"])
    return runs[0].info.run_id if runs else None


class TrialParams:
    """Maps a trial config to flat MLflow params: its resolved per-class setting
    (``margin.<class>``, ...) plus Optuna's raw values (``search.<name>``)."""

    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        settings = AsymmetrySettings.from_dict(config[SETTINGS_KEY])
        params = settings.flat_params(self.class_names)
        params.update({f"search.{k}": v for k, v in config.items() if k not in (FIXED_KEY, SETTINGS_KEY)})
        params["is_baseline"] = settings.is_baseline
        return params


def drop_lost_trials(tracker: MLflowSweepTracker, results: tune.ResultGrid) -> None:
    """After a resume: remove the MLflow runs of trials the interrupted driver started but never saved."""
    trial_ids = {
        str((result.metrics or {}).get("trial_id") or result.path.rsplit("_", 1)[-1])
        for result in (results[index] for index in range(len(results)))
    }
    try:
        lost = tracker.drop_lost_trials(trial_ids)
    except Exception as error:  # MLflow unreachable: the runs stay; the sweep's results do not depend on them
        log.warning("MLflow runs of lost trials not checked (%s: %s)", type(error).__name__, str(error)[:200])
        return
    if lost:
        log.info("deleted the MLflow runs of %d trials lost in the interruption: %s", len(lost), ", ".join(lost))


class MLflowSweepTracker(tune.Callback):
    """Logs a dataset sweep to MLflow from the Tune driver.

    Every event (trial start, epoch result, trial end) goes to an outbox that a sender thread sends
    in order, so that Ray Tune's loop, which calls the callback, does not wait on MLflow (about 0.5 s
    of requests per trial against a local SQLite store); the end of the sweep waits until the outbox
    is sent. When the tracking server is unreachable the events wait there and are sent once it
    answers again, so a short outage loses no metric. The outbox is the callback's state
    (:meth:`get_state`), which Ray Tune saves with every experiment snapshot and restores on
    resume, so events still waiting survive a driver restart.

    Args:
        tracking_uri: MLflow tracking URI (``sqlite:///...``, ``http://...``, a folder).
        experiment_name: MLflow experiment that holds the sweep.
        artifact_location: artifact root for a newly created experiment (None: server default).
        sweep_id: identifies the sweep across resumes.
        dataset_name: the dataset this sweep tunes.
        parent_params: params of the parent run (flat).
        parent_tags: extra tags of the parent run (code version ...).
        trial_params: maps a trial config to its flat params (per-class values readable).
        parent_artifacts: files logged on the parent run when it is created.
        flush_timeout_s: how long the end of the sweep waits for an unreachable server.
        dataset: the dataset, logged as a dataset input of the parent run and of every trial run
            (None: none logged).
    """

    _existing: dict[str, str] | None = None  # class defaults: a snapshot of an older tracker lacks them
    _experiment_id: str | None = None

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        artifact_location: str | None,
        sweep_id: str,
        dataset_name: str,
        parent_params: Mapping[str, Any],
        parent_tags: Mapping[str, str],
        trial_params: Any,
        parent_artifacts: Sequence[str] = (),
        flush_timeout_s: float = 120.0,
        dataset: DatasetRecord | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        self.sweep_id = sweep_id
        self.dataset_name = dataset_name
        self.parent_params = dict(parent_params)
        self.parent_tags = dict(parent_tags)
        self.trial_params = trial_params
        self.parent_artifacts = list(parent_artifacts)
        self.flush_timeout_s = flush_timeout_s
        self.dataset = dataset
        self.source_tags = source_tags()  # this process is the driver: its command line and commit
        self.parent_run_id: str | None = None
        self._child_runs: dict[str, str] = {}
        self._last_step: dict[str, int] = {}
        self._outbox: list[tuple[Any, ...]] = []
        self._client: MlflowClient | None = None
        self._existing: dict[str, str] | None = None  # trial id -> run id found in MLflow, read once per driver
        self._experiment_id: str | None = None
        self._new_sender()

    def _new_sender(self) -> None:
        """The sender's thread (started by the first event) and its locks: one flush at a time, and
        the outbox shared with Ray Tune's loop."""
        self._outbox_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._sender: threading.Thread | None = None
        self._closing = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_existing"] = None  # a restored driver reads the runs again: some may be newer than the snapshot
        for name in ("_outbox_lock", "_send_lock", "_wake", "_sender", "_closing"):
            state.pop(name, None)
        with self._outbox_lock:
            state["_outbox"] = list(self._outbox)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._new_sender()

    def get_state(self) -> dict[str, Any]:
        """The events not yet sent, saved by Ray Tune beside every experiment snapshot.

        Always a dict, an empty outbox too: Ray Tune writes no file for a None state, and the
        restore would then read an older file whose events were sent since.
        """
        with self._outbox_lock:
            return {"outbox": list(self._outbox)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back the events that waited at the snapshot (Ray Tune calls this on resume).

        Events the killed driver sent after the snapshot are sent again without harm: a run is
        found again by its tags, a step already logged is skipped, a status is set again.
        """
        with self._outbox_lock:
            self._outbox = list(state.get("outbox", []))

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    @property
    def pending(self) -> int:
        """Events not yet accepted by the tracking server."""
        with self._outbox_lock:
            return len(self._outbox)

    # ------------------------------------------------------------------------- parent
    def ensure_parent_run(self) -> str:
        """Create the sweep's parent run, or find it again after a resume."""
        if self.parent_run_id is not None:
            return self.parent_run_id
        experiment_id = get_or_create_experiment(self.client, self.experiment_name, self.artifact_location)
        tags = {TAG_SWEEP: self.sweep_id, TAG_DATASET: self.dataset_name, TAG_ROLE: "sweep"}
        run_id = find_run(self.client, experiment_id, tags)
        if run_id is None:
            run = self.client.create_run(
                experiment_id, run_name=f"sweep-{self.dataset_name}",
                tags={**tags, **self.source_tags, MLFLOW_RUN_NOTE: self._description(), **self.parent_tags},
            )
            run_id = run.info.run_id
            self.client.log_batch(
                run_id, params=[Param(k, _param_value(v)) for k, v in sorted(self.parent_params.items())]
            )
            self._log_dataset(run_id)
            for path in self.parent_artifacts:
                self.client.log_artifact(run_id, path)
        self.parent_run_id = run_id
        return run_id

    def _description(self) -> str:
        """The parent run's description until the report replaces it (:func:`describe_run`)."""
        return (
            f"Sweep of dataset `{self.dataset_name}` (sweep {self.sweep_id}): one nested run per trial, then "
            "one per confirmation training. The chosen setting and its verdict are written here when the "
            f"report is built.\n\n{made_by(self.source_tags)}"
        )

    def _log_dataset(self, run_id: str) -> None:
        if self.dataset is not None:
            self.client.log_inputs(run_id, datasets=[self.dataset.to_input()])

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        """Ray Tune calls this when the experiment (re)starts: send what a restored outbox holds."""
        self._flush()

    # ------------------------------------------------------------------------ outbox
    def _post(self, *event: Any) -> None:
        """Queue an event for the sender thread (started here the first time) and return at once."""
        with self._outbox_lock:
            self._outbox.append(event)
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_loop, name=f"mlflow-sender-{self.dataset_name}",
                                            daemon=True)
            self._sender.start()
        self._wake.set()

    def _send_loop(self) -> None:
        """The sender thread: flush whenever an event comes, and every few seconds while some wait."""
        while not self._closing:
            self._wake.wait(_RETRY_S)
            self._wake.clear()
            if not self._closing:
                self._flush()

    def _stop_sender(self) -> None:
        """Let the sender finish the event it is sending, and stop it; later flushes are the caller's."""
        if self._sender is not None:
            self._closing = True
            self._wake.set()
            self._sender.join()
            self._sender, self._closing = None, False

    def _flush(self) -> bool:
        """Send waiting events in order; stop at the first failure. True when all were sent."""
        with self._send_lock:  # one sender at a time: an event sent twice at once could create a run twice
            while True:
                with self._outbox_lock:
                    if not self._outbox:
                        return True
                    event = self._outbox[0]
                try:
                    self._send(event)
                except Exception as error:  # connection refused, 5xx, timeouts: retry later
                    self._existing = None  # a run may have been created without our hearing it: look again
                    log.warning(
                        "MLflow at %s did not accept an event of the %s sweep (%s: %s); %d events wait and will be "
                        "retried", self.tracking_uri, self.dataset_name, type(error).__name__, str(error)[:200],
                        self.pending,
                    )
                    return False
                with self._outbox_lock:
                    self._outbox.pop(0)

    def _send(self, event: tuple[Any, ...]) -> None:
        kind, trial_id = event[0], event[1]
        if kind == "start":
            self._child_run(trial_id, event[2])
        elif kind == "metrics":
            _, _, config, step, timestamp, values = event
            run_id = self._child_run(trial_id, config)
            if step <= self._last_step.get(trial_id, 0):
                return
            metrics = [Metric(key, value, timestamp, step) for key, value in values.items()]
            for start in range(0, len(metrics), _MAX_BATCH):
                self.client.log_batch(run_id, metrics=metrics[start : start + _MAX_BATCH])
            self._last_step[trial_id] = step
        elif kind == "finish":
            _, _, config, status, checkpoint, error = event
            run_id = self._child_run(trial_id, config)
            self._log_diagnostics(trial_id, checkpoint, run_id)
            tags = [RunTag("asymtune.trial_status", status)]
            if error:
                tags.append(RunTag("asymtune.error", error[:4000]))
            self.client.log_batch(run_id, tags=tags)
            self.client.set_terminated(run_id, status="FAILED" if status == "error" else "FINISHED")
        elif kind == "end":
            self.client.set_terminated(self.ensure_parent_run(), status="FINISHED")

    # -------------------------------------------------------------------------- trials
    def _child_run(self, trial_id: str, config: Mapping[str, Any]) -> str:
        if trial_id in self._child_runs:
            return self._child_runs[trial_id]
        parent = self.ensure_parent_run()
        if self._experiment_id is None:
            self._experiment_id = str(self.client.get_run(parent).info.experiment_id)
        experiment_id = self._experiment_id
        if self._existing is None:
            self._existing = self._trial_runs(experiment_id, parent)
        run_id = self._existing.get(trial_id)
        if run_id is None:
            run = self.client.create_run(
                experiment_id,
                run_name=f"{self.dataset_name}-{trial_id}",
                tags={TAG_PARENT: parent, TAG_TRIAL: trial_id, **self.source_tags, TAG_SWEEP: self.sweep_id,
                      TAG_DATASET: self.dataset_name, TAG_ROLE: "trial"},
            )
            run_id = run.info.run_id
            params = self.trial_params(config)
            self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in sorted(params.items())])
            self._log_dataset(run_id)
            self._last_step[trial_id] = 0
        else:
            # Resumed trial: a restarted trial replays epochs after its last checkpoint; those
            # steps are already in MLflow and are not logged twice.
            self._last_step[trial_id] = _last_logged_step(self.client, run_id)
            found = self.client.get_run(run_id)
            if self.dataset is not None and not (found.inputs and found.inputs.dataset_inputs):
                self._log_dataset(run_id)  # the server went away between creating the run and this
        self._child_runs[trial_id] = run_id
        return run_id

    def _trial_runs(self, experiment_id: str, parent: str) -> dict[str, str]:
        """The oldest active run under ``parent`` per trial id (what :func:`find_run` would find), read in
        one paged search instead of one search per trial: a sweep of n trials costs O(n), not O(n^2)."""
        query = f"tags.`{TAG_PARENT}` = '{parent}'"
        runs: dict[str, str] = {}
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string=query, max_results=_PAGE,
                                           order_by=["attributes.start_time ASC"], page_token=token)
            for run in page:
                if TAG_TRIAL in run.data.tags:
                    runs.setdefault(str(run.data.tags[TAG_TRIAL]), run.info.run_id)
            token = page.token
            if not token:
                return runs

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._post("start", str(trial.trial_id), dict(trial.config))

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        values = {
            key: float(value)
            for key, value in result.items()
            if key.startswith(METRIC_PREFIXES) and isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        step = int(result.get("training_iteration", 0))
        self._post("metrics", str(trial.trial_id), dict(trial.config), step, int(time.time() * 1000), values)

    def _log_diagnostics(self, trial_id: str, checkpoint: Any, run_id: str) -> None:
        """The boundary distances and their histograms in the trial's latest checkpoint (both drawn
        by the trial, :mod:`asymtune.search.trial`), as artifacts: the driver only copies files."""
        from asymtune.results.layout import DIAGNOSTICS_FILE, DIAGNOSTICS_PLOT

        if checkpoint is None:
            return
        try:
            with checkpoint.as_directory() as directory:
                for name in (DIAGNOSTICS_PLOT, DIAGNOSTICS_FILE):
                    source = Path(directory) / name
                    if source.is_file():
                        self.client.log_artifact(run_id, str(source), artifact_path="diagnostics")
        except (OSError, ValueError, KeyError) as error:  # diagnostics must never fail a sweep
            log.warning("diagnostics of trial %s not logged: %s", trial_id, error)

    def _finish(self, trial: Any, status: str) -> None:
        error = None
        if status == "error":
            error_file = getattr(trial, "error_file", None)
            error = Path(error_file).read_text()[-4000:] if error_file and Path(error_file).is_file() else "error"
        checkpoint = getattr(trial, "checkpoint", None)
        self._post("finish", str(trial.trial_id), dict(trial.config), status, checkpoint, error)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, "complete")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, "error")

    def drop_lost_trials(self, trial_ids: set[str]) -> list[str]:
        """Delete the child runs of trials that the sweep no longer has; returns their trial ids.

        A driver killed between starting a trial and saving the experiment state leaves an MLflow
        run for a trial that Ray Tune never restores (it runs a new trial in its place). Such a run
        is tagged ``asymtune.trial_status=lost`` and deleted (MLflow keeps deleted runs until
        ``mlflow gc``), so the sweep shows one run per trial it ran.
        """
        parent = self.ensure_parent_run()
        experiment_id = self.client.get_run(parent).info.experiment_id
        runs = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{TAG_PARENT}` = '{parent}' and tags.`{TAG_ROLE}` = 'trial'"
        )
        lost = [run for run in runs if run.data.tags.get(TAG_TRIAL) not in trial_ids]
        for run in lost:
            self.client.set_tag(run.info.run_id, "asymtune.trial_status", "lost")
            self.client.set_terminated(run.info.run_id, status="KILLED")
            self.client.delete_run(run.info.run_id)
        return [str(run.data.tags.get(TAG_TRIAL)) for run in lost]

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._stop_sender()
        with self._outbox_lock:
            self._outbox.append(("end", ""))
        deadline = time.monotonic() + self.flush_timeout_s
        while not self._flush() and time.monotonic() < deadline:
            time.sleep(2.0)
        if self._outbox:
            log.error(
                "MLflow at %s stayed unreachable: %d events of the %s sweep were not logged; "
                "rerun the same command to send them", self.tracking_uri, len(self._outbox), self.dataset_name,
            )


def _last_logged_step(client: MlflowClient, run_id: str) -> int:
    """The highest step logged for any ``val/`` metric of a run (0 if none)."""
    keys = [key for key in client.get_run(run_id).data.metrics if key.startswith("val/")]
    if not keys:
        return 0
    return max((m.step for m in client.get_metric_history(run_id, keys[0])), default=0)


def _param_value(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def log_artifacts(
    tracking_uri: str, run_id: str, paths: Sequence[str | Path], artifact_path: str | None = None
) -> None:
    """Upload files to a run (the report, exported configs)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)


def set_parent_tags(tracking_uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Tag a parent run (the selected trial, ...)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def describe_run(tracking_uri: str, run_id: str, text: str) -> None:
    """Set a run's description (Markdown, shown on the run page) to ``text`` followed by the
    command and commit that made the run (:func:`made_by`)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    client.set_tag(run_id, MLFLOW_RUN_NOTE, f"{text}\n\n{made_by(client.get_run(run_id).data.tags)}".strip())


def made_by(tags: Mapping[str, str]) -> str:
    """The command line and commit of a run's source tags, in words. The MLflow UI shows only the
    source's last ``/``-separated part (it takes the command for a script's path), so the
    description says it in full.

    >>> made_by({"mlflow.source.name": "asymtune tune output_dir=/tmp/a",
    ...          "mlflow.source.git.commit": "0123456789abcdef"})
    'Made by `asymtune tune output_dir=/tmp/a` at commit 0123456789ab.'
    """
    command, commit = tags.get(MLFLOW_SOURCE_NAME), tags.get(MLFLOW_GIT_COMMIT)
    if not command:
        return ""
    return f"Made by `{command}`" + (f" at commit {commit[:12]}." if commit else ".")

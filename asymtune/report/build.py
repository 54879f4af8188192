"""Build the sweep report and exported configs from what ``output_dir`` stores.

Reads the manifest ``sweep.json`` written by ``asymtune tune``, each dataset's Ray Tune folder
and the trials' checkpoints; works for a finished or a partial sweep.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from asymtune.data.loading import load_dataset
from asymtune.losses import logit_shift_summary
from asymtune.report.collect import TrialRecord, load_trials
from asymtune.report.evaluate import Evaluation, evaluate_trainer, trainer_from_state
from asymtune.report.export import exported_config, write_config
from asymtune.report.plots import plot_history, plot_logit_shift, plot_test_metrics
from asymtune.report.render import DatasetReport, render_html, render_markdown
from asymtune.search.trainable import FIXED_KEY

log = logging.getLogger(__name__)
MANIFEST = "sweep.json"


def read_manifest(output_dir: Path) -> dict[str, Any]:
    """The sweep manifest, with a clear error when ``output_dir`` holds no sweep."""
    path = output_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: expected the output_dir of an 'asymtune tune' run")
    return json.loads(path.read_text())


def _evaluate(trial: TrialRecord) -> Evaluation | None:
    if trial.checkpoint_file is None:
        return None
    fixed = trial.config[FIXED_KEY]
    dataset = load_dataset(fixed["dataset"], fixed["dataset_name"])
    trainer = trainer_from_state(dataset, fixed["model"], fixed["train"], trial.settings, trial.checkpoint_file)
    return evaluate_trainer(trainer)


def dataset_report(name: str, entry: dict[str, Any], manifest: dict[str, Any], out_dir: Path) -> DatasetReport:
    """Select, evaluate, plot and export one dataset of the sweep."""
    from asymtune.report.select import find_baseline, select_best

    metric = manifest["objective"]["metric"]
    experiment_dir = Path(entry["experiment_dir"])
    trials = load_trials(experiment_dir) if experiment_dir.is_dir() else []
    class_names = tuple(entry["class_names"])
    expected = manifest.get("num_samples")
    report = DatasetReport(
        name=name, class_names=class_names, metric=metric, trials=trials, expected_trials=expected,
        selected=select_best(trials, metric, manifest["objective"]["mode"]), baseline=find_baseline(trials),
        mlflow_parent_run=entry.get("parent_run_id"),
    )
    finished = sum(1 for t in trials if t.history and t.error is None)
    if expected is not None and finished < expected:
        report.notes.append(
            f"partial sweep: {finished} of {expected} trials have results "
            f"({len(trials) - finished} started without a result or failed, {expected - len(trials)} never started)."
        )
    if report.baseline is None:
        report.notes.append("no baseline trial (no asymmetry) has a result: the selection has no reference.")
    failed = [t.trial_id for t in trials if t.error]
    if failed:
        report.notes.append(f"failed trials: {', '.join(failed)}.")
    labelled = {}
    if report.baseline is not None:
        labelled["baseline"] = report.baseline
    if report.selected is not None and report.selected is not report.baseline:
        labelled["selected"] = report.selected
    for label, trial in labelled.items():
        evaluation = _evaluate(trial)
        if evaluation is not None:
            report.evaluations[label] = evaluation
            report.shift[label] = {
                cls: logit_shift_summary(evaluation.distances["train"][cls], evaluation.distances["test"][cls])
                for cls in class_names[1:]
            }
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    if report.evaluations:
        report.plots.append((
            f"{name}: per-class test metrics",
            plot_test_metrics(class_names, {k: v.metrics for k, v in report.evaluations.items()},
                              plots_dir / f"{name}_test_metrics.png"),
        ))
        report.plots.append((
            f"{name}: boundary distance of each class's voxels, train against test",
            plot_logit_shift({k: v.distances for k, v in report.evaluations.items()},
                             plots_dir / f"{name}_logit_shift.png"),
        ))
    if trials:
        highlight = {t.trial_id: label for label, t in labelled.items()}
        report.plots.append((
            f"{name}: validation objective per epoch",
            plot_history(trials, metric, highlight, plots_dir / f"{name}_history.png"),
        ))
    if report.selected is not None:
        provenance = {
            "sweep_id": manifest["sweep_id"],
            "objective": metric,
            "validation_objective": report.selected.objective(metric),
            "mlflow_parent_run_id": entry.get("parent_run_id"),
            "baseline_trial_id": report.baseline.trial_id if report.baseline else None,
        }
        if "selected" in report.evaluations or "baseline" in report.evaluations:
            key = "selected" if "selected" in report.evaluations else "baseline"
            provenance["test_metrics"] = report.evaluations[key].metrics
        report.config_path = write_config(
            exported_config(report.selected, provenance), out_dir / "configs" / f"{name}.yaml"
        )
    return report


def build_report(output_dir: Path, log_to_mlflow: bool = True) -> list[DatasetReport]:
    """Write ``report.md``, ``report.html``, ``plots/`` and ``configs/<dataset>.yaml``."""
    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    reports = [dataset_report(name, entry, manifest, output_dir) for name, entry in manifest["datasets"].items()]
    title = "asymtune report"
    intro = [
        f"Sweep {manifest['sweep_id']}; objective: {manifest['objective']['mode']} "
        f"{manifest['objective']['metric']} on the validation split; search space {manifest.get('search_space')}.",
        f"MLflow: {manifest['mlflow']['tracking_uri']} (experiment {manifest['mlflow']['experiment_name']}); "
        f"Optuna storage: {manifest.get('optuna_storage')}.",
    ]
    (output_dir / "report.md").write_text(render_markdown(title, intro, reports, output_dir))
    (output_dir / "report.html").write_text(render_html(title, intro, reports))
    if log_to_mlflow:
        _log_to_mlflow(manifest, reports, output_dir)
    return reports


def _log_to_mlflow(manifest: dict[str, Any], reports: list[DatasetReport], output_dir: Path) -> None:
    from asymtune.tracking.mlflow_tracker import log_artifacts, set_parent_tags

    uri = manifest["mlflow"]["tracking_uri"]
    for report in reports:
        if not report.mlflow_parent_run:
            continue
        files = [output_dir / "report.md", output_dir / "report.html"]
        if report.config_path is not None:
            files.append(report.config_path)
        log_artifacts(uri, report.mlflow_parent_run, files, artifact_path="report")
        if report.selected is not None:
            set_parent_tags(uri, report.mlflow_parent_run, {"asymtune.selected_trial": report.selected.trial_id})

"""Build the sweep report and exported configs from what ``output_dir`` and MLflow store.

Reads the manifest ``sweep.json`` written by ``asymtune tune``, each dataset's Ray Tune folder
(the trials) and the confirmation runs in MLflow; trains and evaluates nothing, so it works on a
finished or a partial sweep and says what is missing.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asymtune.confirm.jobs import Job
from asymtune.confirm.options import DecisionOptions
from asymtune.confirm.retrain import Confirmation, read_confirmation
from asymtune.confirm.select import class_dice, classes_disagree, find_baseline, pareto_front, select_best
from asymtune.confirm.verdict import decide, held_out_metric
from asymtune.method import logit_shift_summary, plot_logit_shift
from asymtune.report.cases import case_bootstrap
from asymtune.report.export import dataset_fingerprint, provenance_record, trial_train_config, write_export
from asymtune.report.fidelity import rung_fidelity
from asymtune.report.importance import class_importances, searched_keys
from asymtune.report.plots import (
    plot_history,
    plot_importance,
    plot_marginals,
    plot_parallel_coordinates,
    plot_pareto,
    plot_test_metrics,
)
from asymtune.report.render import DatasetReport, render_html, render_markdown, summary_table
from asymtune.report.results import TABLE_METRICS, confirmed_results, describe_trial, metric_key
from asymtune.report.rivals import best_rival, rivals, rivals_sentence
from asymtune.results.distances import load_distances
from asymtune.results.layout import REPORT_JSON, read_manifest
from asymtune.results.storage import is_directory
from asymtune.results.trials import TrialRecord, load_trials
from asymtune.tracking.confirmation import DISTANCES_ARTIFACT, TAG_REGISTERED, download, trained_on
from asymtune.tracking.ui import run_url

log = logging.getLogger(__name__)


def _sweep_notes(report: DatasetReport, options: DecisionOptions) -> None:
    trials, expected = report.trials, report.expected_trials
    finished = sum(1 for t in trials if t.finished)
    if expected is not None and finished < expected:
        report.notes.append(
            f"partial sweep: {finished} of {expected} trials have results "
            f"({len(trials) - finished} started without a final result or failed, "
            f"{max(expected - len(trials), 0)} never started)."
        )
    if report.baseline is None:
        report.notes.append("no baseline trial (no asymmetry) has a result: the selection has no reference.")
        if options.constraint:
            report.notes.append(f"selection.constraint={options.constraint} could not be applied without a baseline.")
    failed = [t.trial_id for t in trials if t.error]
    if failed:
        report.notes.append(f"failed trials: {', '.join(failed)}.")


def _confirmation_notes(report: DatasetReport, confirmation: Confirmation) -> None:
    if not confirmation.runs:
        report.notes.append(
            "not confirmed: the confirmation has not run (the sweep is unfinished, or confirm.enabled=false); "
            "the chosen setting is the sweep's validation choice, never tested. Rerun the same 'asymtune tune' "
            "command to finish it."
        )
        return
    expected = confirmation.wanted()
    have = {(run.trial_id, run.seed) for run in confirmation.runs}
    missing = [f"{t} seed {s}" for t, s in expected if (t, s) not in have]
    if missing:
        report.notes.append(
            f"confirmation incomplete: not trained (not yet, or failed: see the log): {', '.join(missing)}."
        )
    untested = [f"{run.trial_id} seed {run.seed}" for t in confirmation.tested for run in confirmation.runs_of(t)
                if not run.tested]
    if untested:
        report.notes.append(f"confirmation incomplete: not yet tested: {', '.join(untested)}.")
    if confirmation.selected == confirmation.baseline:
        report.notes.append(
            "the baseline was confirmed as the best setting: no candidate or rival beat it on validation."
        )
    elif (rival := confirmation.rival_of(confirmation.selected)) is not None:
        report.notes.append(f"the rival {rival} (a fixed setting, not a tuned one) was confirmed as the best setting "
                            "on validation: no tuned candidate beat it.")


def _links(report: DatasetReport, client: Any, uri: str) -> list[tuple[str, str | None]]:
    web = uri.startswith(("http://", "https://"))
    parent = report.mlflow_parent_run
    if parent is None:
        return []
    experiment = client.get_run(parent).info.experiment_id

    def url(run_id: str) -> str | None:
        return run_url(uri, str(experiment), run_id) if web else None

    links: list[tuple[str, str | None]] = [(f"parent run {parent} (sweep of {report.name})", url(parent))]
    if report.confirmation is not None:
        for run in report.confirmation.runs:
            role = "selected" if run.trial_id == report.confirmation.selected else run.confirm_role
            text = f"confirmation run {run.run_id}: trial {run.trial_id}, seed {run.seed} ({role})"
            links.append((text, url(run.run_id)))
            if TAG_REGISTERED in run.tags:
                links.append((f"registered model {run.tags[TAG_REGISTERED]} (from run {run.run_id})", None))
    if not web:
        links.append((f"open them with: mlflow ui --backend-store-uri {uri}", None))
    return links


def _distances(report: DatasetReport, client: Any, directory: Path) -> dict[str, dict[str, Any]]:
    """Train/test boundary distances of the first seed's baseline and selected models."""
    assert report.results is not None
    sides = {"baseline": report.results.run_ids["baseline"][0], "selected": report.results.run_ids["selected"][0]}
    if sides["baseline"] == sides["selected"]:
        sides = {"baseline (= selected)": sides["baseline"]}
    result = {}
    for label, run_id in sides.items():
        path = download(client, run_id, DISTANCES_ARTIFACT, directory / run_id)
        if path is not None:
            result[label] = load_distances(path)
    return result


def _plots(report: DatasetReport, distances: dict[str, Any], keys: list[str], plots_dir: Path) -> None:
    name, trials = report.name, report.trials
    highlight = {}
    if report.baseline is not None:
        highlight[report.baseline.trial_id] = "baseline"
    if report.selected is not None and report.selected is not report.baseline:
        highlight[report.selected.trial_id] = "selected"
    if report.results is not None:
        summaries = {
            label: {metric: {c: report.results.summaries[label][metric_key(metric, c)] for c in report.class_names[1:]}
                    for metric, _ in TABLE_METRICS[:3]}
            for label in ("selected", "baseline")
        }
        report.plots.append((f"{name}: per-class test metrics over seeds, selected against baseline",
                             plot_test_metrics(report.class_names, summaries, plots_dir / f"{name}_test_metrics.png")))
    if distances:
        report.plots.append((f"{name}: boundary distance of each class's voxels, train against test (logit shift)",
                             plot_logit_shift(distances, plots_dir / f"{name}_logit_shift.png")))
    if any(t.history for t in trials):
        report.plots.append((f"{name}: optimisation history (validation objective per epoch)",
                             plot_history(trials, report.metric, highlight, plots_dir / f"{name}_history.png")))
    if report.importances:
        report.plots.append((f"{name}: parameter importance per class",
                             plot_importance(report.importances, plots_dir / f"{name}_importance.png")))
    if keys:
        marginals = plot_marginals(trials, keys, report.class_names, highlight, plots_dir / f"{name}_marginals.png")
        report.plots.append((f"{name}: per-class marginals (each trial's validation Dice against each searched value)",
                             marginals))
        parallel = plot_parallel_coordinates(trials, keys, report.metric, plots_dir / f"{name}_parallel.png")
        report.plots.append((f"{name}: parallel coordinates of the searched values and the objective", parallel))
    if report.pareto:
        points = {t.trial_id: class_dice(t.last, report.class_names) for t in trials if t.history and t.error is None}
        report.plots.append((f"{name}: per-class Pareto front of validation Dice",
                             plot_pareto(points, report.pareto, report.class_names, plots_dir / f"{name}_pareto.png")))


def _export(report: DatasetReport, name: str, entry: dict[str, Any], manifest: dict[str, Any],
            options: DecisionOptions, out_dir: Path) -> dict[str, Any] | None:
    trial = report.selected
    if trial is None:
        return None
    spec = trial.spec
    fields: dict[str, Any] = {
        "sweep_id": manifest["sweep_id"], "dataset": name, "trial_id": trial.trial_id,
        "confirmed": report.results is not None,
        "selection": {"split": "val", "objective": options.metric, "mode": options.mode,
                      "constraint": options.constraint, "top_k": options.confirm.top_k},
        "sweep_choice": report.sweep_choice.trial_id if report.sweep_choice else None,
        "baseline_trial_id": report.baseline.trial_id if report.baseline else None,
        "mlflow": {"tracking_uri": manifest["mlflow"]["tracking_uri"],
                   "experiment": manifest["mlflow"]["experiment_name"], "parent_run_id": entry.get("parent_run_id")},
        "optuna": {"storage": manifest.get("optuna_storage"), "study": entry.get("study_name")},
        "search_space": manifest.get("search_space"),
        "dataset_fingerprint": dataset_fingerprint(spec.dataset),
        "verdict": report.verdict.sentence if report.verdict else None,
        "decision": report.verdict.to_dict() if report.verdict else None,
        "rivals": rivals_sentence(report.rivals, options.mode, options.confirm.confidence),
    }
    if report.results is not None and report.confirmation is not None:
        seed = report.results.seeds[0]
        config = Job.of(trial, seed).train_config()
        run = next(r for r in report.confirmation.runs_of(trial.trial_id) if r.seed == seed)
        fields.update(
            seed=seed, mlflow_run_id=run.run_id, candidates=report.confirmation.candidates,
            confirmation_seeds=report.results.seeds,
            test_metrics={k: v for k, v in sorted(run.metrics.items()) if k.startswith("test/")},
            confirmed_metrics=report.results.to_dict(), registered_model=run.tags.get(TAG_REGISTERED),
            trained_on=trained_on([r for r in report.confirmation.runs
                                   if r.trial_id in (trial.trial_id, report.confirmation.baseline)
                                   and r.seed in report.results.seeds]),
        )
    else:
        config = trial_train_config(trial)
        fields.update(seed=int(config["train"]["seed"]), validation_objective=trial.objective(options.metric))
    report.config_path = write_export(config, provenance_record(**fields), out_dir / "configs")
    return fields


def _decision(report: DatasetReport) -> dict[str, Any] | None:
    """``report.json``'s ``decision`` block: the test verdict and the validation race before it."""
    if report.verdict is None:
        return None
    race = report.confirmation.race if report.confirmation is not None else None
    best = best_rival(report.rivals, report.verdict.mode)
    against_best = best["export_vs_it"] if best else None
    return {
        **report.verdict.to_dict(), "over_cases": report.over_cases, "race": race.to_dict() if race else None,
        "rivals": report.rivals,
        "best_rival": best["name"] if best else None,
        "export_beats_best_rival": bool(against_best and against_best["n"] >= 2 and (
            against_best["low"] > 0 if report.verdict.mode == "max" else against_best["high"] < 0)),
    }


def dataset_report(
    name: str, entry: dict[str, Any], manifest: dict[str, Any], options: DecisionOptions, out_dir: Path,
    client: Any | None,
) -> tuple[DatasetReport, dict[str, Any]]:
    """Select, summarise, plot and export one dataset of the sweep; returns the report and its
    numbers for ``report.json``."""
    location = str(entry["experiment_dir"])
    trials: list[TrialRecord] = load_trials(location) if is_directory(location) else []
    class_names = tuple(entry["class_names"])
    baseline = find_baseline(trials)
    report = DatasetReport(
        name=name, class_names=class_names, metric=options.metric, trials=trials,
        expected_trials=manifest.get("num_samples"), baseline=baseline,
        sweep_choice=select_best(trials, options.metric, options.mode, options.constraint, baseline),
        confidence=options.confirm.confidence, constraint=options.constraint,
        mlflow_parent_run=entry.get("parent_run_id"),
    )
    _sweep_notes(report, options)
    warm_start = entry.get("warm_start")  # which earlier sweep and dataset seeded this one (search.warm_start)
    if warm_start:
        report.notes.append(str(warm_start["sentence"]))
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    distances: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        if client is None or report.mlflow_parent_run is None:
            report.notes.append("not confirmed: the MLflow store was not read.")
        else:
            try:
                outcome = read_confirmation(trials, report.mlflow_parent_run, class_names, client, options)
            except Exception as error:  # MLflow raises many kinds (connection, REST, SQL)
                outcome = f"the MLflow store could not be read ({type(error).__name__}: {str(error)[:200]})"
            if isinstance(outcome, str):
                report.notes.append(f"not confirmed: {outcome}.")
            else:
                report.confirmation = outcome
                _confirmation_notes(report, outcome)
                report.results = confirmed_results(outcome, class_names, options.metric, options.confirm.confidence)
                if report.results is not None:
                    report.selected = next(
                        t for t in [*trials, *outcome.rivals.values()] if t.trial_id == outcome.selected
                    )
                    distances = _distances(report, client, Path(scratch))
                    report.over_cases = case_bootstrap(client, report.results, class_names,
                                                       options.confirm.confidence)
            try:
                report.run_links = _links(report, client, manifest["mlflow"]["tracking_uri"])
            except Exception:  # the store is unreachable: the notes say so already
                report.run_links = []
    if report.selected is None:
        report.selected = report.sweep_choice
    if report.results is not None and report.confirmation is not None:
        report.rivals = rivals(report.confirmation, report.results, held_out_metric(options.metric), class_names,
                               options.confirm.confidence)
    if report.selected is not None:
        metric = held_out_metric(options.metric)
        report.verdict = decide(
            metric, options.mode, options.confirm.confidence,
            report.results.differences.get(metric) if report.results is not None else None,
            is_baseline=(report.selected.trial_id == report.confirmation.baseline if report.confirmation is not None
                         else report.selected.settings.is_baseline),
        )
    report.fidelity = rung_fidelity(trials, options.metric, class_names)
    report.shift = {
        label: {c: logit_shift_summary(d["train"][c], d["test"][c]) for c in class_names[1:]}
        for label, d in distances.items()
    }
    report.importances = class_importances(trials, class_names)
    keys = searched_keys(trials)
    if report.importances:
        keys.sort(key=lambda k: -sum(v.get(k, 0.0) for v in report.importances.values()))
    points = {t.trial_id: class_dice(t.last, class_names) for t in trials if t.history and t.error is None}
    points = {k: v for k, v in points.items() if all(math.isfinite(x) for x in v)}
    if len(class_names) > 2 and classes_disagree(points):
        report.pareto = pareto_front(points)
    _plots(report, distances, keys, plots_dir)
    exported = _export(report, name, entry, manifest, options, out_dir)
    numbers = {
        "classes": list(class_names), "sweep_choice": report.sweep_choice.trial_id if report.sweep_choice else None,
        "baseline": report.baseline.trial_id if report.baseline else None,
        "selected": report.selected.trial_id if report.selected else None,
        "setting": describe_trial(report.selected, class_names) if report.selected else None,
        "confirmed": report.results is not None,
        "results": report.results.to_dict() if report.results else None,
        "importances": report.importances, "pareto_front": report.pareto, "notes": report.notes,
        "decision": _decision(report), "fidelity": report.fidelity,
        "export": exported, "warm_start": warm_start or None,
    }
    return report, numbers


DatasetPart = tuple[DatasetReport, dict[str, Any]]
"""One dataset's part of the report: its :class:`DatasetReport` and its numbers for ``report.json``."""
_PLOTTING = threading.Lock()  # pyplot's figures are global state: datasets side by side report one at a time


def dataset_part(output_dir: Path, name: str) -> DatasetPart:
    """One dataset's part of the report, from the output folder as it is now: its plots and its
    exported config written, what :func:`build_report` computes for that dataset.

    The pipeline calls it in the dataset's own unit of work as soon as its confirmation ends, so
    that this work overlaps the other datasets' trainings and the report at the end only
    assembles. Safe to call from threads side by side (one dataset at a time).
    """
    from mlflow.tracking import MlflowClient

    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    options = DecisionOptions.from_output_dir(output_dir, manifest)
    client = MlflowClient(tracking_uri=manifest["mlflow"]["tracking_uri"])
    with _PLOTTING:
        return dataset_report(name, manifest["datasets"][name], manifest, options, output_dir, client)


def build_report(
    output_dir: Path, log_to_mlflow: bool = True, parts: Mapping[str, DatasetPart] | None = None,
) -> list[DatasetReport]:
    """Write ``report.md``, ``report.html``, ``report.json``, ``plots/`` and ``configs/``.

    Args:
        output_dir: the sweep's output folder.
        log_to_mlflow: attach the report to every dataset's parent run.
        parts: datasets' parts already made (:func:`dataset_part`, e.g. by the pipeline as each
            dataset ended); every other dataset of the manifest is reported here.
    """
    from mlflow.tracking import MlflowClient

    output_dir = Path(output_dir)
    manifest = read_manifest(output_dir)
    options = DecisionOptions.from_output_dir(output_dir, manifest)
    uri = manifest["mlflow"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri)
    reports, numbers = [], {}
    for name, entry in manifest["datasets"].items():
        part = (parts or {}).get(name)
        if part is None:
            part = dataset_report(name, entry, manifest, options, output_dir, client)
        report, numbers[name] = part
        reports.append(report)
    title = "asymtune report"
    intro = [
        f"Sweep {manifest['sweep_id']}; objective: {options.mode} {options.metric} on the validation split"
        + (f", constraint {options.constraint}" if options.constraint else "")
        + f"; search space {manifest.get('search_space')}; confirmation: top {options.confirm.top_k}, the rivals and "
        f"the baseline, a race of {options.confirm.seeds} to {options.confirm.seed_budget} seeds, a leader better on "
        f"validation and the baseline up to {options.confirm.verdict_seeds} seeds for the test, "
        f"{round(options.confirm.confidence * 100)}% paired t-intervals.",
        f"MLflow: {uri} (experiment {manifest['mlflow']['experiment_name']}); "
        f"Optuna storage: {manifest.get('optuna_storage')}.",
    ]
    (output_dir / "report.md").write_text(render_markdown(title, intro, reports, output_dir))
    (output_dir / "report.html").write_text(render_html(title, intro, reports))
    summary = summary_table(reports)
    (output_dir / REPORT_JSON).write_text(json.dumps(_finite_or_null(
        {"sweep_id": manifest["sweep_id"], "objective": {"metric": options.metric, "mode": options.mode},
         "summary": {"header": summary.header, "rows": summary.rows}, "datasets": numbers}),
        indent=2, default=str,
    ) + "\n")
    if log_to_mlflow:
        _log_to_mlflow(uri, reports, output_dir)
    return reports


def _finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def parent_description(report: DatasetReport) -> str:
    """The parent run's description in MLflow (Markdown): the chosen setting and its verdict."""
    if report.selected is None:
        return f"Sweep of `{report.name}`: no trial finished with a validation result yet, nothing chosen."
    how = (
        f"confirmed: best mean validation {report.metric} over {report.race_seeds} seeds"
        if report.results is not None else f"the sweep's best validation {report.metric}, not confirmed"
    )
    verdict = report.verdict.sentence if report.verdict is not None else "none: the choice was not tested."
    return (
        f"**Chosen setting** for `{report.name}`: trial {report.selected.trial_id}, "
        f"{describe_trial(report.selected, report.class_names)} ({how}).\n\n"
        f"**Verdict:** {verdict}\n\nThe report: this run's artifacts, `report/report.html`."
    )


def _log_to_mlflow(uri: str, reports: list[DatasetReport], output_dir: Path) -> None:
    from asymtune.tracking.mlflow_tracker import describe_run, log_artifacts, set_parent_tags

    for report in reports:
        if not report.mlflow_parent_run:
            continue
        files = [output_dir / "report.md", output_dir / "report.html", output_dir / REPORT_JSON]
        if report.config_path is not None:
            folder = report.config_path.parent
            files += [report.config_path, folder / f"{report.name}.provenance.json"]
            log_artifacts(uri, report.mlflow_parent_run, [folder / "experiment" / f"{report.name}.yaml"],
                          artifact_path="report/experiment")
        log_artifacts(uri, report.mlflow_parent_run, files, artifact_path="report")
        if report.selected is not None:
            set_parent_tags(uri, report.mlflow_parent_run, {"asymtune.selected_trial": report.selected.trial_id})
        describe_run(uri, report.mlflow_parent_run, parent_description(report))

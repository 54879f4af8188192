"""Render the report as Markdown (for reviews) and self-contained HTML (images inlined, no
external resource, opens offline)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asymtune.confirm.retrain import Confirmation
from asymtune.confirm.stats import Summary, t_summary
from asymtune.confirm.verdict import Verdict
from asymtune.report.cases import case_sentence
from asymtune.report.results import TABLE_METRICS, ConfirmedResults, describe_trial, metric_key
from asymtune.report.rivals import rivals_sentence
from asymtune.results.trials import TrialRecord


@dataclass
class DatasetReport:
    """Everything the report says about one dataset.

    ``selected`` is the confirmed choice when the confirmation ran, else the sweep's validation
    choice (``sweep_choice``).
    """

    name: str
    class_names: tuple[str, ...]
    metric: str
    trials: list[TrialRecord]
    expected_trials: int | None
    sweep_choice: TrialRecord | None
    baseline: TrialRecord | None
    selected: TrialRecord | None = None
    confirmation: Confirmation | None = None
    results: ConfirmedResults | None = None
    confidence: float = 0.95
    constraint: str | None = None
    shift: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    pareto: list[str] = field(default_factory=list)
    plots: list[tuple[str, Path]] = field(default_factory=list)
    config_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    mlflow_parent_run: str | None = None
    run_links: list[tuple[str, str | None]] = field(default_factory=list)
    verdict: Verdict | None = None
    fidelity: list[dict[str, Any]] = field(default_factory=list)
    rivals: list[dict[str, Any]] = field(default_factory=list)
    over_cases: dict[str, Any] | None = None

    @property
    def confirmed(self) -> bool:
        return self.results is not None

    @property
    def race_seeds(self) -> int:
        """Seeds per setting of the confirmation's race (0 without a confirmation)."""
        return len(self.confirmation.seeds) if self.confirmation is not None else 0


# ------------------------------------------------------------------------------ parts
@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    caption: str
    path: Path


@dataclass(frozen=True)
class Links:
    """Labelled items, each with an address or None (then shown as text)."""

    items: list[tuple[str, str | None]]


Part = str | Table | Figure | Links


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers as the report prints them (``n/a`` for NaN)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def fmt_summary(summary: Summary | None) -> str:
    """``mean ± sd`` (``mean`` alone for one seed)."""
    if summary is None:
        return "n/a"
    return fmt(summary.mean) if math.isnan(summary.sd) else f"{fmt(summary.mean)} ± {fmt(summary.sd)}"


def fmt_interval(summary: Summary | None) -> str:
    """``[low, high]`` of a t-interval."""
    if summary is None or math.isnan(summary.low):
        return "n/a"
    return f"[{fmt(summary.low)}, {fmt(summary.high)}]"


def fmt_difference(summary: Summary | None) -> str:
    return "n/a" if summary is None else f"{summary.mean:+.3f}"


# ----------------------------------------------------------------------------- tables
def setting_table(report: DatasetReport) -> Table:
    """Per-class values of the selected setting."""
    assert report.selected is not None
    s = report.selected.settings
    rows = [[name, fmt(s.rare[i]), fmt(s.margin[i]), fmt(s.gamma[i])] for i, name in enumerate(report.class_names)]
    return Table(["class", "rare", "margin m_j", "focal gamma_j"], rows)


def candidates_table(report: DatasetReport) -> Table:
    """The retrained settings: validation objective over seeds, and which one was chosen."""
    assert report.confirmation is not None
    confirmation = report.confirmation
    rows = []
    for trial_id in confirmation.trained:
        runs = confirmation.runs_of(trial_id, race_only=True)  # the choice's numbers
        values = [run.metrics.get(report.metric, math.nan) for run in runs]
        finite = [v for v in values if math.isfinite(v)]
        summary = t_summary(finite, report.confidence) if finite else None
        role = ["baseline"] if trial_id == confirmation.baseline else []
        if (rival := confirmation.rival_of(trial_id)) is not None:
            role.append(f"rival {rival}")
        if trial_id == confirmation.sweep_choice:
            role.append("sweep choice")
        rows.append([
            trial_id, ", ".join(role),
            f"{len(confirmation.runs_of(trial_id))} of {len(confirmation.seeds_of(trial_id))}", fmt_summary(summary),
            "chosen" if trial_id == confirmation.selected else "",
        ])
    validation = f"validation {report.metric} over the race's {len(confirmation.seeds)} seeds (mean ± sd)"
    return Table(["trial", "role", "seeds trained", validation, "decision"], rows)


def confirmed_table(report: DatasetReport) -> Table:
    """Per class and metric: selected and baseline over seeds, their paired difference and its interval."""
    results = report.results
    assert results is not None
    level = f"{round(report.confidence * 100)}% CI"
    rows = []
    for name in [*report.class_names[1:], None]:
        for metric, title in TABLE_METRICS:
            key = metric_key(metric, name)
            rows.append([
                name or "mean (foreground)", title,
                fmt_summary(results.summaries["selected"].get(key)),
                fmt_summary(results.summaries["baseline"].get(key)),
                fmt_difference(results.differences.get(key)), fmt_interval(results.differences.get(key)),
            ])
    return Table(["class", "metric", "selected", "baseline", "difference", level], rows)


def shift_table(report: DatasetReport) -> Table:
    """Median boundary distance on train and test, their difference and the share misclassified."""
    rows = []
    for name in report.class_names[1:]:
        for label, per_class in report.shift.items():
            summary = per_class[name]
            rows.append([
                name, label, fmt(summary["median_train"]), fmt(summary["median_val"]), fmt(summary["shift"]),
                fmt(summary["frac_negative_val"]), fmt(summary["wasserstein"]),
            ])
    return Table(["class", "setting", "median train", "median test", "shift", "test s<0", "W1"], rows)


def importance_table(report: DatasetReport) -> Table:
    """Importance of each searched value (rows) for each class's Dice (columns)."""
    classes = list(report.importances)
    keys = sorted({k for values in report.importances.values() for k in values},
                  key=lambda k: -sum(report.importances[c].get(k, 0.0) for c in classes))
    rows = [[key] + [fmt(report.importances[c].get(key, 0.0), 2) for c in classes] for key in keys]
    return Table(["searched value"] + [f"Dice {c}" for c in classes], rows)


def pareto_table(report: DatasetReport) -> Table:
    """The trials on the per-class Pareto front of validation Dice."""
    by_id = {t.trial_id: t for t in report.trials}
    rows = []
    for trial_id in report.pareto:
        trial = by_id[trial_id]
        rows.append([trial_id, describe_trial(trial, report.class_names)]
                    + [fmt(trial.last.get(f"val/dice/{c}", math.nan)) for c in report.class_names[1:]])
    return Table(["trial", "setting"] + [f"val Dice {c}" for c in report.class_names[1:]], rows)


def trials_table(report: DatasetReport) -> Table:
    """Every trial: status, epochs, objective and its searched values."""
    keys = sorted({k for t in report.trials for k in t.config if k != "asymtune"})
    rows = []
    for trial in report.trials:
        status = "error" if trial.error else ("no result" if not trial.history else "ok")
        role = []
        if report.selected is trial:
            role.append("selected")
        if report.sweep_choice is trial and report.selected is not trial:
            role.append("sweep choice")
        if report.baseline is trial:
            role.append("baseline")
        rows.append(
            [trial.trial_id, ", ".join(role), status, str(trial.epochs), fmt(trial.objective(report.metric))]
            + [fmt(trial.config.get(k)) for k in keys]
        )
    return Table(["trial", "role", "status", "epochs", report.metric] + keys, rows)


def summary_table(reports: Sequence[DatasetReport]) -> Table:
    """Across datasets: classes, the chosen setting, the confirmed validation and test numbers."""
    rows = []
    for report in reports:
        results = report.results
        dice = metric_key("dice", None)
        per_class = "; ".join(
            f"{c} {fmt_difference(results.differences.get(metric_key('dice', c)))}" for c in report.class_names[1:]
        ) if results else "n/a"
        rows.append([
            report.name, ", ".join(report.class_names[1:]),
            describe_trial(report.selected, report.class_names) if report.selected else "none",
            "yes" if results else "no",
            fmt_summary(results.summaries["selected"].get(report.metric)) if results else "n/a",
            fmt_summary(results.summaries["selected"].get(dice)) if results else "n/a",
            fmt_summary(results.summaries["baseline"].get(dice)) if results else "n/a",
            (f"{fmt_difference(results.differences.get(dice))} {fmt_interval(results.differences.get(dice))}"
             if results else "n/a"),
            per_class,
            _short_verdict(report.verdict),
        ])
    return Table(
        ["dataset", "foreground classes", "chosen setting", "confirmed", "validation objective",
         "test mean fg Dice (selected)", "(baseline)", "gain [CI]", "Dice gain per class", "verdict"],
        rows,
    )


def _short_verdict(verdict: Verdict | None) -> str:
    """The verdict in a few words, for the summary table."""
    if verdict is None:
        return "n/a"
    level = f"{round(verdict.confidence * 100)}%"
    if verdict.is_baseline:
        return "the baseline"
    if verdict.significant:
        return f"better at {level}"
    return f"not better at {level}"


def rivals_table(report: DatasetReport) -> Table:
    def interval(entry: dict[str, Any] | None) -> str:
        if not entry:
            return ""
        low, high = entry["low"], entry["high"]
        bounds = f" [{low:+.3f}, {high:+.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
        return f"{entry['mean']:+.3f}{bounds}"

    rows = [
        [entry["name"], entry["description"], f"{entry['test']['mean']:.3f} ± {fmt(entry['test']['sd'])}",
         interval(entry["vs_baseline"]), interval(entry["export_vs_it"])]
        for entry in report.rivals
    ]
    metric = report.verdict.metric if report.verdict else "test objective"
    return Table(["rival", "what", metric, "vs baseline [CI]", "export vs it [CI]"], rows)


def _rung_action(entry: dict[str, Any]) -> str:
    """What the sweep did at a rung, in words (``asymtune.report.fidelity``)."""
    decided = entry.get("decided_with")
    if not decided:
        return str(entry["action"])
    return (f"{entry['action']} (rho {fmt(decided['rho'], 2)} over {decided['pairs']} trials when it last decided); "
            f"stopped {entry.get('stopped', 0)}")


def fidelity_table(report: DatasetReport) -> Table:
    rows = [
        [str(entry["epoch"]), fmt(entry["rho"], 2), str(entry["pairs"]),
         "; ".join(f"{c} {fmt(rho, 2)}" for c, rho in entry["per_class"].items()),
         "; ".join(f"{name} {fmt(signal['rho'], 2)}" for name, signal in entry.get("signals", {}).items()
                   if name != "objective"),
         str(entry.get("best_signal") or "n/a"), _rung_action(entry)]
        for entry in report.fidelity
    ]
    return Table(["rung (epoch)", "Spearman rho", "trials", "per class (Dice)", "early signals (rho)",
                  "best predictor", "sweep's action"], rows)


# ---------------------------------------------------------------------------- sections
def _sections(report: DatasetReport) -> list[tuple[str, Part]]:
    """The report of one dataset as a list of (heading, part)."""
    parts: list[tuple[str, Part]] = []
    for note in report.notes:
        parts.append(("", f"Note: {note}"))
    if report.selected is None:
        parts.append(("", "No trial finished with a validation result yet: nothing to select."))
    else:
        how = (
            f"the best mean validation {report.metric} over {report.race_seeds} seeds among the sweep's "
            "top settings, the trained rivals and the baseline (confirmed)"
            if report.results is not None
            else f"the sweep's best validation {report.metric} (not confirmed over seeds, not tested)"
        )
        if report.constraint:
            how += f", subject to {report.constraint}"
        parts.append((
            "Chosen setting",
            f"Trial {report.selected.trial_id}: {describe_trial(report.selected, report.class_names)}. "
            f"Chosen by {how}. Exported config: {report.config_path.name if report.config_path else 'none'}.",
        ))
        parts.append(("", setting_table(report)))
    if report.verdict is not None:
        parts.append(("Verdict", report.verdict.sentence))
        if report.over_cases is not None:
            parts.append(("", case_sentence(report.over_cases)))
    if report.confirmation is not None and (report.confirmation.runs or report.results):
        race = report.confirmation.race
        race_text = f"Race: {race.sentence}" if race else "Race: not finished (the confirmation was interrupted)."
        parts.append(("Selection on validation", "Retrained settings (validation split only; the test split "
                      f"played no part in the choice). {race_text}"))
        parts.append(("", candidates_table(report)))
    if report.results is not None:
        parts.append((
            "Test metrics per class",
            f"The chosen setting and the baseline, each trained with seeds {report.results.seeds}, evaluated once on "
            "the held-out test split after the choice. Mean ± standard deviation over seeds; difference = mean over "
            "seeds of (selected - baseline) with the same seed, with its Student-t interval. Dice, sensitivity, "
            "precision: test voxels pooled; HD95: mean over test cases, in mm (lower is better).",
        ))
        parts.append(("", confirmed_table(report)))
    if report.rivals:
        parts.append((
            "Rivals",
            "What a user could do without the tuner (method.md section 8), with the same seeds on the same test "
            "split: paired differences with their Student-t intervals.",
        ))
        parts.append(("", rivals_table(report)))
        sentence = rivals_sentence(report.rivals, report.verdict.mode if report.verdict else "max", report.confidence)
        if sentence:
            parts.append(("", sentence[0].upper() + sentence[1:] + "."))
    if report.shift:
        parts.append((
            "Logit shift",
            "Signed distance to the decision boundary of voxels of each class (method.md section 4), first seed's "
            "models: a positive shift means test voxels sit closer to (or across) the boundary than training voxels.",
        ))
        parts.append(("", shift_table(report)))
    if report.importances:
        parts.append((
            "What each searched value does",
            f"PED-ANOVA importance (Optuna) of each searched value for each class's validation Dice, over the "
            f"sweep's {sum(1 for t in report.trials if t.history and t.error is None)} trials with a result (trials "
            "stopped early count with their last epoch; with few trials, read it as a hint).",
        ))
        parts.append(("", importance_table(report)))
    if report.pareto:
        parts.append((
            "Per-class Pareto front",
            "The classes disagree: no trial has the best validation Dice for every class. Trials no other beats on "
            "every class:",
        ))
        parts.append(("", pareto_table(report)))
    if report.fidelity:
        parts.append((
            "Early stopping: did the rungs predict the end?",
            "Spearman rank correlation between the trials' validation values at each ASHA rung and at the last "
            "epoch, over the trials that reached both (trials stopped at a rung are not in it). Near 0 or below: "
            "the rung ranked trials no better than chance. During the sweep the first search.scheduler.probe_trials "
            "trials were never stopped, and a rung stopped trials (ASHA's rule, on the objective) only while its rho "
            "over at least search.scheduler.min_pairs such trials was at least search.scheduler.min_rho; otherwise "
            "it was disabled and let every trial pass ('sweep's action': its last decision). Early signals: the "
            "rare classes' validation margin (median boundary distance), minus their logit shift, their validation "
            "sensitivity, and a log-curve fit of the objective, each at the rung against the final objective; "
            "'best predictor' names one only where it beat the objective at the same epoch (the scheduler still "
            "stops on the objective).",
        ))
        parts.append(("", fidelity_table(report)))
    for caption, path in report.plots:
        parts.append(("", Figure(caption, path)))
    parts.append(("Trials", trials_table(report)))
    if report.run_links:
        parts.append(("MLflow runs", Links(report.run_links)))
    return parts


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_part(part: Part, out_dir: Path) -> list[str]:
    if isinstance(part, str):
        return [part, ""]
    if isinstance(part, Figure):
        return [f"![{part.caption}]({part.path.relative_to(out_dir).as_posix()})", "", f"*{part.caption}*", ""]
    if isinstance(part, Links):
        return [f"- {text}: <{url}>" if url else f"- {text}" for text, url in part.items] + [""]
    return [_md_table(part), ""]


def _html_part(part: Part) -> str:
    if isinstance(part, str):
        return f"<p>{html.escape(part)}</p>"
    if isinstance(part, Figure):
        data = base64.b64encode(part.path.read_bytes()).decode("ascii")
        return (f"<figure><img alt='{html.escape(part.caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(part.caption)}</figcaption></figure>")
    if isinstance(part, Links):
        items = "".join(
            f"<li><a href='{html.escape(url)}'>{html.escape(text)}</a></li>" if url else f"<li>{html.escape(text)}</li>"
            for text, url in part.items
        )
        return f"<ul>{items}</ul>"
    return _html_table(part)


def render_markdown(
    title: str, intro: Sequence[str], reports: Sequence[DatasetReport], out_dir: Path
) -> str:
    """The Markdown report; figures are referenced relative to ``out_dir``."""
    lines = [f"# {title}", "", *intro, "", "## Summary across datasets", "", _md_table(summary_table(reports)), ""]
    for report in reports:
        lines += [f"## {report.name}", ""]
        for heading, part in _sections(report):
            if heading:
                lines += [f"### {heading}", ""]
            lines += _md_part(part, out_dir)
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead{background:#f0f0f0} figure{margin:1em 0} img{max-width:100%}
nav a{margin-right:1em}
"""


def render_html(title: str, intro: Sequence[str], reports: Sequence[DatasetReport]) -> str:
    """A self-contained HTML page: figures are inlined as base64 PNG, no external resources."""
    body = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(p)}</p>" for p in intro]
    anchors = "".join(f"<a href='#{html.escape(r.name)}'>{html.escape(r.name)}</a>" for r in reports)
    body.append(f"<nav>{anchors}</nav>")
    body += ["<h2>Summary across datasets</h2>", _html_table(summary_table(reports))]
    for report in reports:
        body.append(f"<h2 id='{html.escape(report.name)}'>{html.escape(report.name)}</h2>")
        for heading, part in _sections(report):
            if heading:
                body.append(f"<h3>{html.escape(heading)}</h3>")
            body.append(_html_part(part))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )

"""Render the report as Markdown (for reviews) and self-contained HTML (images inlined)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asymtune.report.collect import TrialRecord
from asymtune.report.evaluate import Evaluation


@dataclass
class DatasetReport:
    """Everything the report says about one dataset."""

    name: str
    class_names: tuple[str, ...]
    metric: str
    trials: list[TrialRecord]
    expected_trials: int | None
    selected: TrialRecord | None
    baseline: TrialRecord | None
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    shift: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    plots: list[tuple[str, Path]] = field(default_factory=list)
    config_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    mlflow_parent_run: str | None = None


Table = tuple[list[str], list[list[str]]]


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def setting_table(report: DatasetReport) -> Table:
    """Per-class values of the selected setting (and the baseline for comparison)."""
    assert report.selected is not None
    s = report.selected.settings
    rows = [[name, _fmt(s.rare[i]), _fmt(s.margin[i]), _fmt(s.gamma[i])] for i, name in enumerate(report.class_names)]
    return ["class", "rare", "margin m_j", "focal gamma_j"], rows


def metrics_table(report: DatasetReport) -> Table:
    """Per-class test Dice, sensitivity and precision of each evaluated setting."""
    labels = list(report.evaluations)
    header = ["class"] + [f"{metric} ({label})" for metric in ("Dice", "sensitivity", "precision") for label in labels]
    rows = []
    for name in [*report.class_names[1:], "mean (foreground)"]:
        row = [name]
        for metric in ("dice", "sensitivity", "precision"):
            for label in labels:
                metrics = report.evaluations[label].metrics
                key = f"test/mean_fg_{metric}" if name == "mean (foreground)" else f"test/{metric}/{name}"
                row.append(_fmt(metrics.get(key, math.nan)))
        rows.append(row)
    return header, rows


def shift_table(report: DatasetReport) -> Table:
    """Median boundary distance on train and test, their difference and the share misclassified."""
    header = ["class", "setting", "median train", "median test", "shift", "test s<0", "W1"]
    rows = []
    for name in report.class_names[1:]:
        for label, per_class in report.shift.items():
            summary = per_class[name]
            rows.append([
                name, label, _fmt(summary["median_train"]), _fmt(summary["median_val"]), _fmt(summary["shift"]),
                _fmt(summary["frac_negative_val"]), _fmt(summary["wasserstein"]),
            ])
    return header, rows


def trials_table(report: DatasetReport) -> Table:
    """Every trial: status, epochs, objective and its searched values."""
    keys = sorted({k for t in report.trials for k in t.config if k != "asymtune"})
    rows = []
    for trial in report.trials:
        status = "error" if trial.error else ("no result" if not trial.history else "ok")
        role = []
        if report.selected is trial:
            role.append("selected")
        if report.baseline is trial:
            role.append("baseline")
        rows.append(
            [trial.trial_id, ", ".join(role), status, str(trial.epochs), _fmt(trial.objective(report.metric))]
            + [_fmt(trial.config.get(k)) for k in keys]
        )
    return ["trial", "role", "status", "epochs", report.metric] + keys, rows


def _md_table(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sections(report: DatasetReport) -> list[tuple[str, Table | str | tuple[str, Path]]]:
    """The report of one dataset as a list of (heading, table | paragraph | figure)."""
    parts: list[tuple[str, Table | str | tuple[str, Path]]] = []
    for note in report.notes:
        parts.append(("", f"Note: {note}"))
    if report.selected is None:
        parts.append(("", "No trial finished with a validation result yet: nothing to select."))
    else:
        s = report.selected.settings
        parts.append((
            "Chosen setting",
            f"Trial {report.selected.trial_id}, selected by the best validation {report.metric} "
            f"({_fmt(report.selected.objective(report.metric))}; baseline "
            f"{_fmt(report.baseline.objective(report.metric)) if report.baseline else 'n/a'}). "
            f"Mixup alpha {_fmt(s.mixup_alpha)}, mixup margin {_fmt(s.mixup_margin)}, adversarial eps "
            f"{_fmt(s.adv_eps)}, augmentation p_bg {_fmt(s.aug_p_bg)}, schedule {s.schedule}. "
            f"Exported config: {report.config_path.name if report.config_path else 'none'}.",
        ))
        parts.append(("", setting_table(report)))
    if report.evaluations:
        parts.append((
            "Test metrics per class",
            "Computed once on the held-out test split after selection; the test split played no part in it.",
        ))
        parts.append(("", metrics_table(report)))
    if report.shift:
        parts.append((
            "Logit shift",
            "Signed distance to the decision boundary of voxels of each class (method.md section 4): "
            "a positive shift means test voxels sit closer to (or across) the boundary than training voxels.",
        ))
        parts.append(("", shift_table(report)))
    for caption, path in report.plots:
        parts.append(("", (caption, path)))
    parts.append(("Trials", trials_table(report)))
    if report.mlflow_parent_run:
        parts.append(("", f"MLflow parent run: {report.mlflow_parent_run}"))
    return parts


def render_markdown(title: str, intro: Sequence[str], reports: Sequence[DatasetReport], out_dir: Path) -> str:
    """The Markdown report; figures are referenced relative to ``out_dir``."""
    lines = [f"# {title}", "", *intro, ""]
    for report in reports:
        lines += [f"## {report.name}", ""]
        for heading, part in _sections(report):
            if heading:
                lines += [f"### {heading}", ""]
            if isinstance(part, str):
                lines += [part, ""]
            elif isinstance(part[1], Path):
                caption, path = part
                lines += [f"![{caption}]({path.relative_to(out_dir).as_posix()})", "", f"*{caption}*", ""]
            else:
                lines += [_md_table(part), ""]  # type: ignore[arg-type]
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead{background:#f0f0f0} figure{margin:1em 0} img{max-width:100%}
"""


def render_html(title: str, intro: Sequence[str], reports: Sequence[DatasetReport]) -> str:
    """A self-contained HTML page: figures are inlined as base64 PNG, no external resources."""
    body = [f"<h1>{html.escape(title)}</h1>"] + [f"<p>{html.escape(p)}</p>" for p in intro]
    for report in reports:
        body.append(f"<h2 id='{html.escape(report.name)}'>{html.escape(report.name)}</h2>")
        for heading, part in _sections(report):
            if heading:
                body.append(f"<h3>{html.escape(heading)}</h3>")
            if isinstance(part, str):
                body.append(f"<p>{html.escape(part)}</p>")
            elif isinstance(part[1], Path):
                caption, path = part
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                body.append(
                    f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            else:
                body.append(_html_table(part))  # type: ignore[arg-type]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )

"""The report's figures (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from asymtune.confirm.stats import Summary
from asymtune.results.trials import TrialRecord

METRICS = ("dice", "sensitivity", "precision")
MAX_KEYS = 6  # searched values drawn in the marginal plots (the most important first)


def _save(fig: Figure, path: Path, tight: bool = True) -> Path:
    if tight:  # slow for grids of many panels, which set their spacing themselves
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _number(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else math.nan


def plot_test_metrics(
    class_names: Sequence[str], summaries: Mapping[str, Mapping[str, Mapping[str, Summary]]], path: Path
) -> Path:
    """Grouped bars per foreground class and metric: the mean over seeds of each setting, with the
    spread (one standard deviation) as error bars. ``summaries[label][metric][class]``."""
    foreground = list(class_names[1:])
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2), squeeze=False)
    width = 0.8 / max(len(summaries), 1)
    positions = np.arange(len(foreground))
    for ax, metric in zip(axes[0], METRICS):
        for offset, (label, per_metric) in enumerate(summaries.items()):
            values = [per_metric[metric][name].mean for name in foreground]
            spreads = [per_metric[metric][name].sd for name in foreground]
            errors = [0.0 if math.isnan(sd) else sd for sd in spreads]
            ax.bar(positions + offset * width, values, width, yerr=errors, capsize=3, label=label)
        ax.set_xticks(positions + width * (len(summaries) - 1) / 2, foreground)
        ax.set_ylim(0, 1)
        ax.set_title(f"test {metric} (mean, sd over seeds)", fontsize=9)
    axes[0][0].legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_history(
    trials: Sequence[TrialRecord], metric: str, highlight: Mapping[str, str], path: Path
) -> Path:
    """Validation objective per epoch for every trial; highlighted trials drawn in colour."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for trial in trials:
        epochs = [_number(row.get("training_iteration")) for row in trial.history]
        values = [_number(row.get(metric)) for row in trial.history]
        label = highlight.get(trial.trial_id)
        if label:
            ax.plot(epochs, values, marker="o", linewidth=2, label=f"{label} ({trial.trial_id})")
        else:
            ax.plot(epochs, values, color="0.7", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("optimisation history (grey: other trials)")
    if highlight:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_importance(importances: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Horizontal bars: for each searched value, its PED-ANOVA importance for each class's Dice."""
    classes = list(importances)
    keys = sorted({key for values in importances.values() for key in values})
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(keys) * max(len(classes), 1) ** 0.5 + 1.2))
    height = 0.8 / max(len(classes), 1)
    positions = np.arange(len(keys))
    for offset, name in enumerate(classes):
        ax.barh(positions + offset * height, [importances[name].get(key, 0.0) for key in keys], height, label=name)
    ax.set_yticks(positions + height * (len(classes) - 1) / 2, keys, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("importance for the class's validation Dice (PED-ANOVA, sums to 1 per class)", fontsize=8)
    ax.legend(fontsize=8, title="class")
    return _save(fig, path)


def plot_marginals(
    trials: Sequence[TrialRecord], keys: Sequence[str], class_names: Sequence[str], highlight: Mapping[str, str],
    path: Path,
) -> Path:
    """One panel per (class, searched value): each trial's last validation Dice of the class
    against the value it tried; highlighted trials marked."""
    keys = list(keys)[:MAX_KEYS]
    classes = list(class_names[1:])
    finished = [t for t in trials if t.history and t.error is None]
    fig, axes = plt.subplots(
        len(classes), max(len(keys), 1), figsize=(2.4 * max(len(keys), 1), 2.1 * len(classes)), squeeze=False
    )
    for row, name in enumerate(classes):
        for col, key in enumerate(keys):
            ax = axes[row][col]
            x = [_number(t.config.get(key)) for t in finished]
            y = [_number(t.last.get(f"val/dice/{name}")) for t in finished]
            ax.scatter(x, y, s=14, color="0.45")
            for trial in finished:
                if trial.trial_id in highlight:
                    ax.scatter([_number(trial.config.get(key))], [_number(trial.last.get(f"val/dice/{name}"))],
                               s=40, marker="*", label=highlight[trial.trial_id])
            ax.tick_params(labelsize=7)
            if row == len(classes) - 1:
                ax.set_xlabel(key, fontsize=8)
            if col == 0:
                ax.set_ylabel(f"val Dice {name}", fontsize=8)
    if finished and keys and highlight:
        axes[0][0].legend(fontsize=7)
    height, width = fig.get_size_inches()[1], fig.get_size_inches()[0]  # margins in inches: labels fit any grid
    fig.subplots_adjust(
        left=0.75 / width, right=0.98, bottom=0.5 / height, top=1 - 0.15 / height, wspace=0.35, hspace=0.3
    )
    return _save(fig, path, tight=False)


def plot_parallel_coordinates(
    trials: Sequence[TrialRecord], keys: Sequence[str], metric: str, path: Path
) -> Path:
    """One line per trial across its searched values (each scaled to its range) and the objective,
    coloured by the objective."""
    finished = [t for t in trials if t.history and t.error is None]
    axes_names = list(keys) + [metric]
    table = np.array([[_number(t.config.get(k)) for k in keys] + [_number(t.last.get(metric))] for t in finished])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(axes_names)), 3.6))
    if table.size:
        low, high = np.nanmin(table, axis=0), np.nanmax(table, axis=0)
        scaled = (table - low) / np.where(high > low, high - low, 1.0)
        colours = plt.cm.viridis(scaled[:, -1])
        for row, colour in zip(scaled, colours):
            ax.plot(range(len(axes_names)), row, color=colour, alpha=0.8)
        for index, (lo, hi) in enumerate(zip(low, high)):
            ax.annotate(f"{hi:.3g}", (index, 1.0), fontsize=7, ha="center", va="bottom")
            ax.annotate(f"{lo:.3g}", (index, 0.0), fontsize=7, ha="center", va="top")
    ax.set_xticks(range(len(axes_names)), axes_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    ax.set_title("parallel coordinates (colour: objective)", fontsize=9)
    return _save(fig, path)


def plot_pareto(
    points: Mapping[str, Sequence[float]], front: Sequence[str], class_names: Sequence[str], path: Path
) -> Path:
    """Per pair of foreground classes, each trial's validation Dice; the Pareto front marked."""
    classes = list(class_names[1:])
    pairs = list(itertools.combinations(range(len(classes)), 2))[:3]
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.6 * len(pairs), 3.3), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        for key, values in points.items():
            on_front = key in front
            ax.scatter([values[i]], [values[j]], s=40 if on_front else 14, color="C3" if on_front else "0.5",
                       marker="D" if on_front else "o")
            if on_front:
                ax.annotate(key, (values[i], values[j]), fontsize=6)
        ax.set_xlabel(f"val Dice {classes[i]}", fontsize=8)
        ax.set_ylabel(f"val Dice {classes[j]}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_title("per-class Pareto front (red diamonds)", fontsize=9)
    return _save(fig, path)

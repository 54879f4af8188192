"""The report's figures (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from asymtune.report.collect import TrialRecord  # noqa: E402
from asymtune.train.diagnostics import plot_logit_shift  # noqa: E402,F401  (re-exported for the report)

METRICS = ("dice", "sensitivity", "precision")


def plot_test_metrics(
    class_names: Sequence[str], evaluations: Mapping[str, Mapping[str, float]], path: Path
) -> Path:
    """Grouped bars: per foreground class, each metric, one bar per evaluated setting."""
    foreground = list(class_names[1:])
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2), squeeze=False)
    width = 0.8 / max(len(evaluations), 1)
    positions = np.arange(len(foreground))
    for ax, metric in zip(axes[0], METRICS):
        for offset, (label, metrics) in enumerate(evaluations.items()):
            values = [metrics.get(f"test/{metric}/{name}", np.nan) for name in foreground]
            ax.bar(positions + offset * width, values, width, label=label)
        ax.set_xticks(positions + width * (len(evaluations) - 1) / 2, foreground)
        ax.set_ylim(0, 1)
        ax.set_title(f"test {metric}")
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_history(
    trials: Sequence[TrialRecord], metric: str, highlight: Mapping[str, str], path: Path
) -> Path:
    """Validation objective per epoch for every trial; highlighted trials drawn in colour."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for trial in trials:
        epochs = [row.get("training_iteration") for row in trial.history]
        values = [row.get(metric) for row in trial.history]
        label = highlight.get(trial.trial_id)
        if label:
            ax.plot(epochs, values, marker="o", linewidth=2, label=f"{label} ({trial.trial_id})")
        else:
            ax.plot(epochs, values, color="0.7", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("optimisation history (grey: other trials)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

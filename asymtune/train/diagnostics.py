"""Logit-shift diagnostics of a trained model (method.md section 4).

For every foreground class: the signed boundary distance of its voxels on the training split and
on a held-out split, their medians, the shift between them, the share across the boundary and a
1-Wasserstein distance.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from asymtune.data.base import Split
from asymtune.losses import boundary_distance, logit_shift_summary
from asymtune.train.trainer import SplitLogits, Trainer

DIAGNOSTICS_FILE = "diagnostics.npz"
SUMMARY_KEYS = ("median_train", "median_val", "shift", "frac_negative_train", "frac_negative_val", "wasserstein")
_MAX_VALUES = 50_000  # per class and split in the stored file (a seeded subsample beyond that)


def split_distances(trainer: Trainer, split: Split, logits: SplitLogits | None = None) -> dict[str, np.ndarray]:
    """Boundary distance of every voxel of each foreground class, ``{class: (K,) float32}``, over
    all cases of ``split``.

    ``logits`` of ``split`` (as :meth:`Trainer.predict_logits` returns them) may be passed when
    already computed.
    """
    logits = trainer.predict_logits(split) if logits is None else logits
    names = trainer.dataset.class_names
    if isinstance(logits, torch.Tensor):
        target = torch.from_numpy(np.asarray(split.labels)).to(torch.int64)
        return {names[c]: boundary_distance(logits, target, c).numpy() for c in range(1, len(names))}
    per_case: dict[str, list[np.ndarray]] = {names[c]: [] for c in range(1, len(names))}
    for case_logits, (_, label) in zip(logits, split.cases()):
        target = torch.from_numpy(np.array(label, dtype=np.int64))[None]
        for c in range(1, len(names)):
            per_case[names[c]].append(boundary_distance(case_logits[None], target, c).numpy())
    return {name: np.concatenate(values) for name, values in per_case.items()}


def shift_metrics(
    train: dict[str, np.ndarray], held_out: dict[str, np.ndarray], prefix: str = "diag"
) -> dict[str, float]:
    """Flat ``{prefix}/{summary}/{class}`` metrics, summaries as in :func:`logit_shift_summary`."""
    metrics = {}
    for name in train:
        summary = logit_shift_summary(train[name], held_out[name])
        for key in SUMMARY_KEYS:
            metrics[f"{prefix}/{key}/{name}"] = float(summary[key])
    return metrics


def save_distances(train: dict[str, np.ndarray], held_out: dict[str, np.ndarray], path: Path, seed: int = 0) -> Path:
    """Store both sets of distances (``train/<class>``, ``val/<class>``) as a compressed ``.npz``."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, distances in (("train", train), ("val", held_out)):
        for name, values in distances.items():
            if values.size > _MAX_VALUES:
                values = rng.choice(values, _MAX_VALUES, replace=False)
            arrays[f"{split}/{name}"] = values.astype(np.float32)
    np.savez_compressed(path, **arrays)
    return path


def load_distances(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of :func:`save_distances`: ``{"train": {class: values}, "test" | "val": ...}``."""
    with np.load(path) as data:
        result: dict[str, dict[str, np.ndarray]] = {"train": {}, "val": {}}
        for key in data.files:
            split, name = key.split("/", 1)
            result[split][name] = data[key]
    return result


def plot_logit_shift(
    distances: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], path: Path
) -> Path:
    """Histograms of the boundary distance, train against test, per foreground class.

    ``distances[label][split][class]`` with the training split first and the held-out split
    (``"test"`` or ``"val"``) second; one row per label.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(distances)
    classes = list(next(iter(distances.values()))["train"])
    fig, axes = plt.subplots(len(labels), len(classes), figsize=(3.6 * len(classes), 2.8 * len(labels)), squeeze=False)
    for row, label in enumerate(labels):
        for col, name in enumerate(classes):
            ax = axes[row][col]
            splits = list(distances[label])
            train = distances[label][splits[0]][name]
            test = distances[label][splits[1]][name]
            both = np.concatenate([train, test]) if train.size + test.size else np.zeros(1)
            bins = np.linspace(float(both.min()), float(both.max()) + 1e-6, 40)
            ax.hist(train, bins=bins, density=True, alpha=0.5, label=splits[0])
            ax.hist(test, bins=bins, density=True, alpha=0.5, label=splits[1])
            ax.axvline(0.0, color="k", linewidth=1)
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel("z_c - max_k z_k", fontsize=8)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

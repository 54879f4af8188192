"""What ``asymtune predict`` writes: one label map per case, and per-case metrics against labels.

A label map has its image's shape, affine and header (NIfTI), the header's data type set to
uint8 (int16 above 255) and its intensity scaling and display range cleared; it holds the
training dataset's declared label values. Metrics per case and foreground class are those of the
test split (:func:`asymtune.train.case_metrics.case_scores`: Dice, sensitivity, precision, HD95 in
mm), in ``metrics.csv`` (one row per case) and ``metrics.json`` (the rows and their means).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asymtune.train.case_metrics import CASE_METRICS, case_scores

METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
RECORD = "prediction.json"


def label_dtype(label_values: Sequence[int]) -> type[np.integer[Any]]:
    """uint8, or int16 when a declared value exceeds 255 (as the dataset writers store labels)."""
    return np.uint8 if max(label_values) <= 255 else np.int16


def write_label_map(
    path: Path, classes: np.ndarray, label_values: Sequence[int], reference: Any | None = None
) -> Path:
    """Write class indices as a NIfTI label map of declared values.

    Args:
        path: the file to write (``.nii.gz`` or ``.nii``).
        classes: ``(*shape)`` class indices ``0..K-1``; a 2-D map is written as ``(X, Y, 1)``.
        label_values: the value of each class index.
        reference: the nibabel image the map belongs to (its affine and header are kept); None
            writes an identity affine (cases with no file, e.g. synthetic data).
    """
    import nibabel as nib

    dtype = label_dtype(label_values)
    values = np.asarray(label_values, dtype=dtype)[classes]
    if reference is None:
        if values.ndim == 2:
            values = values[:, :, None]
        image: Any = nib.Nifti1Image(values, np.eye(4))  # type: ignore[no-untyped-call]  # nibabel is unannotated
        image.header.set_xyzt_units("mm")
    else:
        kind = type(reference) if isinstance(reference, (nib.Nifti1Image, nib.Nifti2Image)) else nib.Nifti1Image
        header = reference.header.copy() if kind is type(reference) else None  # type: ignore[no-untyped-call]
        image = kind(values, reference.affine, header)  # the new data resets the intensity scaling
        image.header["cal_min"], image.header["cal_max"] = 0, 0  # the image's display range means nothing here
    image.set_data_dtype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def case_row(
    case_id: str, classes: np.ndarray, label: np.ndarray, class_names: Sequence[str], spacing: Sequence[float]
) -> dict[str, Any]:
    """``{"case": id, "<metric>/<class>": value, ...}`` for one case (metrics :data:`CASE_METRICS`).

    Args:
        classes, label: ``(*shape)`` predicted and reference class indices; singleton axes are
            dropped first (a 2-D case stored as ``(X, Y, 1)`` is scored in 2-D).
        spacing: voxel size per axis of ``shape``.
    """
    keep = [axis for axis, size in enumerate(classes.shape) if size != 1] or [0]
    shape = tuple(classes.shape[axis] for axis in keep)
    scores = case_scores(
        torch.from_numpy(np.ascontiguousarray(classes).reshape(shape)),
        torch.from_numpy(np.asarray(label, dtype=np.int64).reshape(shape)),
        len(class_names),
        [float(spacing[axis]) for axis in keep],
    )
    row: dict[str, Any] = {"case": case_id}
    for metric in CASE_METRICS:
        for index, name in enumerate(class_names[1:]):
            row[f"{metric}/{name}"] = float(scores[metric][index])
    return row


def mean_metrics(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> dict[str, float]:
    """Means over cases: ``<metric>/<class>`` and ``mean_fg_<metric>`` (over cases and foreground classes)."""
    means: dict[str, float] = {}
    for metric in CASE_METRICS:
        table = np.array([[row[f"{metric}/{name}"] for name in class_names[1:]] for row in rows])  # (cases, K - 1)
        for index, name in enumerate(class_names[1:]):
            means[f"{metric}/{name}"] = float(table[:, index].mean())
        means[f"mean_fg_{metric}"] = float(table.mean())
    return means


def write_metrics(folder: Path, rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> dict[str, float]:
    """Write ``metrics.csv`` and ``metrics.json`` into ``folder``; returns the means."""
    means = mean_metrics(rows, class_names)
    columns = list(rows[0])
    with (folder / METRICS_CSV).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    record = {"classes": list(class_names), "cases": list(rows), "mean": means}
    (folder / METRICS_JSON).write_text(json.dumps(record, indent=2) + "\n")
    return means

"""Read every file of a dataset on disk, report its defects, and summarise it (``asymtune data check``).

:func:`check_dataset` first checks the structure (:func:`~asymtune.data.layouts.scan_layout`), then
opens every image and label with nibabel and collects file defects, one sentence each naming the
file: unreadable file, image/label shape mismatch, image/label affine mismatch (``np.allclose``,
``atol=1e-3``), label values not declared in ``dataset.json``, non-integer label values, NaN or
infinite intensities, a Decathlon image whose channel count differs from ``modality``. All of them
are raised at once as one :class:`~asymtune.data.layouts.DatasetError`; a clean dataset gives a
:class:`DatasetSummary` (shapes, spacings, class fractions and imbalance ratios).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asymtune.data.layouts import CaseFiles, DatasetError, DatasetLayout, scan_layout

AFFINE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CaseArrays:
    """One case as stored on disk.

    Attributes:
        case_id: the case's id.
        image: ``(C, *spatial)`` float32 intensities (spatial as in the file, e.g. ``(X, Y, 1)`` for 2-D).
        label: ``(*spatial)`` declared label values, integer dtype as stored (int64 when stored as floats).
        spacing: voxel size per spatial axis, from the label's header.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, ...]


@dataclass(frozen=True)
class ClassSummary:
    """Voxel statistics of one class over all cases.

    Attributes:
        value: the declared label value.
        name: the class name.
        voxels: voxel count over all cases.
        fraction: ``voxels`` / all voxels.
        imbalance: background voxels / ``voxels`` (``inf`` for an absent class).
    """

    value: int
    name: str
    voxels: int
    fraction: float
    imbalance: float


@dataclass(frozen=True)
class DatasetSummary:
    """Everything ``asymtune data check`` prints about a dataset without defects.

    Attributes:
        root, name, layout: where and what the dataset is.
        num_cases: labelled training cases.
        channel_names: in channel order.
        spatial_dims: 2 when every case has a singleton spatial axis (e.g. ``(X, Y, 1)``), else 3.
        shape_min, shape_max: per spatial axis, over cases (shapes as stored).
        spacing_min, spacing_max: per spatial axis, over cases.
        classes: one per declared label value, background first.
        cases_without_foreground: ids of the cases whose label is all background.
    """

    root: Path
    name: str
    layout: str
    num_cases: int
    channel_names: tuple[str, ...]
    spatial_dims: int
    shape_min: tuple[int, ...]
    shape_max: tuple[int, ...]
    spacing_min: tuple[float, ...]
    spacing_max: tuple[float, ...]
    classes: tuple[ClassSummary, ...]
    cases_without_foreground: tuple[str, ...]

    def to_text(self) -> str:
        """A human-readable report: one header block and one line per class."""
        spacing = ", ".join(
            f"{a:.3g}-{b:.3g}" if a != b else f"{a:.3g}" for a, b in zip(self.spacing_min, self.spacing_max)
        )
        lines = [
            f"dataset {self.name} ({self.layout} layout) at {self.root}",
            f"cases: {self.num_cases}; channels: {', '.join(self.channel_names)}; spatial dims: {self.spatial_dims}",
            f"shape: min {self.shape_min}, max {self.shape_max}",
            f"spacing per axis: {spacing}",
            f"{'value':>5}  {'class':<20} {'voxels':>12} {'fraction':>10} {'background/class':>17}",
        ]
        for item in self.classes:
            imbalance = (
                "-" if item.value == 0 else ("absent" if math.isinf(item.imbalance) else f"{item.imbalance:.1f}")
            )
            lines.append(f"{item.value:>5}  {item.name:<20} {item.voxels:>12} {item.fraction:>10.4%} {imbalance:>17}")
        empty = ", ".join(self.cases_without_foreground) if self.cases_without_foreground else "none"
        lines.append(f"cases without foreground: {empty}")
        return "\n".join(lines)


def check_dataset(root: str | Path | DatasetLayout, layout: str = "auto") -> DatasetSummary:
    """Check every file of a dataset and summarise it.

    Args:
        root: the dataset folder, or a layout already scanned.
        layout: ``"auto"``, ``"nnunet"`` or ``"decathlon"`` (ignored for a scanned layout).

    Raises:
        DatasetError: listing every defect (structural ones first, then one per file problem).
    """
    found = root if isinstance(root, DatasetLayout) else scan_layout(root, layout)
    defects: list[str] = []
    counts = np.zeros(len(found.label_values), dtype=np.int64)
    shapes: list[tuple[int, ...]] = []
    spacings: list[tuple[float, ...]] = []
    without_foreground: list[str] = []
    for case in found.cases:
        arrays, problems = read_case(found, case)
        defects.extend(problems)
        if arrays is None:
            continue
        values, value_counts = np.unique(arrays.label, return_counts=True)
        counts[np.searchsorted(found.label_values, values)] += value_counts
        if np.all(values == 0):
            without_foreground.append(case.case_id)
        shapes.append(tuple(arrays.label.shape))
        spacings.append(arrays.spacing)
    if defects:
        raise DatasetError(found.root, defects)
    if len({len(s) for s in shapes}) > 1:
        raise DatasetError(found.root, ["labelsTr: cases mix 2-D and 3-D label maps: expected one dimensionality"])
    total = int(counts.sum())
    classes = tuple(
        ClassSummary(
            value=value,
            name=name,
            voxels=int(count),
            fraction=float(count) / total,
            imbalance=float(counts[0]) / float(count) if count else math.inf,
        )
        for value, name, count in zip(found.label_values, found.class_names, counts)
    )
    return DatasetSummary(
        root=found.root,
        name=found.name,
        layout=found.layout,
        num_cases=len(found.cases),
        channel_names=found.channel_names,
        spatial_dims=2 if all(singleton_axis(s) is not None for s in shapes) else 3,
        shape_min=tuple(int(v) for v in np.min(shapes, axis=0)),
        shape_max=tuple(int(v) for v in np.max(shapes, axis=0)),
        spacing_min=tuple(float(v) for v in np.min(spacings, axis=0)),
        spacing_max=tuple(float(v) for v in np.max(spacings, axis=0)),
        classes=classes,
        cases_without_foreground=tuple(without_foreground),
    )


def singleton_axis(shape: tuple[int, ...]) -> int | None:
    """The axis a 2-D case is stored along: its last spatial axis of size 1.

    ``None`` for a 3-D case without one, -1 for a case stored as a 2-D array.
    """
    if len(shape) == 2:
        return -1
    ones = [axis for axis, size in enumerate(shape) if size == 1]
    return ones[-1] if ones else None


def read_case(layout: DatasetLayout, case: CaseFiles) -> tuple[CaseArrays | None, list[str]]:
    """Open one case's files and check them against each other and ``dataset.json``.

    Returns:
        ``(arrays, [])`` for a sound case, ``(None, defects)`` otherwise.
    """
    defects: list[str] = []
    label_name = layout.relative(case.label)
    label_image, label = _load(case.label, label_name, defects)
    channels: list[np.ndarray] = []
    for path in case.images:
        loaded, data = _load(path, layout.relative(path), defects)
        if loaded is None or data is None:
            continue
        name = layout.relative(path)
        if layout.layout == "decathlon":
            data = _decathlon_channels(data, label, len(layout.channel_names), name, defects)
        else:
            data = data[None]
        if data is None or label is None or label_image is None:
            continue
        if data.shape[1:] != label.shape:
            defects.append(f"{name}: shape {data.shape[1:]} differs from the label {label_name} shape {label.shape}")
        difference = float(np.max(np.abs(loaded.affine - label_image.affine)))
        if not np.allclose(loaded.affine, label_image.affine, atol=AFFINE_TOLERANCE):
            defects.append(
                f"{name}: affine differs from that of the label {label_name} by up to {difference:.4g} "
                f"(tolerance {AFFINE_TOLERANCE:g})"
            )
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            defects.append(f"{name}: {bad} NaN or infinite intensit{'ies' if bad != 1 else 'y'}")
        channels.extend(data)
    if label is not None:
        label = _check_label(label, layout, label_name, defects)
    if defects or label is None or label_image is None:
        return None, defects
    zooms = label_image.header.get_zooms()
    spacing = tuple(float(z) for z in zooms[: label.ndim])
    return CaseArrays(case.case_id, np.stack(channels).astype(np.float32, copy=False), label, spacing), []


def _load(path: Path, name: str, defects: list[str]) -> tuple[Any, np.ndarray | None]:
    """``(nibabel image, data as stored)``, or ``(None, None)`` after recording why the file cannot be read."""
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))  # a SpatialImage (affine, dataobj, header)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for a broken file
        message = " ".join(str(error).replace(str(path), path.name).split())
        defects.append(f"{name}: cannot be read by nibabel ({type(error).__name__}: {message})")
        return None, None
    return image, data


def _decathlon_channels(
    data: np.ndarray, label: np.ndarray | None, declared: int, name: str, defects: list[str]
) -> np.ndarray | None:
    """``(C, *spatial)`` from a Decathlon image: 3-D (one channel) or 4-D with channels last."""
    spatial = label.ndim if label is not None else 3
    dimensions = data.ndim
    if data.ndim == spatial + 1:
        count, data = data.shape[-1], np.moveaxis(data, -1, 0)
    elif data.ndim == spatial:
        count, data = 1, data[None]
    else:
        defects.append(
            f"{name}: image has shape {data.shape}: expected {spatial} spatial axes and optionally channels last"
        )
        return None
    if count != declared:
        defects.append(
            f"{name}: {dimensions}-D image has {count} channel{'s' if count != 1 else ''} but dataset.json "
            f"modality declares {declared}"
        )
        return None
    return data


def _check_label(label: np.ndarray, layout: DatasetLayout, name: str, defects: list[str]) -> np.ndarray | None:
    if label.ndim not in (2, 3):
        defects.append(f"{name}: label has shape {label.shape}: expected 2 or 3 spatial axes")
        return None
    if not np.issubdtype(label.dtype, np.integer):
        finite = np.isfinite(label)
        fractional = label[finite & (label != np.round(label))] if np.all(finite) else label[~finite]
        if fractional.size:
            defects.append(
                f"{name}: label is not integer-valued ({fractional.size} voxels such as {fractional.flat[0]:g})"
            )
            return None
    if not np.issubdtype(label.dtype, np.integer):
        label = label.astype(np.int64)
    undeclared = np.setdiff1d(np.unique(label), layout.label_values)
    if undeclared.size:
        defects.append(
            f"{name}: label values {undeclared.tolist()} are not declared in dataset.json labels "
            f"(declared: {list(layout.label_values)})"
        )
        return None
    return label

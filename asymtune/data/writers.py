"""Write arrays as a dataset on disk, in the nnU-Net v2 raw or the Decathlon layout.

Used by ``asymtune data prepare`` (the built-in real datasets) and by the tests. A case is
``(case_id, image, label)`` with ``image`` of shape ``(C, *spatial)`` and ``label`` of shape
``(*spatial)`` holding declared label values; ``spatial`` is ``(X, Y, Z)`` or, for 2-D data,
``(X, Y)``, written as an ``(X, Y, 1)`` NIfTI as nnU-Net expects. Array axes are NIfTI voxel axes
(no transposition); images are written as float32, labels as uint8 (int16 above 255).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Case = tuple[str, np.ndarray, np.ndarray]


def write_nnunet(
    root: str | Path,
    cases: Sequence[Case],
    channel_names: Sequence[str],
    class_names: Sequence[str],
    spacing: Sequence[float] | None = None,
    affines: Sequence[np.ndarray] | None = None,
    label_values: Sequence[int] | None = None,
    name: str | None = None,
) -> Path:
    """Write an nnU-Net v2 raw dataset: ``dataset.json``, ``imagesTr/<case>_XXXX.nii.gz``, ``labelsTr/<case>.nii.gz``.

    Args:
        root: the dataset folder (created; existing files of the same names are overwritten).
        cases: ``(case_id, image (C, *spatial), label (*spatial))``.
        channel_names: ``C`` names, e.g. ``("CT",)``.
        class_names: one per label value, background first.
        spacing: voxel size per spatial axis (default 1); ignored for cases with an affine.
        affines: one ``(4, 4)`` voxel-to-world affine per case (default: diagonal ``spacing``).
        label_values: the value of each class (default ``0..K-1``), sorted, starting at 0.
        name: ``dataset.json`` ``name`` (default: the folder name).

    Returns:
        ``root``.
    """
    root, values = Path(root), _values(class_names, label_values)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for index, (case_id, image, label) in enumerate(cases):
        _check_case(case_id, image, label, len(channel_names))
        affine = _affine(label.ndim, spacing, None if affines is None else affines[index])
        for channel in range(image.shape[0]):
            _save(image[channel].astype(np.float32), affine, root / "imagesTr" / f"{case_id}_{channel:04d}.nii.gz")
        _save(_label_array(label, values), affine, root / "labelsTr" / f"{case_id}.nii.gz")
    description = {
        "name": name or root.name,
        "channel_names": {str(i): c for i, c in enumerate(channel_names)},
        "labels": {n: v for n, v in zip(class_names, values)},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    return root


def write_decathlon(
    root: str | Path,
    cases: Sequence[Case],
    channel_names: Sequence[str],
    class_names: Sequence[str],
    spacing: Sequence[float] | None = None,
    label_values: Sequence[int] | None = None,
    name: str | None = None,
) -> Path:
    """Write a Medical Segmentation Decathlon dataset.

    Files: ``dataset.json``, ``imagesTr/<case>.nii.gz``, ``labelsTr/<case>.nii.gz``.

    A case with several channels is written as one 4-D NIfTI ``(X, Y, Z, C)`` (2-D: ``(X, Y, 1, C)``).
    Arguments as for :func:`write_nnunet`.

    Returns:
        ``root``.
    """
    root, values = Path(root), _values(class_names, label_values)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for case_id, image, label in cases:
        _check_case(case_id, image, label, len(channel_names))
        affine = _affine(label.ndim, spacing, None)
        volume = np.moveaxis(image, 0, -1).astype(np.float32)  # (*spatial, C)
        if label.ndim == 2:
            volume = volume[:, :, None, :]  # (X, Y, 1, C)
        _save(volume[..., 0] if image.shape[0] == 1 else volume, affine, root / "imagesTr" / f"{case_id}.nii.gz")
        _save(_label_array(label, values), affine, root / "labelsTr" / f"{case_id}.nii.gz")
        training.append({"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz"})
    description = {
        "name": name or root.name,
        "modality": {str(i): c for i, c in enumerate(channel_names)},
        "labels": {str(v): n for n, v in zip(class_names, values)},
        "numTraining": len(cases),
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    return root


def _values(class_names: Sequence[str], label_values: Sequence[int] | None) -> list[int]:
    values = list(range(len(class_names))) if label_values is None else [int(v) for v in label_values]
    if len(values) != len(class_names) or values != sorted(set(values)) or values[0] != 0:
        raise ValueError(
            f"label_values {values} for {len(class_names)} classes: expected one sorted, distinct value per class, "
            "starting at 0"
        )
    return values


def _check_case(case_id: str, image: np.ndarray, label: np.ndarray, channels: int) -> None:
    if label.ndim not in (2, 3) or image.shape != (channels, *label.shape):
        raise ValueError(
            f"case {case_id!r}: image {image.shape} and label {label.shape}: expected image ({channels}, *spatial) "
            "and label (*spatial) with 2 or 3 spatial axes"
        )


def _affine(ndim: int, spacing: Sequence[float] | None, affine: np.ndarray | None) -> np.ndarray:
    if affine is not None:
        return np.asarray(affine, dtype=np.float64)
    sizes = [1.0] * ndim if spacing is None else [float(s) for s in spacing]
    if len(sizes) != ndim:
        raise ValueError(f"spacing {list(sizes)}: expected {ndim} values, one per spatial axis")
    return np.diag([*sizes, *([1.0] * (3 - ndim)), 1.0])


def _label_array(label: np.ndarray, values: list[int]) -> np.ndarray:
    return label.astype(np.uint8 if max(values) <= 255 else np.int16)


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    if array.ndim == 2:
        array = array[:, :, None]  # (X, Y, 1): nnU-Net's 2-D convention
    image: Any = nib.Nifti1Image(np.asarray(array), affine)  # type: ignore[no-untyped-call]  # nibabel is unannotated
    image.header.set_xyzt_units("mm")
    nib.save(image, str(path))

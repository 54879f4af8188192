"""The images to predict: found by name, checked by header, then read one case at a time.

A folder to predict holds the nnU-Net layout's images: ``<case>_0000<ending>`` and, for a model
of several channels, ``<case>_0001<ending>`` ... (one file per channel, ``<ending>`` the training
dataset's ``file_ending``); reference labels, when given, are ``<case><ending>`` in their own
folder. Before any case is predicted, the defects found by name (:func:`scan_folder`: a file not
of the layout, a missing channel or label), then those found by header (:func:`open_cases`: a file
nibabel cannot read, channels on different grids, a shape the network cannot take, a label of
another shape) are raised together, each naming its file. Defects only the voxels show (NaN
intensities, undeclared label values) stop at the case that has them (:func:`read_image`,
:func:`read_label`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asymtune.data.check import AFFINE_TOLERANCE
from asymtune.predict.spec import ModelInputs

_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


class InputError(ValueError):
    """Defects of the images to predict, one sentence each naming the file.

    Attributes:
        defects: the sentences.
    """

    def __init__(self, defects: Sequence[str]) -> None:
        self.defects = list(defects)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.defects)
        header = f"{count} defect{'s' if count != 1 else ''} in the images to predict"
        return "\n".join([header, *(f"  {defect}" for defect in self.defects)])


@dataclass(frozen=True)
class InputCase:
    """The files of one case to predict.

    Attributes:
        case_id: ``<case>``; the label map is written as ``<case><ending>``.
        images: one file per channel, in channel order; with ``channels_last``, one file holding
            every channel on its last axis (the Decathlon layout, 3-D for one channel).
        label: the reference label map, or None.
        channels_last: see ``images``.
    """

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None
    channels_last: bool = False


@dataclass(frozen=True)
class OpenedCase:
    """A case whose headers fit the model; its voxels are not read yet.

    Attributes:
        case: the files.
        images: the nibabel images of ``case.images`` (data read on demand).
        label: the nibabel image of ``case.label``, or None.
        shape: the spatial shape as stored, e.g. ``(X, Y, Z)`` or ``(X, Y, 1)``.
        spacing: voxel size per spatial axis (mm), from the first image's header.
    """

    case: InputCase
    images: tuple[Any, ...]
    label: Any | None
    shape: tuple[int, ...]
    spacing: tuple[float, ...]

    @property
    def reference(self) -> Any:
        """The image whose affine and header the label map takes (channel 0)."""
        return self.images[0]


def _expected_names(inputs: ModelInputs) -> str:
    ending, count = inputs.file_ending, len(inputs.channel_names)
    files = f"<case>_0000{ending}" + (f" .. <case>_{count - 1:04d}{ending}" if count > 1 else "")
    return f"{files} (one file per channel: {', '.join(inputs.channel_names)})"


def scan_folder(folder: Path, inputs: ModelInputs, labels: Path | None = None) -> list[InputCase]:
    """The cases of an image folder in the nnU-Net layout, sorted by case id.

    Args:
        folder: holds ``<case>_0000<ending>`` ... and nothing else (hidden files are ignored).
        inputs: what the model takes (channels, file ending).
        labels: a folder holding ``<case><ending>`` for every case, or None.

    Raises:
        InputError: naming every file that is not an image of the layout, every missing channel
            and every missing label.
    """
    ending, count = inputs.file_ending, len(inputs.channel_names)
    if not folder.is_dir():
        raise InputError([f"{folder}: no such folder: expected a folder of images {_expected_names(inputs)}"])
    defects: list[str] = []
    channels: dict[str, dict[int, Path]] = {}
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        match = _CHANNEL_SUFFIX.match(path.name[: -len(ending)]) if path.name.endswith(ending) else None
        if match is None or not path.is_file():
            defects.append(f"{path}: not an image of the nnU-Net layout: expected {_expected_names(inputs)}")
            continue
        index = int(match["channel"])
        if index >= count:
            defects.append(
                f"{path}: channel {index}, but the model takes {count} channel{'s' if count != 1 else ''}: "
                f"expected {_expected_names(inputs)}"
            )
            continue
        channels.setdefault(match["case"], {})[index] = path
    for case_id, found in sorted(channels.items()):
        for index in range(count):
            if index not in found:
                defects.append(
                    f"{folder / f'{case_id}_{index:04d}{ending}'}: missing: case {case_id} needs channel {index} "
                    f"({inputs.channel_names[index]}): expected {_expected_names(inputs)}"
                )
    if not channels and not defects:
        defects.append(f"{folder}: no images: expected {_expected_names(inputs)}")
    if labels is not None and not labels.is_dir():
        defects.append(f"{labels}: no such folder: expected the reference label maps <case>{ending} (--labels)")
        labels = None
    cases = []
    for case_id, found in sorted(channels.items()):
        label = None if labels is None else labels / f"{case_id}{ending}"
        if label is not None and not label.is_file():
            defects.append(f"{label}: missing: expected the reference label map of case {case_id} (--labels)")
        cases.append(InputCase(case_id, tuple(found[i] for i in sorted(found)), label))
    if defects:
        raise InputError(defects)
    return cases


def dataset_cases(inputs: ModelInputs, case_ids: Sequence[str]) -> list[InputCase]:
    """The files (images and labels) of ``case_ids`` in the model's training dataset on disk."""
    from asymtune.data.layouts import scan_layout

    if inputs.root is None:
        raise ValueError(f"dataset {inputs.dataset_name!r} is not on disk: its cases have no files")
    found = scan_layout(inputs.root, inputs.layout or "auto")
    by_id = {case.case_id: case for case in found.cases}
    return [
        InputCase(i, by_id[i].images, by_id[i].label, channels_last=found.layout == "decathlon") for i in case_ids
    ]


def _open(path: Path, defects: list[str]) -> Any | None:
    """The nibabel image at ``path`` (header only), or None after recording why it cannot be read."""
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as error:  # nibabel raises many types for a file that is not an image
        message = " ".join(str(error).replace(str(path), path.name).split())
        defects.append(f"{path}: cannot be read as an image by nibabel ({type(error).__name__}: {message})")
        return None


def _spatial_shape(case: InputCase, images: Sequence[Any], label: Any | None, inputs: ModelInputs,
                   defects: list[str]) -> tuple[int, ...] | None:
    """The spatial shape of a case's image files, or None after recording why they do not fit."""
    count = len(inputs.channel_names)
    first, shape = case.images[0], tuple(int(n) for n in images[0].shape)
    if case.channels_last:
        spatial_count = len(label.shape) if label is not None else len(shape)
        if len(shape) == spatial_count + 1:
            shape, channels = shape[:-1], shape[-1]
        else:
            channels = 1
        if channels != count:
            defects.append(f"{first}: shape {shape}: holds {channels} channels: the model takes {count}")
            return None
    elif len(shape) not in (2, 3):
        defects.append(f"{first}: shape {shape}: expected a 2-D or 3-D image per channel file")
        return None
    for path, image in zip(case.images[1:], images[1:]):
        if tuple(image.shape) != shape:
            defects.append(
                f"{path}: shape {tuple(image.shape)} differs from {first.name}'s {shape}: expected every channel "
                "of a case on one grid"
            )
            return None
        if not np.allclose(image.affine, images[0].affine, atol=AFFINE_TOLERANCE):
            defects.append(f"{path}: affine differs from {first.name}'s: expected every channel of a case on one grid")
            return None
    problem = inputs.shape_problem(shape)
    if problem is not None:
        defects.append(f"{first}: shape {shape}: {problem}")
        return None
    return shape


def open_cases(cases: Sequence[InputCase], inputs: ModelInputs) -> list[OpenedCase]:
    """Read every case's headers and check them against each other and the model.

    Raises:
        InputError: naming every file nibabel cannot read, every channel on another grid than
            channel 0, every image whose shape the network cannot take and every label whose shape
            or affine differs from its image's.
    """
    defects: list[str] = []
    opened = []
    for case in cases:
        problems: list[str] = []
        found = [_open(path, problems) for path in case.images]
        label = _open(case.label, problems) if case.label is not None else None
        images = [image for image in found if image is not None]
        if problems:
            defects.extend(problems)
            continue
        shape = _spatial_shape(case, images, label, inputs, problems)
        if shape is not None and label is not None and case.label is not None:
            if tuple(label.shape) != shape:
                problems.append(f"{case.label}: shape {tuple(label.shape)} differs from the image's {shape}")
            elif not np.allclose(label.affine, images[0].affine, atol=AFFINE_TOLERANCE):
                problems.append(f"{case.label}: affine differs from that of the image {case.images[0].name}")
        if problems or shape is None:
            defects.extend(problems)
            continue
        zooms = images[0].header.get_zooms()
        spacing = tuple(float(z) for z in zooms[: len(shape)])
        opened.append(OpenedCase(case, tuple(images), label, shape, spacing))
    if defects:
        raise InputError(defects)
    return opened


def _voxels(path: Path, image: Any) -> np.ndarray:
    try:
        return np.asanyarray(image.dataobj)
    except Exception as error:  # a truncated or corrupt file fails only when its data is read
        message = " ".join(str(error).replace(str(path), path.name).split())
        raise InputError([f"{path}: its voxels cannot be read ({type(error).__name__}: {message})"]) from error


def read_image(opened: OpenedCase) -> np.ndarray:
    """The case's intensities as stored, ``(C, *shape)`` float32.

    Raises:
        InputError: naming a file whose voxels cannot be read or hold NaN or infinite values.
    """
    case = opened.case
    channels: list[np.ndarray] = []
    for path, image in zip(case.images, opened.images):
        data = _voxels(path, image).astype(np.float32, copy=False)
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError([f"{path}: {bad} NaN or infinite intensit{'ies' if bad != 1 else 'y'}"])
        if case.channels_last:
            channels.extend(np.moveaxis(data, -1, 0) if data.ndim == len(opened.shape) + 1 else data[None])
        else:
            channels.append(data)
    return np.stack(channels)


def read_label(opened: OpenedCase, inputs: ModelInputs) -> np.ndarray | None:
    """The reference label map as class indices ``(*shape)`` int64 (declared values mapped to
    ``0..K-1``), or None when the case has none.

    Raises:
        InputError: naming a label file with fractional values or values the model does not know.
    """
    path = opened.case.label
    if path is None or opened.label is None:
        return None
    data = _voxels(path, opened.label)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            expected = f"expected class values {list(inputs.label_values)}"
            raise InputError([f"{path}: label is not integer-valued: {expected}"])
        data = data.astype(np.int64)
    undeclared = np.setdiff1d(np.unique(data), inputs.label_values)
    if undeclared.size:
        raise InputError(
            [
                f"{path}: label values {undeclared.tolist()} are not classes of the model: expected values "
                f"{list(inputs.label_values)} ({', '.join(inputs.class_names)})"
            ]
        )
    classes: np.ndarray = np.searchsorted(np.asarray(inputs.label_values), data).astype(np.int64)
    return classes

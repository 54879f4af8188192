"""What a trained model expects of an image, read from its train config and its training data.

A model trained on a dataset on disk (``data.source`` ``nnunet`` or ``decathlon``) takes images
with the channels of that dataset, normalised with its rules and statistics
(:func:`asymtune.data.prepared.normalise_image`), and writes the dataset's declared label
values. A model trained on a built-in synthetic dataset has no file format: only its own test
split can be predicted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asymtune.data.base import SegmentationDataset
from asymtune.data.check import singleton_axis
from asymtune.data.locate import resolve_entry

ON_DISK_SOURCES = ("nnunet", "decathlon")
NIFTI_ENDINGS = (".nii.gz", ".nii")


@dataclass(frozen=True)
class ModelInputs:
    """The images a model takes and the label maps it writes.

    Attributes:
        dataset_name: the config's ``dataset_name``.
        channel_names: ``C_in`` names in channel order (files ``_0000``, ``_0001``, ...).
        class_names: ``K`` names, background first.
        label_values: the value written for each class index ``0..K-1`` (declared in ``dataset.json``).
        file_ending: of the dataset's files, e.g. ``".nii.gz"``.
        network_dims: spatial dimensions of the network's input, 2 or 3.
        slice_axis: the array axis along which a 2-D network runs over 3-D images; None otherwise.
        ct_statistics: per CT channel index, the training set's normalisation statistics.
        root: the training dataset's folder; None for a synthetic dataset (nothing on disk).
        layout: ``"nnunet"`` or ``"decathlon"`` for a dataset on disk.
    """

    dataset_name: str
    channel_names: tuple[str, ...]
    class_names: tuple[str, ...]
    label_values: tuple[int, ...]
    file_ending: str
    network_dims: int
    slice_axis: int | None = None
    ct_statistics: dict[int, dict[str, float]] = field(default_factory=dict)
    root: Path | None = None
    layout: str | None = None

    @property
    def on_disk(self) -> bool:
        """True when the model was trained on files (so files can be predicted)."""
        return self.root is not None

    @property
    def output_ending(self) -> str:
        """The label maps' file ending: the dataset's when it is NIfTI, else ``.nii.gz``."""
        return self.file_ending if self.file_ending in NIFTI_ENDINGS else ".nii.gz"

    def squeeze_axis(self, shape: Sequence[int]) -> int | None:
        """The axis of a stored 2-D image that a 2-D network drops (``(X, Y, 1)`` -> ``(X, Y)``).

        None when nothing is dropped (a 3-D network, slices, or a file stored as ``(X, Y)``).
        """
        if self.network_dims == 3 or self.slice_axis is not None or len(shape) == 2:
            return None
        return singleton_axis(tuple(shape))

    def shape_problem(self, shape: Sequence[int]) -> str | None:
        """Why an image of spatial ``shape`` (as stored) does not fit the network, or None.

        Example:
            >>> inputs = ModelInputs("d", ("T1",), ("background", "a"), (0, 1), ".nii.gz", network_dims=2)
            >>> inputs.shape_problem((64, 64, 1)) is None, inputs.shape_problem((64, 64))
            (True, None)
            >>> inputs.shape_problem((64, 64, 30))
            'the model is 2-D: expected a 2-D image (X, Y) or (X, Y, 1)'
        """
        shape = tuple(shape)
        if self.slice_axis is not None:
            if len(shape) != 3:
                return f"the model is 2-D on slices along axis {self.slice_axis} of 3-D images: expected a 3-D image"
            return None
        if self.network_dims == 3:
            return None if len(shape) == 3 else "the model is 3-D: expected a 3-D image (X, Y, Z)"
        if len(shape) == 2 or (len(shape) == 3 and singleton_axis(shape) is not None):
            return None
        return "the model is 2-D: expected a 2-D image (X, Y) or (X, Y, 1)"


def model_inputs(cfg: Mapping[str, Any], dataset: SegmentationDataset) -> ModelInputs:
    """The :class:`ModelInputs` of the model a train config describes, trained on ``dataset``.

    For a dataset on disk the channels, the CT statistics and the label values come from its
    prepared form and ``dataset.json`` (:func:`asymtune.data.prepared.prepare_dataset`, which
    reuses the cache the training filled).
    """
    data = resolve_entry(cfg["data"])  # the root found on this machine, as the training found it
    params = dict(data["params"])
    name = str(cfg.get("dataset_name", dataset.name))
    if data.get("source") not in ON_DISK_SOURCES:
        return ModelInputs(
            dataset_name=name,
            channel_names=tuple(f"channel {c}" for c in range(dataset.in_channels)),
            class_names=dataset.class_names,
            label_values=tuple(range(dataset.num_classes)),
            file_ending=".nii.gz",
            network_dims=dataset.spatial_dims,
        )
    from asymtune.data.layouts import scan_layout
    from asymtune.data.prepared import prepare_dataset

    layout = "decathlon" if data["source"] == "decathlon" else str(params.get("layout", "auto"))
    prepared = prepare_dataset(str(params["root"]), layout=layout, cache_dir=params.get("cache_dir"))
    found = scan_layout(prepared.root, prepared.layout)
    slice_axis = params.get("slice_axis")
    return ModelInputs(
        dataset_name=name,
        channel_names=prepared.channel_names,
        class_names=prepared.class_names,
        label_values=found.label_values,
        file_ending=found.file_ending,
        network_dims=dataset.spatial_dims,
        slice_axis=None if slice_axis is None else int(slice_axis),
        ct_statistics=prepared.ct_statistics,
        root=prepared.root,
        layout=prepared.layout,
    )

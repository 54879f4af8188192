"""The in-memory form every dataset takes before training.

A dataset is three disjoint splits of cases. A case is an image ``(C_in, *spatial)`` float32 and a
label map ``(*spatial)`` of integer class indices ``0..num_classes-1`` (0 is background); 2-D data
has ``spatial = (H, W)``, 3-D data ``(D, H, W)``.

A split holds its cases either *stacked* (every case the same shape: images ``(N, C_in, *spatial)``,
labels ``(N, *spatial)``, the built-in synthetic data) or as *tuples of per-case arrays* whose
spatial shapes differ (real data; the arrays are usually memory-mapped ``.npy`` files shared by
every trial on a node). Training samples patches from either form; evaluation runs whole images
of a stacked split in batches and whole cases of a tuple split by sliding-window inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def _check_case(index: int, image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != label.ndim + 1 or tuple(image.shape[1:]) != tuple(label.shape):
        raise ValueError(
            f"case {index}: image {tuple(image.shape)} and label {tuple(label.shape)} do not match: "
            "expected an image (C_in, *spatial) and a label (*spatial) of the same spatial shape"
        )


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        images: stacked ``(N, C_in, *spatial)`` float32, or a tuple of ``N`` arrays ``(C_in, *spatial_i)``.
        labels: stacked ``(N, *spatial)`` integer, or a tuple of ``N`` arrays ``(*spatial_i)``.
        case_ids: one id per item; consecutive items with the same id are slices of one volume
            (2-D training on 3-D cases) and are evaluated together as that volume.
        spacings: per item, the voxel spacing along each spatial axis (mm); None means 1.
    """

    images: np.ndarray | tuple[np.ndarray, ...]
    labels: np.ndarray | tuple[np.ndarray, ...]
    case_ids: tuple[str, ...] | None = None
    spacings: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if isinstance(images, np.ndarray) != isinstance(labels, np.ndarray):
            raise ValueError("images and labels must both be stacked arrays or both tuples of per-case arrays")
        if isinstance(images, np.ndarray) and isinstance(labels, np.ndarray):
            if images.ndim != labels.ndim + 1:
                raise ValueError(
                    f"images have shape {images.shape} and labels {labels.shape}: "
                    "expected images (N, C_in, *spatial) and labels (N, *spatial)"
                )
            if images.shape[0] != labels.shape[0] or images.shape[2:] != labels.shape[1:]:
                raise ValueError(
                    f"images {images.shape} and labels {labels.shape} do not match: "
                    "expected the same number of cases and the same spatial shape"
                )
        else:
            object.__setattr__(self, "images", tuple(self.images))
            object.__setattr__(self, "labels", tuple(self.labels))
            if len(self.images) != len(self.labels):
                raise ValueError(
                    f"{len(self.images)} images but {len(self.labels)} labels: expected one label per image"
                )
            for index, (image, label) in enumerate(zip(self.images, self.labels)):
                _check_case(index, image, label)
            if len({image.shape[0] for image in self.images}) > 1 or len({label.ndim for label in self.labels}) > 1:
                raise ValueError(
                    "cases differ in channel count or dimensionality: expected one C_in and one spatial_dims"
                )
        for name in ("case_ids", "spacings"):
            values = getattr(self, name)
            if values is not None:
                object.__setattr__(self, name, tuple(values))
                if len(values) != len(self):
                    raise ValueError(f"{name} has {len(values)} entries for {len(self)} cases: expected one per case")

    def __len__(self) -> int:
        return int(self.images.shape[0]) if isinstance(self.images, np.ndarray) else len(self.images)

    @property
    def is_stacked(self) -> bool:
        """True when every case has the same shape and the split is one array."""
        return isinstance(self.images, np.ndarray)

    @property
    def in_channels(self) -> int:
        return int(self.images[0].shape[0])

    @property
    def spatial_dims(self) -> int:
        return int(self.labels[0].ndim)

    def cases(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each case as ``(image (C_in, *spatial), label (*spatial))``."""
        for index in range(len(self)):
            yield self.images[index], self.labels[index]

    def spacing(self, index: int) -> tuple[float, ...]:
        """Voxel spacing of item ``index`` (1 along every axis when unknown)."""
        if self.spacings is None:
            return (1.0,) * self.spatial_dims
        return tuple(float(s) for s in self.spacings[index])

    def voxel_counts(self, num_classes: int) -> np.ndarray:
        """Voxels per class over all cases, ``(num_classes,)`` int64."""
        if self.is_stacked:
            return np.bincount(np.asarray(self.labels).ravel(), minlength=num_classes)[:num_classes]
        counts = np.zeros(num_classes, dtype=np.int64)
        for label in self.labels:
            counts += np.bincount(np.asarray(label).ravel(), minlength=num_classes)[:num_classes]
        return counts

    def volumes(self) -> list[list[int]]:
        """Items grouped by volume: consecutive items sharing a case id form one group."""
        if self.case_ids is None:
            return [[index] for index in range(len(self))]
        groups: list[list[int]] = []
        for index, case_id in enumerate(self.case_ids):
            if groups and self.case_ids[groups[-1][0]] == case_id:
                groups[-1].append(index)
            else:
                groups.append([index])
        return groups


@dataclass(frozen=True)
class SegmentationDataset:
    """A dataset with train, validation and test splits that share no case.

    Attributes:
        name: registry name, e.g. ``"synth_lesions"``.
        class_names: one name per class, index 0 is background.
        train, val, test: the three splits.
        rare_classes: the classes the dataset's author knows to be small (used for the
            paper's default setting and for documentation; the search may choose otherwise).
        fingerprint: identifies the data on disk (real datasets), for provenance; "" otherwise.
    """

    name: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    rare_classes: tuple[int, ...]
    fingerprint: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.train.in_channels

    @property
    def spatial_dims(self) -> int:
        return self.train.spatial_dims

    def class_fractions(self) -> np.ndarray:
        """Fraction of training voxels per class, shape ``(C,)``."""
        counts = self.train.voxel_counts(self.num_classes)
        return counts / max(int(counts.sum()), 1)


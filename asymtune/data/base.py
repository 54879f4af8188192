"""The in-memory form every dataset takes before training.

A dataset is three disjoint splits of images and integer label maps. Images are float32
``(N, C_in, *spatial)`` arrays, labels int64 ``(N, *spatial)`` arrays with values in
``0..num_classes-1`` (0 is background). 2-D data has ``spatial = (H, W)``, 3-D data ``(D, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        images: ``(N, C_in, *spatial)`` float32.
        labels: ``(N, *spatial)`` int64, values in ``0..C-1``.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != self.labels.ndim + 1:
            raise ValueError(
                f"images have shape {self.images.shape} and labels {self.labels.shape}: "
                "expected images (N, C_in, *spatial) and labels (N, *spatial)"
            )
        if self.images.shape[0] != self.labels.shape[0] or self.images.shape[2:] != self.labels.shape[1:]:
            raise ValueError(
                f"images {self.images.shape} and labels {self.labels.shape} do not match: "
                "expected the same number of cases and the same spatial shape"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class SegmentationDataset:
    """A dataset with train, validation and test splits that share no image.

    Attributes:
        name: registry name, e.g. ``"synth_lesions"``.
        class_names: one name per class, index 0 is background.
        train, val, test: the three splits.
        rare_classes: the classes the dataset's author knows to be small (used for the
            paper's default setting and for documentation; the search may choose otherwise).
    """

    name: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    rare_classes: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def spatial_dims(self) -> int:
        return int(self.train.labels.ndim - 1)

    def class_fractions(self) -> np.ndarray:
        """Fraction of training voxels per class, shape ``(C,)``."""
        counts = np.bincount(self.train.labels.ravel(), minlength=self.num_classes)
        return counts / counts.sum()

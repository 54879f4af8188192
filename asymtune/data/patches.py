"""Training patches drawn from cases of any size, with foreground oversampling as in nnU-Net.

A batch of ``B`` patches takes its cases uniformly at random; its last ``round(B * oversample)``
patches are *forced*: each is centred on a random voxel of a foreground class present in its case
(the class drawn uniformly among those present), so that small classes are seen in every batch.
The other patches start at a uniformly random position. A case smaller than the patch is padded
with zeros (background). Only the patch is read, so memory-mapped cases stay on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

import numpy as np

from asymtune.data.base import Split

_MAX_LOCATIONS = 10_000  # stored foreground voxels per case and class (a seeded subsample beyond that)


def default_patch_size(shapes: Sequence[Sequence[int]], spatial_dims: int) -> tuple[int, ...]:
    """A patch for cases of these spatial shapes: the median size per axis, capped (2-D 128,
    3-D 64) and rounded down to a multiple of 16 (at least 16), so a U-Net of depth <= 5 fits."""
    cap = 128 if spatial_dims == 2 else 64
    median = np.median(np.asarray(shapes, dtype=np.float64), axis=0)
    return tuple(max(16, min(cap, int(size)) // 16 * 16) for size in median)


def crop(array: np.ndarray, starts: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """The window ``starts .. starts + patch`` of the last ``len(patch)`` axes, zero-padded where it
    leaves the array. ``array`` is ``(..., *spatial)``; the result ``(..., *patch)`` is a copy."""
    dims = len(patch)
    spatial = array.shape[-dims:]
    out = np.zeros(array.shape[:-dims] + tuple(patch), dtype=array.dtype)
    source: list[slice] = []
    target: list[slice] = []
    for start, size, length in zip(starts, patch, spatial):
        low, high = max(start, 0), min(start + size, length)
        source.append(slice(low, max(high, low)))
        target.append(slice(low - start, low - start + max(high - low, 0)))
    into: tuple[EllipsisType | slice, ...] = (..., *target)
    window: tuple[EllipsisType | slice, ...] = (..., *source)
    out[into] = array[window]
    return out


def foreground_locations(label: np.ndarray, num_classes: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Voxel coordinates ``(K, spatial_dims)`` int32 of each foreground class present in ``label``."""
    rng = np.random.default_rng(seed)
    label = np.asarray(label)
    locations = {}
    for cls in range(1, num_classes):
        where = np.argwhere(label == cls)
        if len(where):
            if len(where) > _MAX_LOCATIONS:
                where = where[np.sort(rng.choice(len(where), _MAX_LOCATIONS, replace=False))]
            locations[cls] = where.astype(np.int32)
    return locations


class PatchSampler:
    """Draws ``(B, C_in, *patch)`` float32 images and ``(B, *patch)`` int64 labels from a split.

    Args:
        split: the training split (stacked or per-case arrays).
        patch_size: spatial patch size, one value per spatial axis.
        num_classes: ``C``.
        oversample_foreground: share of each batch forced to contain foreground, in [0, 1].
    """

    def __init__(self, split: Split, patch_size: Sequence[int], num_classes: int, oversample_foreground: float) -> None:
        if len(patch_size) != split.spatial_dims:
            raise ValueError(
                f"train.patch_size={list(patch_size)}: expected {split.spatial_dims} values for "
                f"{split.spatial_dims}-D cases"
            )
        if not 0.0 <= oversample_foreground <= 1.0:
            raise ValueError(f"train.oversample_foreground={oversample_foreground}: expected a value in [0, 1]")
        self.split = split
        self.patch = tuple(int(p) for p in patch_size)
        self.oversample = float(oversample_foreground)
        self.locations = (
            [foreground_locations(label, num_classes) for _, label in split.cases()] if self.oversample > 0 else []
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One batch; every draw comes from ``rng``, so a seeded generator repeats it."""
        n = len(self.split)
        cases = rng.choice(n, size=batch_size, replace=batch_size > n)
        forced_from = batch_size - round(batch_size * self.oversample)
        images, labels = [], []
        for position, case in enumerate(cases):
            image, label = self.split.images[case], self.split.labels[case]
            starts = self._starts(int(case), label.shape, rng, forced=position >= forced_from)
            images.append(crop(image, starts, self.patch))
            labels.append(crop(label, starts, self.patch))
        return np.stack(images).astype(np.float32, copy=False), np.stack(labels).astype(np.int64)

    def _starts(self, case: int, shape: Sequence[int], rng: np.random.Generator, forced: bool) -> list[int]:
        present = self.locations[case] if forced else {}
        centre = None
        if present:
            classes = sorted(present)
            voxels = present[classes[int(rng.integers(len(classes)))]]
            centre = voxels[int(rng.integers(len(voxels)))]
        starts = []
        for axis, (size, p) in enumerate(zip(shape, self.patch)):
            if size < p:  # the whole axis fits: centre the case in the patch, pad around it
                starts.append(-((p - size) // 2))
            elif centre is not None:  # centred on the voxel, shifted back inside the case
                starts.append(int(min(max(int(centre[axis]) - p // 2, 0), size - p)))
            else:
                starts.append(int(rng.integers(0, size - p + 1)))
        return starts

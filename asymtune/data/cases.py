"""Datasets given by path: the nnU-Net v2 raw layout or the Medical Segmentation Decathlon layout.

``asymtune tune data=nnunet data.root=PATH`` reads a folder with :mod:`asymtune.data.prepared`
(checked first, then normalised once into memory-mapped arrays that every trial on a node shares),
splits its cases (:mod:`asymtune.data.splits`), and returns the per-case arrays as a
:class:`~asymtune.data.base.SegmentationDataset`. With ``slice_axis`` a 3-D dataset is trained
in 2-D: each volume becomes its slices along that axis (views, no copies), evaluated back as the
volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

import numpy as np

from asymtune.data.base import SegmentationDataset, Split
from asymtune.data.registry import check_int, create_dataset, register_dataset
from asymtune.data.splits import split_cases

if TYPE_CHECKING:
    from asymtune.data.prepared import PreparedCase

RARE_FRACTION = 0.02  # a foreground class under this share of training voxels counts as rare by default


class _SplitOptions(TypedDict):
    """The keyword arguments of :func:`~asymtune.data.splits.split_cases` other than ``train_fraction``."""

    seed: int
    val_fraction: float
    test_fraction: float
    num_folds: int | None
    fold: int


def case_split(cases: Sequence[PreparedCase], slice_axis: int | None) -> Split:
    """The split of ``cases`` (PreparedCase), whole or sliced along ``slice_axis``: with a
    slice axis, each volume ``(C, X, Y, Z)`` becomes its slices ``(C, a, b)`` in order, all with
    the volume's case id (``asymtune predict`` stacks their predictions back the same way)."""
    images, labels, ids, spacings = [], [], [], []
    for case in cases:
        if slice_axis is None:
            images.append(case.image)
            labels.append(case.label)
            ids.append(case.case_id)
            spacings.append(tuple(case.spacing))
            continue
        image = np.moveaxis(case.image, 1 + slice_axis, 1)  # (C, S, a, b), a view
        label = np.moveaxis(case.label, slice_axis, 0)  # (S, a, b)
        order = [slice_axis] + [axis for axis in range(3) if axis != slice_axis]
        spacing = tuple(float(case.spacing[axis]) for axis in order)  # slice axis first
        for index in range(label.shape[0]):
            images.append(image[:, index])
            labels.append(label[index])
            ids.append(case.case_id)
            spacings.append(spacing)
    return Split(tuple(images), tuple(labels), case_ids=tuple(ids), spacings=tuple(spacings))


def _rare(class_names: tuple[str, ...], fractions: np.ndarray, names: Sequence[str] | None) -> tuple[int, ...]:
    if names is not None:
        unknown = [name for name in names if name not in class_names[1:]]
        if unknown:
            raise ValueError(
                f"rare_classes={list(names)}: {unknown} are not foreground classes; "
                f"expected some of {list(class_names[1:])}"
            )
        return tuple(class_names.index(name) for name in names)
    rare = tuple(c for c in range(1, len(class_names)) if fractions[c] < RARE_FRACTION)
    return rare or (1 + int(np.argmin(fractions[1:])),)


@register_dataset("nnunet")
def nnunet_dataset(
    *,
    root: str,
    layout: str = "auto",
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    train_fraction: float = 1.0,
    num_folds: int | None = None,
    fold: int = 0,
    slice_axis: int | None = None,
    rare_classes: Sequence[str] | None = None,
    cache_dir: str | None = None,
) -> SegmentationDataset:
    """A dataset folder in the nnU-Net v2 raw layout or the Decathlon layout (``layout="auto"``
    tells them apart by ``dataset.json``).

    Args:
        root: the folder holding ``dataset.json``.
        layout: ``"auto"``, ``"nnunet"`` or ``"decathlon"``.
        seed, val_fraction, test_fraction, train_fraction, num_folds, fold: the case-level split
            (:func:`asymtune.data.splits.split_cases`).
        slice_axis: None trains on the cases' own dimensionality; 0, 1 or 2 trains a 2-D network
            on slices of 3-D cases along that array axis.
        rare_classes: names of the classes the paper's default setting treats as rare; by default
            the foreground classes under 2% of the voxels of the whole training split (before
            ``train_fraction``; else the smallest one).
        cache_dir: where the prepared arrays go (default ``$ASYMTUNE_CACHE`` or ``~/.cache/asymtune/prepared``).
    """
    from asymtune.data.prepared import prepare_dataset

    if layout not in ("auto", "nnunet", "decathlon"):
        raise ValueError(f"layout={layout!r}: expected 'auto', 'nnunet' or 'decathlon'")
    prepared = prepare_dataset(root, layout=layout, cache_dir=cache_dir)
    if slice_axis is not None:
        check_int("slice_axis", slice_axis, 0, 2)
        if prepared.spatial_dims != 3:
            raise ValueError(f"slice_axis={slice_axis}: the dataset at {root} is 2-D; expected null")
    by_id = {case.case_id: case for case in prepared.cases}
    options: _SplitOptions = {
        "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction, "num_folds": num_folds, "fold": fold
    }
    split = split_cases(list(by_id), train_fraction=train_fraction, **options)
    train, val, test = (case_split([by_id[i] for i in ids], slice_axis) for ids in (split.train, split.val, split.test))
    # The default rare classes come from the whole training split, whatever train_fraction takes of it,
    # so every training-set size of the limited-data setting treats the same classes as rare.
    whole_train = train
    if train_fraction != 1.0:
        whole_train = case_split([by_id[i] for i in split_cases(list(by_id), **options).train], slice_axis)
    counts = whole_train.voxel_counts(len(prepared.class_names))
    fractions = counts / max(int(counts.sum()), 1)
    return SegmentationDataset(
        name=prepared.name,
        class_names=tuple(prepared.class_names),
        train=train,
        val=val,
        test=test,
        rare_classes=_rare(tuple(prepared.class_names), fractions, rare_classes),
        fingerprint=prepared.fingerprint,
    )


@register_dataset("decathlon")
def decathlon_dataset(*, root: str, **params: object) -> SegmentationDataset:
    """A dataset folder in the Medical Segmentation Decathlon layout (same options as ``nnunet``)."""
    if "layout" in params:
        raise ValueError(
            f"dataset 'decathlon' has no parameter 'layout' (got layout={params['layout']!r}): use source nnunet"
        )
    return create_dataset("nnunet", root=root, layout="decathlon", **params)

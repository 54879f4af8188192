"""Datasets as arrays in memory, the registry that builds them, and the asymmetric augmenter.

``create_dataset(name, **params)`` is the way in; ``list_datasets()`` names what exists. The
built-in ``synth_lesions`` and ``synth_organs``, and ``nnunet`` / ``decathlon`` (datasets given by
path, :mod:`asymtune.data.cases`) register themselves when this package is imported.
"""

from asymtune.data import cases as _cases  # noqa: F401  (registers nnunet and decathlon)
from asymtune.data import synthetic as _synthetic  # noqa: F401  (registers the built-in datasets)
from asymtune.data.augment import AsymmetricAugmenter
from asymtune.data.base import SegmentationDataset, Split
from asymtune.data.registry import create_dataset, describe, list_datasets, register_dataset

__all__ = [
    "AsymmetricAugmenter",
    "SegmentationDataset",
    "Split",
    "create_dataset",
    "describe",
    "list_datasets",
    "register_dataset",
]

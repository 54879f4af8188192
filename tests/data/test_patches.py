"""Patch sampling: crops with padding, and foreground oversampling as nnU-Net does it."""

from __future__ import annotations

import numpy as np
import pytest

from asymtune.data.base import Split
from asymtune.data.patches import PatchSampler, crop, default_patch_size, foreground_locations


def test_crop_inside_equals_slicing() -> None:
    array = np.arange(2 * 6 * 7).reshape(2, 6, 7)
    assert np.array_equal(crop(array, [1, 2], [3, 4]), array[:, 1:4, 2:6])


def test_crop_pads_with_zeros_outside() -> None:
    array = np.arange(1, 10).reshape(3, 3)
    out = crop(array, [-1, 1], [4, 3])
    expected = np.array([[0, 0, 0], [2, 3, 0], [5, 6, 0], [8, 9, 0]])
    assert np.array_equal(out, expected)


def test_default_patch_size_is_the_capped_median_in_multiples_of_16() -> None:
    assert default_patch_size([(40, 70, 100), (50, 90, 30), (45, 80, 60)], 3) == (32, 64, 48)
    assert default_patch_size([(300, 20)], 2) == (128, 16)


def test_foreground_locations_per_class() -> None:
    label = np.zeros((4, 5), dtype=np.uint8)
    label[1, 2] = 1
    label[3, 0] = label[3, 4] = 2
    locations = foreground_locations(label, 3)
    assert locations[1].tolist() == [[1, 2]]
    assert locations[2].tolist() == [[3, 0], [3, 4]]


def _cases() -> Split:
    rng = np.random.default_rng(0)
    images, labels = [], []
    for shape in [(40, 50), (30, 64), (20, 20)]:
        label = np.zeros(shape, dtype=np.uint8)
        label[shape[0] - 3, shape[1] - 3] = 1  # one foreground voxel near a corner
        images.append(rng.normal(size=(2, *shape)).astype(np.float32))
        labels.append(label)
    return Split(tuple(images), tuple(labels))


def test_forced_patches_hold_foreground_and_others_are_random() -> None:
    split = _cases()
    rng = np.random.default_rng(1)
    forced_hits, free_hits = 0, 0
    sampler = PatchSampler(split, (16, 16), num_classes=2, oversample_foreground=0.5)
    for _ in range(40):
        images, labels = sampler.sample(4, rng)
        assert images.shape == (4, 2, 16, 16) and images.dtype == np.float32
        assert labels.shape == (4, 16, 16) and labels.dtype == np.int64
        forced_hits += int((labels[2:] == 1).any(axis=(1, 2)).sum())
        free_hits += int((labels[:2] == 1).any(axis=(1, 2)).sum())
    assert forced_hits == 80  # the last half of every batch is centred on foreground
    assert free_hits < 40  # a random 16x16 patch rarely holds the single corner voxel


def test_image_and_label_patches_come_from_the_same_window() -> None:
    rng = np.random.default_rng(2)
    labels = tuple(rng.integers(0, 3, size=shape).astype(np.uint8) for shape in [(30, 40), (24, 50)])
    images = tuple(np.stack([label * 10.0, -1.0 * label]).astype(np.float32) for label in labels)
    sampler = PatchSampler(Split(images, labels), (16, 16), num_classes=3, oversample_foreground=0.5)
    patch_images, patch_labels = sampler.sample(8, np.random.default_rng(0))
    assert np.array_equal(patch_images[:, 0], patch_labels * 10.0)
    assert np.array_equal(patch_images[:, 1], -patch_labels)


def test_small_case_is_centred_and_padded() -> None:
    split = _cases()
    sampler = PatchSampler(split, (32, 32), num_classes=2, oversample_foreground=0.0)
    starts = sampler._starts(2, (20, 20), np.random.default_rng(0), forced=False)
    assert starts == [-6, -6]


def test_sampling_is_repeatable_with_the_same_seed() -> None:
    split = _cases()
    sampler = PatchSampler(split, (16, 16), num_classes=2, oversample_foreground=0.33)
    first = sampler.sample(6, np.random.default_rng(7))
    second = sampler.sample(6, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_wrong_patch_rank_is_refused() -> None:
    with pytest.raises(ValueError, match=r"train.patch_size=\[16, 16, 16\]: expected 2 values for 2-D cases"):
        PatchSampler(_cases(), (16, 16, 16), num_classes=2, oversample_foreground=0.33)

"""The synthetic datasets: shapes, determinism, disjoint splits, class balance, and the
appearance properties that make a network overfit the rare classes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from asymtune.data import SegmentationDataset, create_dataset

NAMES = ("synth_lesions", "synth_organs")


@pytest.fixture(scope="module")
def lesions() -> SegmentationDataset:
    return create_dataset("synth_lesions")


@pytest.fixture(scope="module")
def organs() -> SegmentationDataset:
    return create_dataset("synth_organs")


def _splits(dataset: SegmentationDataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": (dataset.train.images, dataset.train.labels),
        "val": (dataset.val.images, dataset.val.labels),
        "test": (dataset.test.images, dataset.test.labels),
    }


@pytest.mark.parametrize("name", NAMES)
def test_default_shapes_and_dtypes(name: str) -> None:
    dataset = create_dataset(name)
    for split, size in ((dataset.train, 16), (dataset.val, 16), (dataset.test, 32)):
        assert split.images.shape == (size, 1, 64, 64)
        assert split.labels.shape == (size, 64, 64)
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
        assert split.labels.min() >= 0 and split.labels.max() < dataset.num_classes
    assert dataset.spatial_dims == 2 and dataset.in_channels == 1


def test_class_names_and_rare_classes(lesions: SegmentationDataset, organs: SegmentationDataset) -> None:
    assert lesions.class_names == ("background", "lesion") and lesions.rare_classes == (1,)
    assert organs.class_names == ("background", "organ", "organ_lesion", "duct")
    assert organs.rare_classes == (2, 3)


@pytest.mark.parametrize("name", NAMES)
def test_3d_volumes(name: str) -> None:
    dataset = create_dataset(name, spatial_dims=3, image_size=16, n_train=2, n_val=1, n_test=1)
    assert dataset.train.images.shape == (2, 1, 16, 16, 16)
    assert dataset.train.labels.shape == (2, 16, 16, 16)
    assert dataset.test.images.dtype == np.float32 and dataset.test.labels.dtype == np.int64
    assert dataset.spatial_dims == 3
    for labels in dataset.train.labels:
        assert np.isin(labels, dataset.rare_classes).any()


def test_3d_default_side_is_32() -> None:
    dataset = create_dataset("synth_lesions", spatial_dims=3, n_train=1, n_val=1, n_test=1)
    assert dataset.train.images.shape == (1, 1, 32, 32, 32)


@pytest.mark.parametrize(
    ("name", "params"),
    [("synth_lesions", {}), ("synth_organs", {}), ("synth_organs", {"spatial_dims": 3, "image_size": 16, "n_test": 2})],
)
def test_same_parameters_give_byte_identical_arrays(name: str, params: dict) -> None:
    first, second = create_dataset(name, **params), create_dataset(name, **params)
    for (images_a, labels_a), (images_b, labels_b) in zip(_splits(first).values(), _splits(second).values()):
        assert images_a.tobytes() == images_b.tobytes()
        assert labels_a.tobytes() == labels_b.tobytes()


def test_another_seed_gives_other_images(lesions: SegmentationDataset) -> None:
    other = create_dataset("synth_lesions", seed=1, n_train=2, n_val=1, n_test=1)
    assert not np.array_equal(other.train.images[0], lesions.train.images[0])


def test_a_case_does_not_depend_on_the_split_sizes(lesions: SegmentationDataset) -> None:
    small = create_dataset("synth_lesions", n_train=4, n_val=3, n_test=2)
    np.testing.assert_array_equal(small.train.images, lesions.train.images[:4])
    np.testing.assert_array_equal(small.test.labels, lesions.test.labels[:2])


@pytest.mark.parametrize("name", NAMES)
def test_no_image_is_shared_between_splits(
    name: str, lesions: SegmentationDataset, organs: SegmentationDataset
) -> None:
    dataset = lesions if name == "synth_lesions" else organs
    seen: dict[bytes, str] = {}
    for split_name, (images, _) in _splits(dataset).items():
        for image in images:
            key = image.tobytes()
            assert seen.setdefault(key, split_name) == split_name, f"an image of {split_name} is also in {seen[key]}"
    train = dataset.train.images.reshape(len(dataset.train), -1)
    for other in (dataset.val.images, dataset.test.images):
        # No near copies either: every pair of images from different splits is far apart.
        distances = np.abs(train[:, None, :] - other.reshape(len(other), -1)[None]).mean(axis=2)
        assert distances.min() > 0.1


def test_lesion_fraction_at_default(lesions: SegmentationDataset) -> None:
    fractions = lesions.class_fractions()
    assert 0.003 <= fractions[1] <= 0.008


def test_organ_fractions_at_default(organs: SegmentationDataset) -> None:
    fractions = organs.class_fractions()
    assert 0.10 <= fractions[1] <= 0.20
    assert 0.003 <= fractions[2] <= 0.01
    assert 0.003 <= fractions[3] <= 0.01


@pytest.mark.parametrize("lesion_fraction", [0.002, 0.02])
def test_lesion_fraction_is_the_imbalance_knob(lesion_fraction: float) -> None:
    dataset = create_dataset("synth_lesions", lesion_fraction=lesion_fraction, n_val=1, n_test=1)
    assert 0.5 * lesion_fraction <= dataset.class_fractions()[1] <= 1.6 * lesion_fraction


def test_every_lesion_image_has_a_lesion(lesions: SegmentationDataset) -> None:
    for _, labels in _splits(lesions).values():
        assert (labels == 1).reshape(len(labels), -1).any(axis=1).all()


def test_organ_images_hold_the_organ_and_mostly_both_small_structures(organs: SegmentationDataset) -> None:
    labels = np.concatenate([labels for _, labels in _splits(organs).values()])
    present = np.stack([(labels == c).reshape(len(labels), -1).any(axis=1) for c in range(4)], axis=1)
    assert present[:, 1].all()
    assert (present[:, 2] | present[:, 3]).all()
    assert present[:, 2].mean() >= 0.7 and present[:, 3].mean() >= 0.7
    # The organ lesion lies inside the organ: each of its voxels touches the organ or itself.
    lesion = labels == 2
    inside = np.zeros_like(lesion)
    for axis in (1, 2):
        for shift in (-1, 1):
            inside |= np.isin(np.roll(labels, shift, axis=axis), (1, 2))
    assert inside[lesion].mean() > 0.95


@pytest.mark.parametrize("name", NAMES)
def test_images_are_z_scored(name: str, lesions: SegmentationDataset, organs: SegmentationDataset) -> None:
    images = (lesions if name == "synth_lesions" else organs).train.images
    np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 1.0, atol=1e-3)


def test_rare_structures_vary_more_between_images_than_the_organ(organs: SegmentationDataset) -> None:
    images, labels = organs.test.images[:, 0], organs.test.labels
    organ_contrast, lesion_contrast, organ_size, lesion_size = [], [], [], []
    for image, label in zip(images, labels):
        background = image[label == 0].mean()
        organ_contrast.append(image[label == 1].mean() - background)
        organ_size.append((label == 1).sum())
        if (label == 2).any():
            lesion_contrast.append(image[label == 2].mean() - image[label == 1].mean())
            lesion_size.append((label == 2).sum())
    assert np.std(lesion_contrast) > 2.0 * np.std(organ_contrast)
    assert np.std(lesion_size) / np.mean(lesion_size) > 2.0 * np.std(organ_size) / np.mean(organ_size)


def test_lesions_cannot_be_found_by_thresholding(lesions: SegmentationDataset) -> None:
    images, truth = lesions.train.images[:, 0], lesions.train.labels == 1
    best_dice = 0.0
    for threshold in np.linspace(0.0, 4.0, 41):
        predicted = images > threshold
        overlap = np.logical_and(predicted, truth).sum()
        best_dice = max(best_dice, 2.0 * overlap / (predicted.sum() + truth.sum()))
    assert best_dice < 0.5


def test_lesions_are_visible_on_average(lesions: SegmentationDataset) -> None:
    images, labels = lesions.train.images[:, 0], lesions.train.labels
    assert images[labels == 1].mean() > images[labels == 0].mean() + 0.5


def test_default_generation_is_fast() -> None:
    start = time.perf_counter()
    for name in NAMES:
        create_dataset(name)
    assert time.perf_counter() - start < 5.0  # about 0.3 s on one core; generous for shared CPUs

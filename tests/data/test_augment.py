"""Asymmetric augmentation: who gets augmented, and that images and labels move together."""

from __future__ import annotations

import math

import pytest
import torch

from asymtune.data import AsymmetricAugmenter
from asymtune.method import samples_to_augment

NO_TRANSFORMS = {"p_rotate": 0.0, "p_scale": 0.0, "p_elastic": 0.0, "p_gamma": 0.0, "p_noise": 0.0, "p_flip": 0.0}
ALL_TRANSFORMS = {"p_rotate": 1.0, "p_scale": 1.0, "p_elastic": 1.0, "p_gamma": 1.0, "p_noise": 1.0, "p_flip": 0.5}


def _smooth_field(shape: tuple[int, ...], sigma: float, seed: int) -> torch.Tensor:
    """Smooth random images ``(B, *spatial)`` whose sign changes only on a scale of ``sigma``."""
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    axes = tuple(range(1, len(shape)))
    squared = sum(
        f**2 for f in torch.meshgrid(*(torch.fft.fftfreq(size) for size in shape[1:]), indexing="ij")
    )
    transfer = torch.exp(-2.0 * math.pi**2 * sigma**2 * squared)
    field = torch.fft.ifftn(torch.fft.fftn(noise, dim=axes) * transfer, dim=axes).real
    return field / field.std()


def _mixed_batch(
    spatial: tuple[int, ...] = (24, 24), batch: int = 6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images, labels with classes 0..2 (2 rare), and which samples hold the rare class."""
    images = torch.randn(batch, 1, *spatial, generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(batch, *spatial, dtype=torch.long)
    middle = tuple(slice(s // 4, 3 * s // 4) for s in spatial)
    labels[(slice(None), *middle)] = 1  # a frequent class in every sample
    has_rare = torch.tensor([i % 2 == 0 for i in range(batch)])
    for i in range(0, batch, 2):
        labels[(i, *(slice(s // 2 - 1, s // 2 + 2) for s in spatial))] = 2
    return images, labels, has_rare


def test_rare_samples_are_always_augmented_and_others_never_with_p_bg_zero() -> None:
    images, labels, has_rare = _mixed_batch()
    augment = AsymmetricAugmenter([False, False, True], p_bg=0.0, **ALL_TRANSFORMS)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        out_images, out_labels, augmented = augment(images, labels, generator)
        assert torch.equal(augmented, has_rare)
        assert torch.equal(out_images[~has_rare], images[~has_rare])  # bit-identical
        assert torch.equal(out_labels[~has_rare], labels[~has_rare])
        assert not torch.equal(out_images[has_rare], images[has_rare])


def test_p_bg_one_augments_background_samples() -> None:
    images, labels, has_rare = _mixed_batch()
    augment = AsymmetricAugmenter([False, False, True], p_bg=1.0)  # paper defaults
    generator = torch.Generator().manual_seed(2)
    changed = torch.zeros(len(images), dtype=torch.bool)
    for _ in range(20):
        out_images, _, augmented = augment(images, labels, generator)
        assert augmented.all()
        changed |= (out_images != images).flatten(1).any(dim=1)
    assert changed[~has_rare].all()


def test_p_bg_is_the_probability_for_background_samples() -> None:
    images = torch.zeros(500, 1, 4, 4)
    labels = torch.zeros(500, 4, 4, dtype=torch.long)
    augment = AsymmetricAugmenter([False, True], p_bg=0.3, **NO_TRANSFORMS)
    generator = torch.Generator().manual_seed(3)
    rate = torch.stack([augment(images, labels, generator)[2] for _ in range(4)]).float().mean()
    assert 0.25 < rate < 0.35


def test_augmented_labels_hold_only_valid_classes() -> None:
    images, labels, _ = _mixed_batch()
    augment = AsymmetricAugmenter([False, False, True], **ALL_TRANSFORMS, elastic_alpha=3.0)
    generator = torch.Generator().manual_seed(4)
    for _ in range(5):
        out_images, out_labels, _ = augment(images, labels, generator)
        assert out_labels.dtype == torch.int64 and out_labels.shape == labels.shape
        assert out_images.dtype == images.dtype and out_images.shape == images.shape
        assert set(out_labels.unique().tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("spatial", [(20, 28), (10, 12, 14)])
def test_flips_move_image_and_label_together(spatial: tuple[int, ...]) -> None:
    images = _smooth_field((4, *spatial), sigma=2.0, seed=5).unsqueeze(1)
    labels = (images[:, 0] > 0).long()
    augment = AsymmetricAugmenter([False, True], spatial_dims=len(spatial), **{**NO_TRANSFORMS, "p_flip": 1.0})
    out_images, out_labels, _ = augment(images, labels, torch.Generator().manual_seed(6))
    assert torch.equal(out_labels, (out_images[:, 0] > 0).long())
    assert torch.equal(out_images, images.flip(*range(2, 2 + len(spatial))))


@pytest.mark.parametrize("spatial", [(40, 48), (20, 20, 24)])
def test_rotation_scaling_and_elastic_move_image_and_label_together(spatial: tuple[int, ...]) -> None:
    images = _smooth_field((4, *spatial), sigma=4.0, seed=7).unsqueeze(1)
    labels = (images[:, 0] > 0).long()
    geometric = {**NO_TRANSFORMS, "p_rotate": 1.0, "p_scale": 1.0, "p_elastic": 1.0}
    augment = AsymmetricAugmenter([False, True], spatial_dims=len(spatial), elastic_alpha=2.0, **geometric)
    out_images, out_labels, _ = augment(images, labels, torch.Generator().manual_seed(8))
    follows = (out_labels == (out_images[:, 0] > 0).long()).float().mean()
    stays = (labels == (out_images[:, 0] > 0).long()).float().mean()
    # The label followed the image (nearest vs bilinear differ only next to the sign edges, about
    # 2% of the voxels here); had it stayed put, about 20% of the voxels would disagree.
    assert follows > 0.95
    assert stays < 0.9


def test_scale_makes_structures_larger() -> None:
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    labels[0, 28:36, 28:36] = 1  # 8 x 8 = 64 pixels, centred
    augment = AsymmetricAugmenter([False, True], **{**NO_TRANSFORMS, "p_scale": 1.0}, scale_range=(2.0, 2.0))
    _, out_labels, _ = augment(labels[:, None].float(), labels, torch.Generator().manual_seed(9))
    assert (out_labels == 1).sum() == 256


def test_gamma_keeps_each_sample_range() -> None:
    images = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(10)) * 3 + 1
    labels = torch.ones(3, 16, 16, dtype=torch.long)
    augment = AsymmetricAugmenter([False, True], **{**NO_TRANSFORMS, "p_gamma": 1.0})
    out_images, _, _ = augment(images, labels, torch.Generator().manual_seed(11))
    assert not torch.allclose(out_images, images)
    torch.testing.assert_close(out_images.amin(dim=(2, 3)), images.amin(dim=(2, 3)))
    torch.testing.assert_close(out_images.amax(dim=(2, 3)), images.amax(dim=(2, 3)))


def test_intensity_transforms_leave_labels_alone() -> None:
    images, labels, _ = _mixed_batch()
    augment = AsymmetricAugmenter([False, False, True], **{**NO_TRANSFORMS, "p_gamma": 1.0, "p_noise": 1.0})
    out_images, out_labels, _ = augment(images, labels, torch.Generator().manual_seed(12))
    assert torch.equal(out_labels, labels)
    assert not torch.equal(out_images, images)


def test_no_transforms_is_the_identity() -> None:
    images, labels, _ = _mixed_batch()
    out_images, out_labels, augmented = AsymmetricAugmenter([False, False, True], **NO_TRANSFORMS)(
        images, labels, torch.Generator().manual_seed(13)
    )
    assert augmented.all()
    assert torch.equal(out_images, images) and torch.equal(out_labels, labels)


def test_3d_batch_with_everything_on() -> None:
    images, labels, has_rare = _mixed_batch(spatial=(12, 12, 12), batch=4)
    augment = AsymmetricAugmenter([False, False, True], p_bg=0.0, spatial_dims=3, **ALL_TRANSFORMS)
    out_images, out_labels, augmented = augment(images, labels, torch.Generator().manual_seed(14))
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert torch.equal(augmented, has_rare)
    assert set(out_labels.unique().tolist()) <= {0, 1, 2}
    assert torch.equal(out_images[~has_rare], images[~has_rare])


def test_same_generator_state_gives_the_same_output() -> None:
    images, labels, _ = _mixed_batch()
    augment = AsymmetricAugmenter([False, False, True], **ALL_TRANSFORMS)
    first = augment(images, labels, torch.Generator().manual_seed(15))
    second = augment(images, labels, torch.Generator().manual_seed(15))
    other = augment(images, labels, torch.Generator().manual_seed(16))
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])


def test_inputs_are_not_modified() -> None:
    images, labels, _ = _mixed_batch()
    images_before, labels_before = images.clone(), labels.clone()
    AsymmetricAugmenter([False, False, True], **ALL_TRANSFORMS)(images, labels, torch.Generator().manual_seed(17))
    assert torch.equal(images, images_before) and torch.equal(labels, labels_before)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rare": []}, r"rare=\[\]: expected a non-empty sequence of booleans"),
        ({"rare": [0, 2]}, r"rare=\[0, 2\]"),
        ({"p_bg": 1.5}, r"p_bg=1.5: expected a number in \[0.0, 1.0\]"),
        ({"p_rotate": -0.1}, "p_rotate=-0.1"),
        ({"spatial_dims": 1}, r"spatial_dims=1: expected an integer in \[2, 3\]"),
        ({"max_rotate_deg": 200}, r"max_rotate_deg=200: expected a number in \[0.0, 180.0\]"),
        ({"scale_range": (1.2, 0.9)}, r"scale_range=\(1.2, 0.9\): expected two numbers"),
        ({"elastic_sigma": 0.0}, r"elastic_sigma=0.0: expected a number in \(0.0, 100.0\]"),
        ({"elastic_alpha": -1.0}, "elastic_alpha=-1.0"),
        ({"gamma_range": (0.0, 1.5)}, r"gamma_range=\(0.0, 1.5\)"),
        ({"noise_std": math.nan}, "noise_std=nan"),
        ({"p_flip": "0.5"}, "p_flip='0.5'"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AsymmetricAugmenter(**{"rare": [False, True], **options})


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (torch.zeros(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), r"images have shape \(2, 8, 8\)"),
        (torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 9, dtype=torch.long), r"labels have shape \(2, 8, 9\)"),
        (torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8), "dtype torch.float32"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), torch.zeros(2, 8, 8, dtype=torch.long), "floating point"),
        (torch.zeros(2, 1, 8, 8), torch.full((2, 8, 8), 2), "labels contain class 2"),
    ],
)
def test_bad_batches_are_refused(images: torch.Tensor, labels: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AsymmetricAugmenter([False, True])(images, labels, torch.Generator())


def test_the_augmenter_decides_by_the_method_rule() -> None:
    # The rule (method.md 3.5) lives in asymtune.method; the augmenter draws exactly what it draws.
    images, labels, has_rare = _mixed_batch(batch=8)
    augment = AsymmetricAugmenter([False, False, True], p_bg=0.4, **NO_TRANSFORMS)
    for seed in range(5):
        expected = samples_to_augment(labels, [False, False, True], 0.4, torch.Generator().manual_seed(seed))
        assert torch.equal(augment(images, labels, torch.Generator().manual_seed(seed))[2], expected)
        assert expected[has_rare].all()


def test_every_class_rare_augments_every_sample() -> None:
    labels = torch.zeros(50, 4, 4, dtype=torch.long)  # background only
    generator = torch.Generator().manual_seed(0)
    assert samples_to_augment(labels, [True, True], p_bg=0.0, generator=generator).all()
    assert not samples_to_augment(labels, [False, True], p_bg=0.0, generator=generator).any()


@pytest.mark.parametrize(
    ("labels", "rare", "p_bg", "message"),
    [
        (torch.zeros(2, 4, dtype=torch.long), [], 0.5, r"rare = \[\] is invalid"),
        (torch.zeros(2, 4, dtype=torch.long), [False, True], 1.5, r"p_bg = 1.5 is invalid; expected a probability"),
        (torch.zeros(2, 4), [False, True], 0.5, "dtype torch.float32; expected integer labels"),
        (torch.full((2, 4), 2), [False, True], 0.5, "labels contain class 2: expected classes below 2"),
    ],
)
def test_the_rule_refuses_bad_inputs(labels: torch.Tensor, rare: list[bool], p_bg: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samples_to_augment(labels, rare, p_bg, torch.Generator())

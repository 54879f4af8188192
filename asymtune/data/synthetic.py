"""Synthetic imbalanced segmentation tasks: the built-in data of asymtune.

Two registered datasets, in 2-D or 3-D, built with numpy from a seed (same parameters give
byte-identical arrays):

- ``synth_lesions``: background and one small lesion class (about 0.5% of pixels by default,
  the ``lesion_fraction`` knob), one or more lesions per image. Rare class: 1.
- ``synth_organs``: background, a large dark organ (about 15% of pixels, the ``organ_fraction``
  knob), a bright ``organ_lesion`` inside the organ and a dark elongated ``duct`` outside it
  (each about 0.5%, the ``small_fraction`` knob, present in about 85% of the images, at least one
  of them in every image). Rare classes: 2 and 3.

Why it reproduces the setting of Li, Kamnitsas & Glocker (TMI 2021): the background is a
stationary texture (two scales of smoothed noise), a smooth multiplicative bias field and white
noise, so every image's background has the same statistics, and the organ has a fixed contrast,
size and shape family: they look alike in the training and the test images. Each rare structure,
on the other hand, draws its own size, elongation, orientation, irregular outline (a warped
ellipsoid), contrast (uniform over ``rare_contrast``; the faint end is as strong as the spots of
the background's fine grain), internal texture and edge blur. With 16 training images the network
sees a few dozen rare examples and memorises them; on unseen ones the rare logits fall towards
the decision boundary, so sensitivity drops while the organ and the background stay as good as in
training. Measured with a small 2-D U-Net (CE + Dice, Adam, 600 steps of 8 whole images, seeds 0
and 1, default parameters): rare-class sensitivity 0.98-1.00 on train against 0.45-0.65 on test,
precision 1.00 against 0.66-0.87, organ Dice 1.00 against 0.97; with the paper's augmentation the
lesion still drops from 0.97 to 0.58, and with ``n_train=64`` it drops less (0.92 to 0.64).

Splits come from independent children of ``numpy.random.SeedSequence(seed)`` (one per split,
one per case inside a split), so no image is shared between splits and a case does not change
when the other sizes do: ``n_train=8`` gives the first 8 images of ``n_train=16``.

Intensities: the content (about 3 + texture + structures) is multiplied by the bias field, white
noise is added, and each image is z-scored (as nnU-Net does for MR).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from asymtune.data.base import SegmentationDataset, Split
from asymtune.data.registry import check_int, check_number, check_range, register_dataset

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Raw intensity units, before the bias field, the noise and z-scoring. The background texture has a
# fine grain (std 0.3, spots the size of a small lesion: a rare structure cannot be found by
# thresholding) on coarse lobes (std 0.6); together about 0.67. Rare contrasts (default 0.6 to 2.5)
# therefore run from "as strong as a texture spot" to clearly visible.
_TISSUE_LEVEL = 3.0  # mean content intensity, so that the multiplicative bias field matters
_FINE_TEXTURE = 0.3
_COARSE_TEXTURE = 0.6
_ORGAN_CONTRAST = -2.5  # synth_organs: the organ is darker than the background, always alike
_STRUCTURE_PRESENCE = 0.85  # synth_organs: probability that each small structure is in an image
_MIN_STRUCTURE_VOXELS = 3


@dataclass(frozen=True)
class _Acquisition:
    """The parameters every synthetic dataset shares, validated."""

    seed: int
    split_sizes: tuple[int, int, int]
    shape: tuple[int, ...]
    noise: float
    bias_field: float
    rare_contrast: tuple[float, float]


@dataclass(frozen=True)
class _Ellipsoid:
    """An oriented ellipsoid: ``rotation`` columns are its axes, ``radii`` in voxels."""

    rotation: FloatArray
    radii: FloatArray


# --------------------------------------------------------------------------------------------
# Registered datasets


@register_dataset("synth_lesions")
def synth_lesions(
    *,
    seed: int = 0,
    n_train: int = 16,
    n_val: int = 16,
    n_test: int = 32,
    image_size: int | None = None,
    spatial_dims: int = 2,
    noise: float = 0.3,
    bias_field: float = 0.25,
    rare_contrast: Sequence[float] = (0.6, 2.5),
    lesion_fraction: float = 0.005,
    max_lesions: int = 2,
) -> SegmentationDataset:
    """Background and one small lesion class; every image holds 1..``max_lesions`` lesions.

    Args:
        seed: root seed (an integer >= 0).
        n_train, n_val, n_test: number of cases per split.
        image_size: side length in voxels; None means 64 in 2-D and 32 in 3-D.
        spatial_dims: 2 for ``(H, W)`` images, 3 for ``(D, H, W)`` volumes.
        noise: white-noise standard deviation, in raw intensity units (the background texture's
            std is about 0.67; images are z-scored at the end).
        bias_field: largest log-gain of the multiplicative bias field (0 switches it off).
        rare_contrast: range of a rare structure's contrast over its surroundings, in raw
            intensity units; each structure draws its own, uniformly.
        lesion_fraction: mean fraction of lesion voxels per image (the imbalance knob).
        max_lesions: most lesions in one image (each image has at least one).
    """
    acquisition = _acquisition(
        seed, n_train, n_val, n_test, image_size, spatial_dims, noise, bias_field, rare_contrast
    )
    fraction = check_number("lesion_fraction", lesion_fraction, low=0.0, high=0.05, low_open=True)
    most = check_int("max_lesions", max_lesions, minimum=1, maximum=10)

    def make_case(rng: np.random.Generator) -> tuple[FloatArray, NDArray[np.int64]]:
        return _lesion_case(rng, acquisition, fraction, most)

    return _build("synth_lesions", ("background", "lesion"), (1,), acquisition, make_case)


@register_dataset("synth_organs")
def synth_organs(
    *,
    seed: int = 0,
    n_train: int = 16,
    n_val: int = 16,
    n_test: int = 32,
    image_size: int | None = None,
    spatial_dims: int = 2,
    noise: float = 0.3,
    bias_field: float = 0.25,
    rare_contrast: Sequence[float] = (0.6, 2.5),
    organ_fraction: float = 0.15,
    small_fraction: float = 0.006,
) -> SegmentationDataset:
    """A large easy organ and two small rare structures of different appearance.

    Classes: ``background``; ``organ`` (dark, large, alike in every image); ``organ_lesion``
    (bright, compact, inside the organ); ``duct`` (dark, elongated, outside the organ).

    Args:
        seed, n_train, n_val, n_test, image_size, spatial_dims, noise, bias_field, rare_contrast:
            as in :func:`synth_lesions`.
        organ_fraction: mean fraction of organ voxels per image.
        small_fraction: mean size of each small structure, as a fraction of the image, when
            present (each is present in about 85% of the images).
    """
    acquisition = _acquisition(
        seed, n_train, n_val, n_test, image_size, spatial_dims, noise, bias_field, rare_contrast
    )
    organ = check_number("organ_fraction", organ_fraction, low=0.02, high=0.4)
    small = check_number("small_fraction", small_fraction, low=0.0, high=0.05, low_open=True)

    def make_case(rng: np.random.Generator) -> tuple[FloatArray, NDArray[np.int64]]:
        return _organ_case(rng, acquisition, organ, small)

    class_names = ("background", "organ", "organ_lesion", "duct")
    return _build("synth_organs", class_names, (2, 3), acquisition, make_case)


# --------------------------------------------------------------------------------------------
# Cases


def _lesion_case(
    rng: np.random.Generator, acquisition: _Acquisition, lesion_fraction: float, max_lesions: int
) -> tuple[FloatArray, NDArray[np.int64]]:
    shape = acquisition.shape
    labels = np.zeros(shape, dtype=np.int64)
    content = _tissue(rng, shape)
    n_lesions = int(rng.integers(1, max_lesions + 1))
    total_voxels = lesion_fraction * math.prod(shape) * rng.uniform(0.4, 1.6)
    margin = min(4, min(shape) // 4)
    for share in rng.dirichlet(np.full(n_lesions, 2.0)):
        voxels = max(_MIN_STRUCTURE_VOXELS, round(total_voxels * share))
        ellipsoid = _random_ellipsoid(rng, len(shape), voxels, aspect_range=(1.0, 2.5))
        center = np.array([rng.integers(margin, size - margin) for size in shape], dtype=np.float64)
        mask = _blob(rng, shape, center, voxels, ellipsoid, warp=rng.uniform(0.1, 0.5))
        content += _rare_intensity(rng, mask, acquisition, sign=1.0, texture=(0.0, 0.6))
        labels[mask] = 1
    return _acquire(rng, content, acquisition), labels


def _organ_case(
    rng: np.random.Generator, acquisition: _Acquisition, organ_fraction: float, small_fraction: float
) -> tuple[FloatArray, NDArray[np.int64]]:
    shape = acquisition.shape
    n_voxels = math.prod(shape)
    labels = np.zeros(shape, dtype=np.int64)
    content = _tissue(rng, shape)

    organ_voxels = round(organ_fraction * n_voxels * rng.uniform(0.85, 1.15))
    organ_shape = _random_ellipsoid(rng, len(shape), organ_voxels, aspect_range=(1.0, 1.6))
    organ_center = (np.array(shape) - 1) / 2 + rng.uniform(-0.08, 0.08, len(shape)) * np.array(shape)
    organ = _blob(rng, shape, organ_center, organ_voxels, organ_shape, warp=0.15)
    content += _structure_intensity(
        rng, organ, _ORGAN_CONTRAST * rng.uniform(0.95, 1.05), texture=0.1, edge_sigma=0.7
    )
    labels[organ] = 1

    present = rng.random(2) < _STRUCTURE_PRESENCE
    if not present.any():
        present[rng.integers(2)] = True

    if present[0]:  # organ_lesion: bright, compact, confined to the organ
        voxels = max(_MIN_STRUCTURE_VOXELS, round(small_fraction * n_voxels * rng.uniform(0.5, 1.5)))
        ellipsoid = _random_ellipsoid(rng, len(shape), voxels, aspect_range=(1.0, 2.0))
        offset = organ_shape.rotation @ (organ_shape.radii * _unit_vector(rng, len(shape)))
        center = organ_center + rng.uniform(0.0, 0.7) * offset
        mask = _blob(rng, shape, center, voxels, ellipsoid, warp=rng.uniform(0.1, 0.5), allowed=organ)
        content += _rare_intensity(rng, mask, acquisition, sign=1.0, texture=(0.0, 0.6))
        labels[mask] = 2

    if present[1]:  # duct: dark, elongated, outside the organ
        voxels = max(_MIN_STRUCTURE_VOXELS, round(small_fraction * n_voxels * rng.uniform(0.5, 1.5)))
        ellipsoid = _random_ellipsoid(rng, len(shape), voxels, aspect_range=(2.5, 4.5))
        center = _point_outside(rng, shape, organ_center, organ_shape)
        mask = _blob(rng, shape, center, voxels, ellipsoid, warp=rng.uniform(0.1, 0.4), allowed=labels == 0)
        content += _rare_intensity(rng, mask, acquisition, sign=-1.0, texture=(0.1, 0.5))
        labels[mask] = 3

    return _acquire(rng, content, acquisition), labels


def _build(
    name: str,
    class_names: tuple[str, ...],
    rare_classes: tuple[int, ...],
    acquisition: _Acquisition,
    make_case: Callable[[np.random.Generator], tuple[FloatArray, NDArray[np.int64]]],
) -> SegmentationDataset:
    split_seeds = np.random.SeedSequence(acquisition.seed).spawn(3)
    train, val, test = (
        _split(seed_sequence, size, make_case)
        for seed_sequence, size in zip(split_seeds, acquisition.split_sizes)
    )
    return SegmentationDataset(
        name=name, class_names=class_names, train=train, val=val, test=test, rare_classes=rare_classes
    )


def _split(
    seed_sequence: np.random.SeedSequence,
    size: int,
    make_case: Callable[[np.random.Generator], tuple[FloatArray, NDArray[np.int64]]],
) -> Split:
    cases = [make_case(np.random.default_rng(child)) for child in seed_sequence.spawn(size)]
    images = np.stack([image for image, _ in cases])[:, None].astype(np.float32)  # (N, 1, *spatial)
    labels = np.stack([labels for _, labels in cases])
    return Split(images=images, labels=labels)


# --------------------------------------------------------------------------------------------
# Appearance


def _tissue(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    """Stationary tissue-like texture: fine grain plus coarse lobes (raw units, see the top)."""
    fine = _smooth_noise(rng, shape, sigma=1.2)
    coarse = _smooth_noise(rng, shape, sigma=5.0)
    return _FINE_TEXTURE * fine + _COARSE_TEXTURE * coarse


def _acquire(rng: np.random.Generator, content: FloatArray, acquisition: _Acquisition) -> FloatArray:
    """Bias field, white noise and z-scoring: what a scanner and nnU-Net's normalisation add."""
    gain = np.exp(acquisition.bias_field * _bias_field(rng, content.shape))
    image = (_TISSUE_LEVEL + content) * gain
    image += acquisition.noise * rng.standard_normal(content.shape)
    normalised: FloatArray = (image - image.mean()) / image.std()
    return normalised


def _bias_field(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    """A random polynomial of degree 2 over the image, scaled to a largest magnitude of 1."""
    coordinates = np.meshgrid(*(np.linspace(-1.0, 1.0, size) for size in shape), indexing="ij")
    field = np.zeros(shape)
    for i, coordinate in enumerate(coordinates):
        field += rng.standard_normal() * coordinate
        for other in coordinates[i:]:
            field += 0.5 * rng.standard_normal() * coordinate * other
    return field / max(float(np.abs(field).max()), 1e-12)


def _rare_intensity(
    rng: np.random.Generator,
    mask: BoolArray,
    acquisition: _Acquisition,
    sign: float,
    texture: tuple[float, float],
) -> FloatArray:
    """Intensity of one rare structure: its own contrast, internal texture and edge blur."""
    contrast = sign * rng.uniform(*acquisition.rare_contrast)
    return _structure_intensity(
        rng, mask, contrast, texture=rng.uniform(*texture), edge_sigma=rng.uniform(0.2, 0.6)
    )


def _structure_intensity(
    rng: np.random.Generator, mask: BoolArray, contrast: float, texture: float, edge_sigma: float
) -> FloatArray:
    """Additive intensity of a structure: ``contrast`` modulated by texture, edges blurred.

    Computed in the structure's bounding box (plus a margin for the blur) to stay cheap in 3-D.
    """
    intensity = np.zeros(mask.shape)
    if not mask.any():
        return intensity
    box = _bounding_box(mask, margin=3)
    local = mask[box]
    grain = _smooth_noise(rng, local.shape, sigma=rng.uniform(0.7, 1.5))
    modulation = np.clip(1.0 + texture * grain, 0.1, None)  # never inverts the contrast
    intensity[box] = _gaussian_smooth(contrast * modulation * local, edge_sigma)
    return intensity


# --------------------------------------------------------------------------------------------
# Shapes


def _random_ellipsoid(
    rng: np.random.Generator, spatial_dims: int, voxels: float, aspect_range: tuple[float, float]
) -> _Ellipsoid:
    """A randomly oriented ellipsoid of the given volume, longest/shortest radius in ``aspect_range``."""
    aspect = rng.uniform(*aspect_range)
    exponents = np.concatenate([[1.0], rng.uniform(0.0, 1.0, spatial_dims - 2), [0.0]])
    exponents -= exponents.mean()  # the radii's product stays that of a ball of the same volume
    ball_radius = (voxels / _unit_ball_volume(spatial_dims)) ** (1.0 / spatial_dims)
    radii = ball_radius * aspect**exponents
    return _Ellipsoid(rotation=_random_rotation(rng, spatial_dims), radii=radii)


def _blob(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    center: FloatArray,
    voxels: int,
    ellipsoid: _Ellipsoid,
    warp: float,
    allowed: BoolArray | None = None,
) -> BoolArray:
    """An irregular blob of exactly ``voxels`` voxels (fewer only if ``allowed`` has fewer).

    The voxels with the highest score ``-(elliptic distance to center) + warp * smooth noise``
    are taken: an ellipsoid whose outline is bent by noise on the scale of its radius.
    """
    half_width = math.ceil(2.0 * float(ellipsoid.radii.max()) + 3.0)
    center_voxel = np.round(center).astype(int)
    box = tuple(
        slice(max(0, c - half_width), min(size, c + half_width + 1)) for c, size in zip(center_voxel, shape)
    )
    local_shape = tuple(s.stop - s.start for s in box)
    grid = np.meshgrid(*(np.arange(s.start, s.stop, dtype=np.float64) for s in box), indexing="ij")
    offsets = np.stack([g - c for g, c in zip(grid, center)], axis=-1)  # (*local, dims)
    elliptic = np.linalg.norm((offsets @ ellipsoid.rotation) / ellipsoid.radii, axis=-1)
    noise_scale = max(1.0, 0.6 * float(ellipsoid.radii.mean()))
    score = -elliptic + warp * _smooth_noise(rng, local_shape, sigma=noise_scale)
    if allowed is not None:
        score[~allowed[box]] = -np.inf
    candidates = int(np.isfinite(score).sum())
    count = min(voxels, candidates)
    mask = np.zeros(shape, dtype=bool)
    if count == 0:
        return mask
    flat = score.ravel()
    chosen = np.argpartition(-flat, count - 1)[:count]
    local = np.zeros(flat.shape, dtype=bool)
    local[chosen] = True
    mask[box] = local.reshape(local_shape)
    return mask


def _point_outside(
    rng: np.random.Generator, shape: tuple[int, ...], organ_center: FloatArray, organ: _Ellipsoid
) -> FloatArray:
    """A random point away from the image border and clear of the organ (best of 100 tries)."""
    margin = min(4, min(shape) // 4)
    best, best_distance = organ_center, -np.inf
    for _ in range(100):
        point = np.array([rng.uniform(margin, size - 1 - margin) for size in shape])
        distance = float(np.linalg.norm(((point - organ_center) @ organ.rotation) / organ.radii))
        if distance > 1.4:
            return point
        if distance > best_distance:
            best, best_distance = point, distance
    return best


def _random_rotation(rng: np.random.Generator, spatial_dims: int) -> FloatArray:
    """A uniformly random rotation matrix (QR of a Gaussian matrix with the signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((spatial_dims, spatial_dims)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _unit_vector(rng: np.random.Generator, spatial_dims: int) -> FloatArray:
    vector = rng.standard_normal(spatial_dims)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _unit_ball_volume(spatial_dims: int) -> float:
    volume: float = math.pi ** (spatial_dims / 2) / math.gamma(spatial_dims / 2 + 1)
    return volume


def _bounding_box(mask: BoolArray, margin: int) -> tuple[slice, ...]:
    box = []
    for axis, size in enumerate(mask.shape):
        other_axes = tuple(a for a in range(mask.ndim) if a != axis)
        indices = np.flatnonzero(mask.any(axis=other_axes))
        box.append(slice(max(0, int(indices[0]) - margin), min(size, int(indices[-1]) + margin + 1)))
    return tuple(box)


# --------------------------------------------------------------------------------------------
# Smoothing (FFT, periodic: the fields are textures, their wrap-around is invisible)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> FloatArray:
    """White noise smoothed with a Gaussian of ``sigma`` voxels, then set to zero mean, unit std."""
    field = _gaussian_smooth(rng.standard_normal(shape), sigma)
    field -= field.mean()
    return field / max(float(field.std()), 1e-12)


def _gaussian_smooth(field: FloatArray, sigma: float) -> FloatArray:
    spectrum = np.fft.rfftn(field) * _gaussian_transfer(field.shape, round(sigma, 3))
    return np.fft.irfftn(spectrum, s=field.shape, axes=tuple(range(field.ndim)))


@lru_cache(maxsize=256)
def _gaussian_transfer(shape: tuple[int, ...], sigma: float) -> FloatArray:
    frequencies = [np.fft.fftfreq(size) for size in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    squared = sum(f**2 for f in np.meshgrid(*frequencies, indexing="ij"))
    transfer: FloatArray = np.exp(-2.0 * math.pi**2 * sigma**2 * squared)
    return transfer


# --------------------------------------------------------------------------------------------
# Parameters


def _acquisition(
    seed: Any,
    n_train: Any,
    n_val: Any,
    n_test: Any,
    image_size: Any,
    spatial_dims: Any,
    noise: Any,
    bias_field: Any,
    rare_contrast: Any,
) -> _Acquisition:
    """Check the parameters every synthetic dataset shares."""
    dims = check_int("spatial_dims", spatial_dims, minimum=2, maximum=3)
    if image_size is None:
        image_size = 64 if dims == 2 else 32
    size = check_int("image_size", image_size, minimum=16, maximum=512 if dims == 2 else 128)
    return _Acquisition(
        seed=check_int("seed", seed, minimum=0),
        split_sizes=(
            check_int("n_train", n_train, minimum=1),
            check_int("n_val", n_val, minimum=1),
            check_int("n_test", n_test, minimum=1),
        ),
        shape=(size,) * dims,
        noise=check_number("noise", noise, low=0.0, high=10.0),
        bias_field=check_number("bias_field", bias_field, low=0.0, high=2.0),
        rare_contrast=check_range("rare_contrast", rare_contrast, low=0.0, high=20.0),
    )

"""Asymmetric data augmentation (Li, Kamnitsas & Glocker, TMI 2021, section 3.5 of method.md).

Samples that contain a rare class always go through the augmentation pipeline; the others do only
with probability ``p_bg``. ``p_bg = 1`` is ordinary (symmetric) augmentation, ``p_bg = 0`` never
touches a sample without rare voxels. That rule is part of the method
(:func:`asymtune.method.samples_to_augment`); this module holds the pipeline. Inside the pipeline
every transform fires with its own probability, as in the authors' nnU-Net-based pipeline:
rotation (+-15 degrees, p 0.2), scaling (0.85-1.25, p 0.2), elastic deformation (p 0.2),
gamma (0.7-1.5, p 0.3), Gaussian noise, mirroring.

Everything runs batched in torch: rotation, scaling and the elastic displacement are folded into
one sampling grid (``F.affine_grid`` plus a smoothed random displacement) that ``F.grid_sample``
applies to the images (bilinear) and the labels (nearest), so image and label move together.

The decision is per sample, so ``p_bg`` only matters when some samples lack rare voxels: feed it
patches. Whole images of the built-in synthetic datasets nearly all hold a rare structure, so on
them every ``p_bg`` behaves like ``p_bg = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from asymtune.data.registry import check_int, check_number, check_range
from asymtune.method.augmentation import samples_to_augment


class AsymmetricAugmenter:
    """Augment samples with a rare class always, the others with probability ``p_bg``.

    Args:
        rare: one flag per class, True for the classes treated as rare (``r`` of method.md).
        p_bg: probability that a sample without rare voxels goes through the pipeline.
        spatial_dims: 2 for ``B C H W`` batches, 3 for ``B C D H W``.
        p_rotate: probability of a rotation; in 3-D one angle per axis.
        max_rotate_deg: angles are uniform in ``[-max_rotate_deg, max_rotate_deg]``.
        p_scale: probability of an isotropic scaling.
        scale_range: structures appear ``s`` times larger, ``s`` uniform in this range.
        p_elastic: probability of an elastic deformation.
        elastic_sigma: smoothness of the displacement field (Gaussian std, voxels).
        elastic_alpha: size of the displacement (its std per axis, voxels).
        p_gamma: probability of a gamma transform (intensities rescaled to ``[0, 1]`` per sample
            and channel, raised to ``gamma``, rescaled back).
        gamma_range: ``gamma`` is uniform in this range.
        p_noise: probability of additive Gaussian noise.
        noise_std: the noise's std is uniform in ``[0, noise_std]`` (intensity units).
        p_flip: probability of mirroring, per spatial axis.

    Raises:
        ValueError: for an option outside its valid range (the message names value and range).

    Example:
        >>> import torch
        >>> augment = AsymmetricAugmenter(rare=[False, True], p_bg=0.0)
        >>> images, labels = torch.randn(2, 1, 32, 32), torch.zeros(2, 32, 32, dtype=torch.long)
        >>> labels[0, 10:13, 10:13] = 1
        >>> _, _, augmented = augment(images, labels, torch.Generator().manual_seed(0))
        >>> augmented.tolist()
        [True, False]
    """

    def __init__(
        self,
        rare: Sequence[bool],
        p_bg: float = 1.0,
        spatial_dims: int = 2,
        p_rotate: float = 0.2,
        max_rotate_deg: float = 15.0,
        p_scale: float = 0.2,
        scale_range: Sequence[float] = (0.85, 1.25),
        p_elastic: float = 0.2,
        elastic_sigma: float = 4.0,
        elastic_alpha: float = 1.0,
        p_gamma: float = 0.3,
        gamma_range: Sequence[float] = (0.7, 1.5),
        p_noise: float = 0.15,
        noise_std: float = 0.1,
        p_flip: float = 0.5,
    ) -> None:
        self.rare = _check_rare(rare)
        self.p_bg = check_number("p_bg", p_bg, low=0.0, high=1.0)
        self.spatial_dims = check_int("spatial_dims", spatial_dims, minimum=2, maximum=3)
        self.p_rotate = check_number("p_rotate", p_rotate, low=0.0, high=1.0)
        self.max_rotate_deg = check_number("max_rotate_deg", max_rotate_deg, low=0.0, high=180.0)
        self.p_scale = check_number("p_scale", p_scale, low=0.0, high=1.0)
        self.scale_range = check_range("scale_range", scale_range, low=0.0, high=10.0)
        self.p_elastic = check_number("p_elastic", p_elastic, low=0.0, high=1.0)
        self.elastic_sigma = check_number("elastic_sigma", elastic_sigma, low=0.0, high=100.0, low_open=True)
        self.elastic_alpha = check_number("elastic_alpha", elastic_alpha, low=0.0, high=100.0)
        self.p_gamma = check_number("p_gamma", p_gamma, low=0.0, high=1.0)
        self.gamma_range = check_range("gamma_range", gamma_range, low=0.0, high=10.0)
        self.p_noise = check_number("p_noise", p_noise, low=0.0, high=1.0)
        self.noise_std = check_number("noise_std", noise_std, low=0.0, high=100.0)
        self.p_flip = check_number("p_flip", p_flip, low=0.0, high=1.0)

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({options})"

    def __call__(
        self, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Augment a batch.

        Args:
            images: ``B C [D] H W`` floating point.
            labels: ``B [D] H W`` int64 class indices (negative values, e.g. an ignore index,
                count as not rare and are carried along).
            generator: the only source of randomness; the same generator state gives the same
                output. It may live on the CPU while the tensors are on a GPU.

        Returns:
            ``(images, labels, augmented)``: new tensors of the input shapes and dtypes, and a
            ``(B,)`` bool tensor marking the samples that went through the pipeline (each
            transform then fired with its own probability, so such a sample can come out
            unchanged). Unmarked samples are returned bit-identical.
        """
        self._check_batch(images, labels)
        augmented = samples_to_augment(labels, self.rare, self.p_bg, generator)  # (B,)

        out_images, out_labels = images.clone(), labels.clone()
        rows = augmented.nonzero().squeeze(1)
        if rows.numel() > 0:
            out_images[rows], out_labels[rows] = self._augment(images[rows], labels[rows], generator)
        return out_images, out_labels, augmented

    def _augment(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Run the pipeline on every sample given (copies; modified in place)."""
        n, device = images.shape[0], images.device
        dims = self.spatial_dims

        # Decisions and scalar parameters are drawn for every sample in a fixed order (cheap, and
        # easy to follow); the noise fields only for the samples whose transform fires.
        def coin(p: float) -> Tensor:
            return self._uniform(generator, n, device=device) < p

        rotate, scale, elastic = coin(self.p_rotate), coin(self.p_scale), coin(self.p_elastic)
        gamma_on, noise_on = coin(self.p_gamma), coin(self.p_noise)
        flips = self._uniform(generator, n, dims, device=device) < self.p_flip
        n_angles = 1 if dims == 2 else 3
        max_angle = math.radians(self.max_rotate_deg)
        angles = (2.0 * self._uniform(generator, n, n_angles, device=device) - 1.0) * max_angle
        scales = _between(self._uniform(generator, n, device=device), self.scale_range)
        gammas = _between(self._uniform(generator, n, device=device), self.gamma_range)
        noise_levels = self._uniform(generator, n, device=device) * self.noise_std

        spatial = (rotate | scale | elastic).nonzero().squeeze(1)
        if spatial.numel() > 0:
            angles = torch.where(rotate[:, None], angles, torch.zeros_like(angles))
            scales = torch.where(scale, scales, torch.ones_like(scales))
            grid = self._sampling_grid(
                angles[spatial], scales[spatial], elastic[spatial], images.shape[2:], generator
            )
            images[spatial] = F.grid_sample(
                images[spatial].float(), grid, mode="bilinear", padding_mode="border", align_corners=False
            ).to(images.dtype)
            labels[spatial] = (
                F.grid_sample(
                    labels[spatial].unsqueeze(1).float(),
                    grid,
                    mode="nearest",
                    padding_mode="border",
                    align_corners=False,
                )
                .squeeze(1)
                .round()
                .long()
            )

        for axis in range(dims):
            rows = flips[:, axis].nonzero().squeeze(1)
            if rows.numel() > 0:
                images[rows] = images[rows].flip(2 + axis)
                labels[rows] = labels[rows].flip(1 + axis)

        rows = gamma_on.nonzero().squeeze(1)
        if rows.numel() > 0:
            images[rows] = _gamma(images[rows], gammas[rows])

        rows = noise_on.nonzero().squeeze(1)
        if rows.numel() > 0:
            noise = self._normal(generator, (rows.numel(), *images.shape[1:]), device=device)
            images[rows] = images[rows] + noise.to(images.dtype) * _per_sample(noise_levels[rows], images.ndim)

        return images, labels

    def _sampling_grid(
        self,
        angles: Tensor,
        scales: Tensor,
        elastic: Tensor,
        spatial_shape: torch.Size,
        generator: torch.Generator,
    ) -> Tensor:
        """Where each output voxel samples the input: ``B *spatial dims`` in grid_sample's units.

        Built in voxel units and converted to the normalised ``[-1, 1]`` coordinates of
        ``affine_grid`` per axis, so rotations stay rotations on non-square images. Coordinates
        are ordered ``(x, y[, z])`` = ``(W, H[, D])``, as ``affine_grid`` expects.
        """
        n, dims, device = angles.shape[0], self.spatial_dims, angles.device
        linear = _rotation(angles) / scales[:, None, None]  # (n, dims, dims), output -> input voxels
        half_size = torch.tensor(spatial_shape[::-1], dtype=torch.float32, device=device) / 2.0
        theta = torch.zeros(n, dims, dims + 1, device=device)
        theta[:, :, :dims] = linear * half_size[None, None, :] / half_size[None, :, None]
        grid = F.affine_grid(theta, [n, 1, *spatial_shape], align_corners=False)  # (n, *spatial, dims)

        rows = elastic.nonzero().squeeze(1)
        if rows.numel() > 0 and self.elastic_alpha > 0:
            noise = self._normal(generator, (rows.numel(), dims, *spatial_shape), device=device)
            displacement = _smooth_to_unit_std(noise, self.elastic_sigma) * self.elastic_alpha  # voxels
            displacement = displacement.movedim(1, -1) / half_size  # (k, *spatial, dims), normalised
            grid[rows] = grid[rows] + displacement
        return grid

    def _check_batch(self, images: Tensor, labels: Tensor) -> None:
        letters = "B C H W" if self.spatial_dims == 2 else "B C D H W"
        if images.ndim != 2 + self.spatial_dims or not images.is_floating_point():
            raise ValueError(
                f"images have shape {tuple(images.shape)} and dtype {images.dtype}: expected a "
                f"floating point ({letters}) tensor for spatial_dims={self.spatial_dims}"
            )
        expected = (images.shape[0], *images.shape[2:])
        if tuple(labels.shape) != expected or labels.dtype != torch.int64:
            raise ValueError(
                f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}: expected int64 "
                f"labels of shape {expected} to match images {tuple(images.shape)}"
            )
        # Labels beyond the flags of rare are refused by samples_to_augment.

    @staticmethod
    def _uniform(generator: torch.Generator, *size: int, device: torch.device) -> Tensor:
        return torch.rand(size, generator=generator, device=generator.device).to(device)

    @staticmethod
    def _normal(generator: torch.Generator, size: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.randn(size, generator=generator, device=generator.device).to(device)


def _rotation(angles: Tensor) -> Tensor:
    """Rotation matrices ``(n, d, d)`` from one angle (2-D) or three angles (3-D) per sample."""
    cos, sin = angles.cos(), angles.sin()
    one, zero = torch.ones_like(cos[:, 0]), torch.zeros_like(cos[:, 0])

    def plane(i: int, a: int, b: int, size: int) -> Tensor:
        """Rotation by angle ``i`` in the plane of axes ``a`` and ``b``."""
        rows = [[one if r == c else zero for c in range(size)] for r in range(size)]
        rows[a][a], rows[a][b] = cos[:, i], -sin[:, i]
        rows[b][a], rows[b][b] = sin[:, i], cos[:, i]
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    if angles.shape[1] == 1:
        return plane(0, 0, 1, 2)
    return plane(0, 1, 2, 3) @ plane(1, 0, 2, 3) @ plane(2, 0, 1, 3)


def _smooth_to_unit_std(noise: Tensor, sigma: float) -> Tensor:
    """Smooth white noise ``(n, c, *spatial)`` with a Gaussian of ``sigma`` voxels, unit std kept.

    Done in the Fourier domain (periodic, fine for a random field, and much cheaper than a
    convolution in 3-D). Smoothing leaves a std of ``sqrt(mean |H|^2)`` (Parseval); dividing by it
    makes ``elastic_alpha`` the displacement's std in voxels.
    """
    spatial = noise.shape[2:]
    axes = tuple(range(2, noise.ndim))
    transfer = torch.ones((), device=noise.device)
    gain = 1.0
    for axis, size in enumerate(spatial):
        last = axis == len(spatial) - 1
        frequencies = (torch.fft.rfftfreq if last else torch.fft.fftfreq)(size, device=noise.device)
        transfer = transfer.unsqueeze(-1) * torch.exp(-2.0 * math.pi**2 * sigma**2 * frequencies**2)
        full = torch.exp(-2.0 * math.pi**2 * sigma**2 * torch.fft.fftfreq(size) ** 2)
        gain *= float(full.square().mean().sqrt())
    smoothed: torch.Tensor = torch.fft.irfftn(torch.fft.rfftn(noise.float(), dim=axes) * transfer, s=spatial, dim=axes)
    return smoothed / gain


def _gamma(images: Tensor, gammas: Tensor) -> Tensor:
    """Gamma per sample and channel on intensities rescaled to ``[0, 1]``, range kept."""
    flat = images.flatten(2)
    low = flat.amin(dim=2).view(*images.shape[:2], *([1] * (images.ndim - 2)))
    high = flat.amax(dim=2).view_as(low)
    span = (high - low).clamp(min=1e-8)
    unit = ((images - low) / span).clamp(0.0, 1.0)
    return unit.pow(_per_sample(gammas, images.ndim).to(images.dtype)) * span + low


def _per_sample(values: Tensor, ndim: int) -> Tensor:
    """``(n,)`` -> ``(n, 1, ..., 1)`` to broadcast over a ``ndim`` tensor."""
    return values.view(-1, *([1] * (ndim - 1)))


def _between(unit: Tensor, bounds: tuple[float, float]) -> Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * unit


def _check_rare(rare: Any) -> tuple[bool, ...]:
    expected = "a non-empty sequence of booleans, one per class"
    try:
        flags = tuple(rare)
    except TypeError:
        raise ValueError(f"rare={rare!r}: expected {expected}") from None
    if not flags or any(flag not in (True, False) for flag in flags):
        raise ValueError(f"rare={rare!r}: expected {expected}")
    return tuple(bool(flag) for flag in flags)

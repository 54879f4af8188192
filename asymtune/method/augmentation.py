"""The asymmetric augmentation rule of method.md 3.5: which samples of a batch get augmented.

A sample (patch) that contains a rare class always goes through the augmentation pipeline; any
other sample does with probability ``p_bg``. ``p_bg = 1`` is ordinary (symmetric) augmentation;
every class rare (``r`` all ones) augments every sample too. The pipeline itself (rotation,
scaling, elastic deformation, gamma, noise, mirroring) is data handling and lives in
:mod:`asymtune.data.augment`; only the decision is part of the method.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def samples_to_augment(
    labels: Tensor, rare: Sequence[bool], p_bg: float, generator: torch.Generator
) -> Tensor:
    """Which samples of a batch go through the augmentation pipeline (method.md 3.5).

    ``augment_b = (sample b holds a voxel of a rare class) or (u_b < p_bg)`` with
    ``u_b ~ U[0, 1)``. One uniform is drawn per sample, for every sample (rare or not), from
    ``generator`` on its own device, so that the generator advances by the same amount whatever
    the labels are.

    Args:
        labels: ``B H W [D]`` integer class indices; negative values (an ignore index) count as
            not rare.
        rare: ``C`` flags, True for the classes treated as rare (``r`` of method.md).
        p_bg: probability in ``[0, 1]`` that a sample without rare voxels is augmented.
        generator: the source of the uniforms; it may live on the CPU while ``labels`` are on
            a GPU.

    Returns:
        ``B`` bool tensor on the labels' device, True for the samples to augment.

    Raises:
        ValueError: if ``rare`` is empty, ``p_bg`` is outside ``[0, 1]``, ``labels`` is not an
            integer tensor with a batch dimension, or a label has no flag in ``rare``.

    Example:
        >>> labels = torch.zeros(3, 4, 4, dtype=torch.long)
        >>> labels[0, 1, 1] = 1  # only sample 0 holds the rare class 1
        >>> samples_to_augment(labels, [False, True], p_bg=0.0, generator=torch.Generator()).tolist()
        [True, False, False]
        >>> samples_to_augment(labels, [False, True], p_bg=1.0, generator=torch.Generator()).tolist()
        [True, True, True]
    """
    flags = tuple(bool(flag) for flag in rare)
    if not flags:
        raise ValueError("rare = [] is invalid; expected one flag per class")
    if not 0.0 <= p_bg <= 1.0:
        raise ValueError(f"p_bg = {p_bg!r} is invalid; expected a probability in [0, 1]")
    if labels.ndim < 2 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; expected integer "
            "labels of shape (B, *spatial)"
        )
    if labels.numel() > 0 and int(labels.max()) >= len(flags):
        raise ValueError(
            f"labels contain class {int(labels.max())}: expected classes below {len(flags)}, "
            f"the length of rare={list(flags)}"
        )
    rare_lookup = torch.tensor(flags, dtype=torch.bool, device=labels.device)
    is_rare = rare_lookup[labels.clamp(min=0)] & (labels >= 0)
    has_rare = is_rare.flatten(1).any(dim=1)  # (B,)
    uniform = torch.rand(labels.shape[0], generator=generator, device=generator.device).to(labels.device)
    return has_rare | (uniform < p_bg)

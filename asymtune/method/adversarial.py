"""Asymmetric adversarial training: the perturbation direction chosen by rare voxels only.

Method.md 3.3. A labelled virtual-adversarial probe: start from a tiny random offset ``d0`` of
radius ``xi``, take the gradient of CE + soft Dice on the rare voxels with respect to ``d0``,
and scale it to L2 norm ``eps`` per sample. The caller then trains on ``images + delta`` with
the full loss and unchanged labels. The symmetric control is ``rare`` all True.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from asymtune.method._checks import rare_mask
from asymtune.method._functional import DEFAULT_SMOOTH, _focal_ce, _focal_dice, _terms

_RUNNING_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


@contextmanager
def _frozen_running_statistics(model: nn.Module) -> Iterator[None]:
    """Restore every normalisation running statistic of ``model`` on exit.

    The probe runs the model in its current mode (batch statistics in training, so the direction
    is taken on the same function the training step sees); only the running averages, which
    would otherwise be updated twice per step, are put back.
    """
    saved = [
        (buffer, buffer.detach().clone())
        for module in model.modules()
        for name, buffer in module.named_buffers(recurse=False)
        if name in _RUNNING_STATISTICS
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _per_sample_unit(values: Tensor) -> Tensor:
    """``values`` ``B *`` scaled to L2 norm 1 per sample; all-zero samples stay zero.

    Divides by the per-sample max-abs first (the authors' guard against overflow in the norm).
    """
    flat = values.flatten(1).float()  # (B, K)
    tiny = torch.finfo(torch.float32).tiny
    flat = flat / flat.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
    flat = flat / flat.norm(dim=1, keepdim=True).clamp_min(tiny)
    unit: Tensor = flat.view(values.shape)
    return unit


def adversarial_perturbation(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    rare: Sequence[bool] | Tensor,
    eps: float,
    xi: float = 1e-5,
    ignore_index: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The asymmetric adversarial perturbation ``delta`` of method.md 3.3.

    1. ``d0 = xi d / ||d||_2`` per sample, ``d ~ N(0, I)``.
    2. CE + soft Dice of ``model(images + d0)`` against the labels with every voxel whose true
       class is not rare set to ``ignore_index`` (masked out of both terms).
    3. ``g = dL/d d0``, scaled per sample by its max-abs, then ``delta = eps g / ||g||_2``.

    So ``||delta||_2 = eps`` for every sample (over all channels and voxels). A sample without
    any rare voxel has no say in the loss and gets ``delta = 0``, as does a sample whose
    gradient is exactly zero. The call leaves the model as it found it: normalisation running
    statistics are restored after the probe, the mode is not changed, and parameter ``.grad``
    is untouched (the gradient is taken with respect to ``d0`` only).

    Args:
        model: maps ``B M H W [D]`` images to ``B C H W [D]`` logits.
        images: ``B M H W [D]`` float images.
        labels: ``B H W [D]`` int64 labels, ``ignore_index`` for ignored voxels.
        rare: ``C`` booleans, True for classes that choose the direction; all True is the
            symmetric control. Its length must be the ``C`` of the model's logits.
        eps: L2 norm ``>= 0`` of the perturbation per sample (the authors' ``eps``, default 10
            on intensity-normalised patches).
        xi: radius ``> 0`` of the initial random offset (the authors' ``xi``).
        ignore_index: label value of ignored voxels.
        generator: optional ``torch.Generator`` (on the images' device) for ``d``.

    Returns:
        ``B M H W [D]`` detached perturbation in the images' dtype.

    Raises:
        ValueError: if shapes do not match, ``eps`` / ``xi`` are out of range or ``rare`` does
            not have one flag per class of the logits.

    Example:
        >>> model = torch.nn.Conv2d(1, 2, 3, padding=1)
        >>> images, labels = torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8))
        >>> delta = adversarial_perturbation(model, images, labels, [False, True], eps=1.0)
        >>> delta.shape
        torch.Size([2, 1, 8, 8])
    """
    if not (eps >= 0 and eps < float("inf")):
        raise ValueError(f"eps = {eps!r} is invalid; expected a finite value >= 0")
    if not (xi > 0 and xi < float("inf")):
        raise ValueError(f"xi = {xi!r} is invalid; expected a finite value > 0")
    expected = (images.shape[0], *images.shape[2:])
    if images.ndim < 3 or tuple(labels.shape) != expected:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match images shape "
            f"{tuple(images.shape)}; expected images (B, M, *spatial) and labels (B, *spatial)"
        )
    rare_classes = rare_mask(rare, labels.device)
    noise = torch.randn(
        images.shape, generator=generator, device=images.device, dtype=torch.float32
    )
    d0 = (xi * _per_sample_unit(noise)).to(images.dtype).requires_grad_(True)
    with torch.enable_grad(), _frozen_running_statistics(model):
        logits = model(images.detach() + d0)
        if logits.ndim != images.ndim or logits.shape[0] != images.shape[0]:
            raise ValueError(
                f"model returned logits of shape {tuple(logits.shape)} for images of shape "
                f"{tuple(images.shape)}; expected (B, C, *spatial)"
            )
        if rare_classes.numel() != logits.shape[1]:
            raise ValueError(
                f"rare has {rare_classes.numel()} flags {rare_classes.tolist()} but the model's "
                f"logits have C = {logits.shape[1]} classes; expected one flag per class"
            )
        valid = labels != ignore_index
        is_rare = rare_classes[labels.masked_fill(~valid, 0)] & valid  # (B, *spatial)
        probe_target = labels.masked_fill(~is_rare, ignore_index)
        terms = _terms(logits, probe_target, None, ignore_index)
        q_true = terms.log_q_true.exp()
        loss = _focal_ce(terms, None) + _focal_dice(terms, q_true, None, DEFAULT_SMOOTH)
        (gradient,) = torch.autograd.grad(loss, d0)

    has_rare = is_rare.flatten(1).any(dim=1).view(-1, *([1] * (images.ndim - 1)))  # (B, 1, ...)
    direction = torch.where(has_rare, _per_sample_unit(gradient), 0.0)
    return (eps * direction).to(images.dtype).detach()

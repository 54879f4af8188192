"""Asymmetric mixup with hard labels, and ordinary (symmetric) mixup with soft labels.

Method.md 3.4: ``x~ = lam x_a + (1 - lam) x_b`` with the partner ``x_b`` the batch flipped
(sample ``B-1-i``, as the authors do) and ``lam ~ Beta(alpha, alpha) (1 - mu)``. Labels stay
hard; a voxel keeps a label only when the table of :func:`mixup_labels` allows it. The
symmetric control mixes one-hot labels instead (:func:`soft_mixup_batch`).

Randomness: ``lam`` comes from a ``numpy.random.Generator`` when one is given (reproducible),
otherwise from ``torch.distributions.Beta`` with torch's global generator. A
``torch.Generator`` cannot seed a Beta draw (torch samples gammas without one), so it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from asymtune.method._checks import rare_mask


@dataclass(frozen=True)
class MixupBatch:
    """A mixed batch with hard labels.

    Attributes:
        images: ``B M H W [D]`` mixed images ``lam x_a + (1 - lam) x_b``.
        labels: ``B H W [D]`` int64 hard labels, ``ignore_index`` where the rule drops a voxel.
        lam: ``B`` float32 mixing weight of ``x_a`` per sample.
    """

    images: Tensor
    labels: Tensor
    lam: Tensor


@dataclass(frozen=True)
class SoftMixupBatch:
    """A mixed batch with soft labels (the symmetric control).

    Attributes:
        images: ``B M H W [D]`` mixed images.
        soft_labels: ``B C H W [D]`` float32 ``lam e_a + (1 - lam) e_b``; all zeros where either
            input label is ignored.
        lam: ``B`` float32 mixing weight of ``x_a`` per sample.
    """

    images: Tensor
    soft_labels: Tensor
    lam: Tensor


def _lam_flags(lam: float | Tensor, mu: float, like: Tensor) -> tuple[Tensor | bool, Tensor | bool]:
    """``lam > mu`` and ``1 - lam > mu`` as booleans, broadcastable against ``like`` ``B *spatial``.

    Compared in float64 so that ``1 - lam`` is exact for every float32 ``lam``; no rounding or
    flooring decides a voxel.
    """
    if not isinstance(lam, Tensor):
        return lam > mu, 1.0 - lam > mu
    lam64 = lam.to(device=like.device, dtype=torch.float64)
    if lam64.ndim == 1:
        if lam64.numel() != like.shape[0]:
            raise ValueError(
                f"lam has shape {tuple(lam.shape)} and the labels {tuple(like.shape)}; expected "
                "a float, a 0-d tensor or one value per sample (B,)"
            )
        lam64 = lam64.view(-1, *([1] * (like.ndim - 1)))
    elif lam64.ndim != 0:
        raise ValueError(
            f"lam has shape {tuple(lam.shape)}; expected a float, a 0-d tensor or shape (B,)"
        )
    return lam64 > mu, 1.0 - lam64 > mu


def _rare_classes(
    rare: Sequence[bool] | Tensor, labels: Tensor, ignore_index: int, num_classes: int | None
) -> Tensor:
    """``rare`` as a bool ``(C,)`` mask on the labels' device, its length checked.

    With ``num_classes`` the length is compared to it (no device read). Without, the smallest
    and largest labels are read (one host synchronisation) so that a class without a flag stops
    with a ``ValueError`` rather than an ``IndexError`` (or a device-side assert on CUDA).
    """
    mask = rare_mask(rare, labels.device, num_classes)
    if num_classes is None and labels.numel() > 0:
        smallest, largest = labels.masked_fill(labels == ignore_index, 0).aminmax()
        for value in (int(smallest), int(largest)):
            if not 0 <= value < mask.numel():
                raise ValueError(
                    f"labels contain class {value} but rare has {mask.numel()} flags {mask.tolist()}; "
                    f"expected classes 0..{mask.numel() - 1} (or ignore_index {ignore_index}), one flag each"
                )
    return mask


def mixup_labels(
    label_a: Tensor,
    label_b: Tensor,
    lam: float | Tensor,
    rare: Sequence[bool] | Tensor,
    mu: float,
    ignore_index: int = -1,
    *,
    num_classes: int | None = None,
) -> Tensor:
    """Hard label map of asymmetric mixup (method.md 3.4), voxel by voxel.

    With ``a`` the label of ``x_a`` (weight ``lam``), ``b`` that of ``x_b`` and ``R`` the rare
    classes:

    ========================= ===========================================
    case                      mixed label
    ========================= ===========================================
    a = b                     a
    a in R, b not in R        a if lam > mu, else ignored
    b in R, a not in R        b if 1 - lam > mu, else ignored
    a, b in R, a != b         ignored (rare classes are never mixed)
    a != b, both not in R     ignored
    ========================= ===========================================

    An input voxel already at ``ignore_index`` stays ignored unless both inputs are ignored
    (then it is ignored anyway). The comparisons are made on booleans, in float64.

    Args:
        label_a: ``B H W [D]`` int64 labels of the first images.
        label_b: ``B H W [D]`` int64 labels of the partners.
        lam: the weight of ``x_a``: a float, or a ``(B,)`` tensor, one value per sample.
        rare: ``C`` booleans, True for rare classes.
        mu: the mixup margin in ``[0, 1)``.
        ignore_index: label value of ignored voxels.
        num_classes: ``C``; when given, ``rare`` must have ``C`` flags (checked without reading
            the labels). When None, the labels are read once to check that every class has a
            flag; a ``rare`` longer than the class count can then not be detected.

    Returns:
        ``B H W [D]`` int64 mixed labels.

    Raises:
        ValueError: if the label shapes differ, ``mu`` is out of range, ``lam`` has a bad shape,
            or ``rare`` does not have one flag per class.

    Example:
        >>> a = torch.tensor([[0, 1, 1, 0]])
        >>> b = torch.tensor([[0, 0, 1, 1]])
        >>> mixup_labels(a, b, lam=0.5, rare=[False, True], mu=0.2)
        tensor([[0, 1, 1, 1]])
    """
    if label_a.shape != label_b.shape:
        raise ValueError(
            f"label_a shape {tuple(label_a.shape)} and label_b shape {tuple(label_b.shape)} differ; "
            "expected two (B, *spatial) label maps of the same shape"
        )
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"mu = {mu!r} is invalid; expected a value in [0, 1)")
    both = torch.stack([label_a, label_b]) if num_classes is None else label_a  # read only without C
    rare_classes = _rare_classes(rare, both, ignore_index, num_classes)
    return _mixup_labels(label_a, label_b, lam, rare_classes, mu, ignore_index)


def _mixup_labels(
    label_a: Tensor, label_b: Tensor, lam: float | Tensor, rare_classes: Tensor, mu: float, ignore_index: int
) -> Tensor:
    """:func:`mixup_labels` after its checks, ``rare_classes`` a bool ``(C,)`` on the labels' device."""
    keep_a, keep_b = _lam_flags(lam, mu, label_a)
    valid_a = label_a != ignore_index
    valid_b = label_b != ignore_index
    rare_a = rare_classes[label_a.masked_fill(~valid_a, 0)] & valid_a
    rare_b = rare_classes[label_b.masked_fill(~valid_b, 0)] & valid_b
    frequent_a = valid_a & ~rare_a
    frequent_b = valid_b & ~rare_b
    take_a = (label_a == label_b) | (rare_a & frequent_b & keep_a)
    take_b = rare_b & frequent_a & keep_b
    ignored = torch.full_like(label_a, ignore_index)
    return torch.where(take_a, label_a, torch.where(take_b, label_b, ignored))


def _sample_beta(
    alpha: float, batch_size: int, generator: np.random.Generator | None
) -> Tensor:
    """``batch_size`` draws of ``Beta(alpha, alpha)`` as a float32 CPU tensor."""
    if not alpha > 0:
        raise ValueError(f"alpha = {alpha!r} is invalid; expected a value > 0")
    if generator is None:
        concentration = torch.tensor(float(alpha))
        return torch.distributions.Beta(concentration, concentration).sample((batch_size,)).float()
    if isinstance(generator, np.random.Generator):
        return torch.from_numpy(generator.beta(alpha, alpha, size=batch_size)).float()
    raise TypeError(
        f"generator is a {type(generator).__name__}; expected a numpy.random.Generator or None "
        "(a torch.Generator cannot seed a Beta draw)"
    )


def _check_images_labels(images: Tensor, labels: Tensor) -> None:
    expected = (images.shape[0], *images.shape[2:])
    if images.ndim < 3 or tuple(labels.shape) != expected:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} does not match images shape "
            f"{tuple(images.shape)}; expected images (B, M, *spatial) and labels (B, *spatial)"
        )


def _mix_images(images: Tensor, lam: Tensor) -> Tensor:
    weight = lam.to(device=images.device, dtype=images.dtype).view(-1, *([1] * (images.ndim - 1)))
    return weight * images + (1 - weight) * images.flip(0)


def mixup_batch(
    images: Tensor,
    labels: Tensor,
    alpha: float,
    mu: float,
    rare: Sequence[bool] | Tensor,
    generator: np.random.Generator | None = None,
    ignore_index: int = -1,
    *,
    num_classes: int | None = None,
) -> MixupBatch:
    """Asymmetric mixup of a batch with its flipped self (method.md 3.4).

    Sample ``i`` is mixed with sample ``B-1-i`` (an odd batch's middle sample is mixed with
    itself, i.e. left as is), ``lam_i ~ Beta(alpha, alpha) (1 - mu)``, labels by
    :func:`mixup_labels`.

    Args:
        images: ``B M H W [D]`` float images.
        labels: ``B H W [D]`` int64 labels.
        alpha: Beta concentration ``> 0`` (paper: 0.2, some configs 1).
        mu: mixup margin in ``[0, 1)`` (paper: 0.2).
        rare: ``C`` booleans, True for rare classes.
        generator: a ``numpy.random.Generator`` for reproducible ``lam``; None uses torch's
            global generator.
        ignore_index: label value of ignored voxels.
        num_classes: ``C``; when given, ``rare`` must have ``C`` flags (see :func:`mixup_labels`).

    Returns:
        The mixed images, hard labels and per-sample ``lam``.

    Raises:
        ValueError: if shapes do not match, ``alpha`` / ``mu`` are out of range or ``rare`` does
            not have one flag per class.
        TypeError: if ``generator`` is neither None nor a ``numpy.random.Generator``.

    Example:
        >>> images, labels = torch.randn(4, 1, 8, 8), torch.randint(0, 2, (4, 8, 8))
        >>> batch = mixup_batch(images, labels, 0.2, 0.2, [False, True], np.random.default_rng(0))
        >>> batch.lam.shape
        torch.Size([4])
    """
    _check_images_labels(images, labels)
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"mu = {mu!r} is invalid; expected a value in [0, 1)")
    rare_classes = _rare_classes(rare, labels, ignore_index, num_classes)  # before any random draw
    lam = (_sample_beta(alpha, images.shape[0], generator) * (1.0 - mu)).to(images.device)
    mixed_labels = _mixup_labels(labels, labels.flip(0), lam, rare_classes, mu, ignore_index)
    return MixupBatch(images=_mix_images(images, lam), labels=mixed_labels, lam=lam)


def soft_mixup_batch(
    images: Tensor,
    labels: Tensor,
    alpha: float,
    num_classes: int,
    generator: np.random.Generator | None = None,
    ignore_index: int = -1,
) -> SoftMixupBatch:
    """Ordinary mixup with soft labels, the symmetric control of method.md 3.4.

    Partner ``B-1-i``, ``lam_i ~ Beta(alpha, alpha)`` (no margin), soft labels
    ``lam e_a + (1 - lam) e_b``. A voxel where either input label is ignored gets an all-zero
    row, which :func:`~asymtune.losses.soft_ce` and :func:`~asymtune.losses.soft_dice` ignore.

    Args:
        images: ``B M H W [D]`` float images.
        labels: ``B H W [D]`` int64 labels.
        alpha: Beta concentration ``> 0``.
        num_classes: ``C >= 2``.
        generator: a ``numpy.random.Generator`` for reproducible ``lam``; None uses torch's
            global generator.
        ignore_index: label value of ignored voxels.

    Returns:
        The mixed images, ``B C H W [D]`` soft labels and per-sample ``lam``.

    Raises:
        ValueError: if shapes do not match or an option is out of range.
        TypeError: if ``generator`` is neither None nor a ``numpy.random.Generator``.
    """
    _check_images_labels(images, labels)
    if num_classes < 2:
        raise ValueError(f"num_classes = {num_classes!r} is invalid; expected an integer >= 2")
    lam = _sample_beta(alpha, images.shape[0], generator).to(images.device)
    valid = (labels != ignore_index) & (labels.flip(0) != ignore_index)  # (B, *spatial)
    safe = labels.masked_fill(labels == ignore_index, 0).long().unsqueeze(1)  # (B, 1, *spatial)
    one_hot = torch.zeros(
        (labels.shape[0], num_classes, *labels.shape[1:]), dtype=torch.float32, device=labels.device
    ).scatter_(1, safe, 1.0)  # (B, C, *spatial)
    weight = lam.view(-1, *([1] * (one_hot.ndim - 1)))
    soft = weight * one_hot + (1 - weight) * one_hot.flip(0)
    soft = soft * valid.unsqueeze(1).to(soft.dtype)
    return SoftMixupBatch(images=_mix_images(images, lam), soft_labels=soft, lam=lam)

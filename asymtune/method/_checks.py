"""Argument and shape checks shared by the loss functions and modules.

Checks here never read tensor values on the device (no ``.item()``, no ``.any()``): they look at
shapes, dtypes and Python values only, so that they cost nothing inside a training step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

ClassVector = Sequence[float] | Tensor
"""A per-class value: a length-C sequence of floats or a 1-D tensor of C values."""


def check_logits_target(logits: Tensor, target: Tensor, num_classes: int | None = None) -> None:
    """Check that ``logits`` is ``B C *spatial`` and ``target`` is ``B *spatial``.

    Raises:
        ValueError: naming both shapes when they do not match, when ``logits`` has fewer than
            two classes or no spatial dimension, when ``num_classes`` is given and ``C`` differs,
            or when ``target`` is not an integer tensor.
    """
    if logits.ndim < 3:
        raise ValueError(
            f"logits have shape {tuple(logits.shape)}; expected (B, C, *spatial) with at least "
            "one spatial dimension"
        )
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits shape "
            f"{tuple(logits.shape)}; expected target of shape (B, *spatial) = {expected}"
        )
    _check_class_count(logits, num_classes)
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise ValueError(f"target has dtype {target.dtype}; expected an integer label map (int64)")


def _check_class_count(logits: Tensor, num_classes: int | None) -> None:
    """At least two classes, and ``num_classes`` of them when the loss was built for a number."""
    if logits.shape[1] < 2:
        raise ValueError(f"logits have shape {tuple(logits.shape)}; expected C >= 2 classes")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(
            f"logits have shape {tuple(logits.shape)} with C = {logits.shape[1]} classes, "
            f"but the loss was built for {num_classes} classes"
        )


def check_logits_soft_target(
    logits: Tensor, soft_target: Tensor, num_classes: int | None = None
) -> None:
    """Check that ``soft_target`` has the ``B C *spatial`` shape of ``logits``.

    Raises:
        ValueError: naming both shapes when they differ or are not ``B C *spatial``.
    """
    if logits.ndim < 3 or tuple(soft_target.shape) != tuple(logits.shape):
        raise ValueError(
            f"soft_target shape {tuple(soft_target.shape)} does not match logits shape "
            f"{tuple(logits.shape)}; expected both (B, C, *spatial)"
        )
    _check_class_count(logits, num_classes)


def check_non_negative(name: str, values: Sequence[float]) -> None:
    """Raise ``ValueError`` naming the first entry of ``values`` that is negative or not finite."""
    for index, value in enumerate(values):
        if not (value >= 0.0 and value < float("inf")):
            raise ValueError(f"{name}[{index}] = {value!r} is invalid; expected a finite value >= 0")


def check_non_negative_scalar(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``value`` if it is negative or not finite."""
    if not (value >= 0.0 and value < float("inf")):
        raise ValueError(f"{name} = {value!r} is invalid; expected a finite value >= 0")


def check_positive_scalar(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``value`` if it is not a finite value > 0."""
    if not (value > 0.0 and value < float("inf")):
        raise ValueError(f"{name} = {value!r} is invalid; expected a finite value > 0")


def class_vector(
    values: ClassVector, num_classes: int, name: str, device: torch.device
) -> Tensor | None:
    """Turn a per-class value into a float32 ``(C,)`` tensor, or ``None`` when it is all zeros.

    ``None`` lets the callers skip work (no margin shift, no focal power). Sequences are checked
    to be non-negative; tensors are only checked for shape, since reading their values would
    synchronise with the device.

    Raises:
        ValueError: if the length is not ``num_classes`` or a sequence entry is negative.
    """
    if isinstance(values, Tensor):
        if values.ndim != 1 or values.numel() != num_classes:
            raise ValueError(
                f"{name} has shape {tuple(values.shape)}; expected ({num_classes},), "
                "one value per class of the logits"
            )
        return values.to(device=device, dtype=torch.float32)
    floats = [float(value) for value in values]
    if len(floats) != num_classes:
        raise ValueError(
            f"{name} has {len(floats)} values {floats}; expected {num_classes}, one per class "
            "of the logits"
        )
    check_non_negative(name, floats)
    if all(value == 0.0 for value in floats):
        return None
    return torch.tensor(floats, dtype=torch.float32, device=device)


def rare_mask(
    rare: Sequence[bool] | Tensor, device: torch.device, num_classes: int | None = None
) -> Tensor:
    """Turn the set of rare classes (a length-C boolean sequence or tensor) into a bool ``(C,)``.

    Args:
        rare: one flag per class, True for the rare classes.
        device: where the mask is made.
        num_classes: ``C`` when the caller knows it; ``rare`` must then have exactly ``C`` flags.

    Raises:
        ValueError: if ``rare`` is empty or not one-dimensional, or its length is not
            ``num_classes``.
    """
    mask = torch.as_tensor(rare, device=device).to(torch.bool)
    if mask.ndim != 1 or mask.numel() == 0:
        raise ValueError(
            f"rare has shape {tuple(mask.shape)}; expected a non-empty length-C boolean sequence"
        )
    if num_classes is not None and mask.numel() != num_classes:
        raise ValueError(
            f"rare has {mask.numel()} flags {mask.tolist()}; expected {num_classes}, one per class"
        )
    return mask

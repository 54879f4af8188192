"""Name -> loss-module registry (timm style): ``register_loss``, ``create_loss``, ``list_losses``.

Configs name a loss (``loss.name: asymmetric``) and pass its keyword arguments; these three
functions are the only way from a name to a module, so that tests parametrised over
:func:`list_losses` cover a new loss the day it is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

_LossFactory = TypeVar("_LossFactory", bound=Callable[..., nn.Module])

_LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str) -> Callable[[_LossFactory], _LossFactory]:
    """Class decorator registering a loss module (or a factory returning one) under ``name``.

    Raises:
        ValueError: if ``name`` is empty or already registered.

    Example:
        >>> @register_loss("my_loss")  # doctest: +SKIP
        ... class MyLoss(SegmentationLoss): ...
    """
    if not name:
        raise ValueError("a loss name must be a non-empty string, got ''")

    def decorator(factory: _LossFactory) -> _LossFactory:
        if name in _LOSSES:
            raise ValueError(
                f"loss name {name!r} is already registered to {_LOSSES[name]!r}; "
                "choose another name"
            )
        _LOSSES[name] = factory
        return factory

    return decorator


def list_losses() -> list[str]:
    """The registered loss names, sorted."""
    return sorted(_LOSSES)


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered under ``name`` with ``kwargs``.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the known names), or whatever the
            loss's ``__init__`` raises for bad arguments.
    """
    try:
        factory = _LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown loss {name!r}; expected one of {list_losses()}"
        ) from None
    return factory(**kwargs)

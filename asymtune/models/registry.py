"""Registry of segmentation networks: a config names a model, ``create_model`` builds it."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]
_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory ``(spatial_dims, in_channels, num_classes, **options) -> nn.Module``."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of all registered models."""
    return sorted(_MODELS)


def create_model(name: str, spatial_dims: int, in_channels: int, num_classes: int, **options: object) -> nn.Module:
    """Build the model registered under ``name``."""
    if name not in _MODELS:
        raise ValueError(f"model.name={name!r}: expected one of {list_models()}")
    try:
        return _MODELS[name](spatial_dims, in_channels, num_classes, **options)
    except TypeError as error:
        raise ValueError(f"model {name!r}: invalid options {options}: {error}") from error

"""Segmentation networks, built by name through a registry."""

from asymtune.models import dynunet as _dynunet  # noqa: F401  (registers dynunet)
from asymtune.models.registry import create_model, list_models, register_model
from asymtune.models.unet import UNet

__all__ = ["UNet", "create_model", "list_models", "register_model"]

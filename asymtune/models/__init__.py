"""Segmentation networks, built by name through a registry."""

from asymtune.models.registry import create_model, list_models, register_model
from asymtune.models.unet import UNet

__all__ = ["UNet", "create_model", "list_models", "register_model"]

"""Trained weights from disk into a model built from its config.

Two files hold weights: a ``state_dict`` saved by ``asymtune train save_model=PATH.pt`` and a
trial checkpoint's ``state.pt`` (:meth:`~asymtune.train.trainer.Trainer.state_dict`: the model's
under ``"model"``, beside the optimiser's).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def check_weights_file(path: Path, option: str = "--weights") -> None:
    """Raise FileNotFoundError naming ``option`` when ``path`` is not a file (before anything loads)."""
    if not path.is_file():
        raise FileNotFoundError(f"{option} {path}: no such file: expected a .pt state_dict or a trial state.pt")


def load_weights(model: nn.Module, path: Path, option: str = "--weights") -> None:
    """Load the weights at ``path`` into ``model`` (in place).

    Args:
        model: the network the config describes.
        path: a ``.pt`` state_dict or a trial's ``state.pt``.
        option: how the user named ``path``, for messages.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: when the weights do not fit ``model`` (another architecture or class count).
    """
    check_weights_file(path, option)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state["model"] if isinstance(state, dict) and "model" in state and "optimizer" in state else state
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{option} {path} do not fit the model of the config: {str(error)[:300]}") from error

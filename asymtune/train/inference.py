"""Whole-case prediction by sliding-window inference with Gaussian weighting (MONAI).

Windows of the training patch size overlap by half; each window's logits are weighted by a
Gaussian centred on the window (sigma = 1/8 of its size, as nnU-Net) before they are averaged, so
predictions near window borders count less. A case smaller than the window is padded with zeros.
MONAI is imported on first use (:mod:`asymtune.monai_import`), so processes that never predict
whole cases (trials on the built-in stacked data) do not pay its import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from asymtune.monai_import import monai_module


def sliding_window_logits(
    predictor: Callable[[torch.Tensor], torch.Tensor],
    image: np.ndarray | torch.Tensor,
    window: Sequence[int],
    batch_size: int,
    device: torch.device,
    overlap: float = 0.5,
) -> torch.Tensor:
    """Logits of one case.

    Args:
        predictor: the network, ``(B, C_in, *window) -> (B, C, *window)``.
        image: ``(C_in, *spatial)`` float32 (a NumPy array, possibly memory-mapped, or a tensor).
        window: spatial window size, e.g. the training patch size.
        batch_size: windows per forward pass.
        device: where the network runs; the result is assembled on the CPU.
        overlap: fraction of a window shared with its neighbour along each axis.

    Returns:
        ``(C, *spatial)`` float32 on the CPU.
    """
    sliding_window_inference = monai_module("monai.inferers").sliding_window_inference  # on first use

    tensor = torch.as_tensor(np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image)
    logits = sliding_window_inference(
        tensor[None].float(),
        roi_size=tuple(int(w) for w in window),
        sw_batch_size=batch_size,
        predictor=lambda windows: predictor(windows).float(),
        overlap=overlap,
        mode="gaussian",
        sigma_scale=0.125,
        padding_mode="constant",
        cval=0.0,
        sw_device=device,
        device=torch.device("cpu"),
    )
    return torch.as_tensor(logits)[0].float()

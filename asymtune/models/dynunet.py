"""MONAI's DynUNet, the network nnU-Net builds, in the model registry as ``dynunet``."""

from __future__ import annotations

from torch import nn

from asymtune.models.registry import register_model
from asymtune.monai_import import monai_module


@register_model("dynunet")
def dynunet(
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    base_channels: int = 16,
    depth: int = 4,
    max_channels: int = 320,
    norm: str = "instance",
    residual: bool = False,
) -> nn.Module:
    """An nnU-Net-like U-Net: ``depth`` levels of 3x3(x3) convolutions, stride-2 down-sampling,
    channels doubling from ``base_channels`` up to ``max_channels``; no deep supervision.

    Shapes: input ``(B, C_in, *spatial)`` with every size divisible by ``2**(depth-1)``, output
    ``(B, C, *spatial)`` logits.
    """
    DynUNet = monai_module("monai.networks.nets").DynUNet  # on first use: MONAI's import is heavy

    if depth < 3:  # MONAI's DynUNet needs at least three levels
        raise ValueError(f"model.depth={depth}: expected an integer >= 3 for dynunet")
    model: nn.Module = DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        kernel_size=[3] * depth,
        strides=[1] + [2] * (depth - 1),
        upsample_kernel_size=[2] * (depth - 1),
        filters=[min(base_channels * 2**level, max_channels) for level in range(depth)],
        norm_name=norm,
        res_block=residual,
        deep_supervision=False,
    )
    return model

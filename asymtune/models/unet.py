"""A plain U-Net for 2-D and 3-D segmentation, in the nnU-Net style.

Each stage is two ``conv -> instance norm -> LeakyReLU`` blocks; down-sampling is a strided
convolution, up-sampling a transposed convolution, skips are concatenated.
"""

from __future__ import annotations

import torch
from torch import nn

from asymtune.models.registry import register_model

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_NORM = {
    ("instance", 2): nn.InstanceNorm2d,
    ("instance", 3): nn.InstanceNorm3d,
    ("batch", 2): nn.BatchNorm2d,
    ("batch", 3): nn.BatchNorm3d,
}


def _norm(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    if kind == "instance":
        return _NORM[(kind, spatial_dims)](channels, affine=True)
    return _NORM[(kind, spatial_dims)](channels)


class _ConvBlock(nn.Sequential):
    """Two ``conv(3) -> norm -> LeakyReLU`` layers; the first may be strided."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int, norm: str, stride: int = 1) -> None:
        conv = _CONV[spatial_dims]
        super().__init__(
            conv(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            _norm(norm, spatial_dims, c_out),
            nn.LeakyReLU(0.01, inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=False),
            _norm(norm, spatial_dims, c_out),
            nn.LeakyReLU(0.01, inplace=True),
        )


class UNet(nn.Module):
    """U-Net with ``depth`` resolution levels.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels ``C_in``.
        num_classes: output channels ``C`` (logits, no softmax).
        base_channels: channels of the first stage; doubled per level, capped at ``max_channels``.
        depth: number of resolution levels (>= 1); inputs must be divisible by ``2**(depth-1)``.
        norm: ``"instance"`` (default, as the authors' 3-D U-Net) or ``"batch"``.

    Shapes:
        input ``(B, C_in, *spatial)``, output ``(B, C, *spatial)``.

    Example:
        >>> net = UNet(2, 1, 3, base_channels=8, depth=3)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        base_channels: int = 16,
        depth: int = 3,
        norm: str = "instance",
        max_channels: int = 320,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims={spatial_dims}: expected 2 or 3")
        if depth < 1:
            raise ValueError(f"depth={depth}: expected an integer >= 1")
        if norm not in ("instance", "batch"):
            raise ValueError(f"norm={norm!r}: expected 'instance' or 'batch'")
        if base_channels < 1 or in_channels < 1 or num_classes < 2:
            raise ValueError(
                f"base_channels={base_channels}, in_channels={in_channels}, num_classes={num_classes}: "
                "expected base_channels >= 1, in_channels >= 1, num_classes >= 2"
            )
        self.spatial_dims = spatial_dims
        self.depth = depth
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth)]
        self.encoders = nn.ModuleList()
        c_prev = in_channels
        for level, width in enumerate(widths):
            self.encoders.append(_ConvBlock(spatial_dims, c_prev, width, norm, stride=1 if level == 0 else 2))
            c_prev = width
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(depth - 2, -1, -1):
            self.upsamplers.append(_CONV_T[spatial_dims](widths[level + 1], widths[level], 2, stride=2))
            self.decoders.append(_ConvBlock(spatial_dims, 2 * widths[level], widths[level], norm))
        self.head = _CONV[spatial_dims](widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, C, *spatial)`` for images ``(B, C_in, *spatial)``."""
        factor = 2 ** (self.depth - 1)
        if any(size % factor for size in x.shape[2:]):
            raise ValueError(
                f"input spatial shape {tuple(x.shape[2:])} is not divisible by {factor} "
                f"(= 2**(depth-1) for depth={self.depth})"
            )
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        logits: torch.Tensor = self.head(x)
        return logits


@register_model("unet")
def unet(spatial_dims: int, in_channels: int, num_classes: int, **options: object) -> UNet:
    """The default U-Net (2-D or 3-D by ``spatial_dims``)."""
    return UNet(spatial_dims, in_channels, num_classes, **options)  # type: ignore[arg-type]

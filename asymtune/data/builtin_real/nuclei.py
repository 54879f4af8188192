"""``nuclei``: cell nuclei and their one-pixel boundary in a fluorescence microscopy image.

Source: ``stardist/data/images/img2d.tif`` and ``mask2d.tif`` of stardist 0.9.2 (512 x 512, 125
nuclei from the 2018 Data Science Bowl, BSD-3), read with tifffile. The instance mask becomes
three classes: background, nucleus (instance interior) and boundary (the one-pixel inner boundary
of each instance: instance pixels with a 4-neighbour of another value, background or another
nucleus; the image frame does not count as a neighbour). The boundary is computed on the whole
image before tiling, so tile edges add none. Cases are the ``tile`` x ``tile`` tiles in row-major
order (16 for the default 128), written as 2-D ``(H, W, 1)`` NIfTI with channel ``microscopy``
(z-scored per case when prepared).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from asymtune.data.builtin_real._sources import package_file
from asymtune.data.writers import write_nnunet

FOLDER = "Dataset902_Nuclei"
CLASS_NAMES = ("background", "nucleus", "boundary")


def inner_boundary(instances: np.ndarray) -> np.ndarray:
    """Pixels of an instance that touch (4-connectivity) a pixel of another value.

    Args:
        instances: ``(H, W)`` integer instance ids, 0 is background.

    Returns:
        ``(H, W)`` bool.
    """
    cross = ndimage.generate_binary_structure(2, 1)
    grown = ndimage.grey_dilation(instances, footprint=cross, mode="nearest")
    shrunk = ndimage.grey_erosion(instances, footprint=cross, mode="nearest")
    boundary: np.ndarray = (instances > 0) & ((grown != instances) | (shrunk != instances))
    return boundary


def build(root: Path, tile: int = 128) -> Path:
    """Write the tiles as an nnU-Net v2 raw dataset at ``root``.

    Args:
        root: the dataset folder to create.
        tile: tile side in pixels; must divide 512.
    """
    import tifffile

    image = tifffile.imread(package_file("stardist", "data/images/img2d.tif")).astype(np.float32)  # (512, 512)
    instances = tifffile.imread(package_file("stardist", "data/images/mask2d.tif")).astype(np.int64)  # (512, 512)
    if tile <= 0 or image.shape[0] % tile or image.shape[1] % tile:
        raise ValueError(f"tile={tile}: expected a positive divisor of the image size {image.shape}")
    label = np.where(instances > 0, 1, 0).astype(np.uint8)
    label[inner_boundary(instances)] = 2
    cases = []
    for row in range(image.shape[0] // tile):
        for col in range(image.shape[1] // tile):
            window = (slice(row * tile, (row + 1) * tile), slice(col * tile, (col + 1) * tile))
            cases.append((f"tile_r{row}c{col}", image[window][None], label[window]))
    return write_nnunet(root, cases, channel_names=("microscopy",), class_names=CLASS_NAMES, name=FOLDER)

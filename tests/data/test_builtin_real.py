"""The built-in real datasets: brain_atlas (3 templates x 2 hemispheres) and nuclei (16 tiles).

Each builds from the files of installed packages in a few seconds (brain_atlas about 3 s, nuclei
under 1 s on one core).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from asymtune.cli import main
from asymtune.data.builtin_real import list_builtin_real, prepare_builtin
from asymtune.data.builtin_real.nuclei import inner_boundary
from asymtune.data.check import check_dataset
from asymtune.data.prepared import prepare_dataset


@pytest.fixture(scope="module")
def brain_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_builtin("brain_atlas", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def nuclei(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_builtin("nuclei", tmp_path_factory.mktemp("data"))


def test_names() -> None:
    assert list_builtin_real() == ["brain_atlas", "nuclei"]
    with pytest.raises(ValueError, match="unknown built-in real dataset 'mnist': expected one of brain_atlas, nuclei"):
        prepare_builtin("mnist", Path("unused"))


def test_brain_atlas_cases_and_imbalance(brain_atlas: Path) -> None:
    assert brain_atlas.name == "Dataset901_BrainAtlas"
    summary = check_dataset(brain_atlas)
    assert (summary.name, summary.layout, summary.num_cases, summary.spatial_dims) == (
        "Dataset901_BrainAtlas",
        "nnunet",
        6,
        3,
    )
    assert summary.channel_names == ("T1",)
    assert summary.spacing_min == pytest.approx((1.5, 1.5, 1.5)) and summary.spacing_max == pytest.approx(
        (1.5, 1.5, 1.5)
    )
    assert all(30 <= size <= 70 for size in summary.shape_min + summary.shape_max)  # CPU-sized crops
    _, hippocampus, amygdala = summary.classes
    assert (hippocampus.name, amygdala.name) == ("hippocampus", "amygdala")
    assert 0.005 < hippocampus.fraction < 0.02
    assert 0.002 < amygdala.fraction < hippocampus.fraction / 2
    assert amygdala.imbalance > 100 and hippocampus.imbalance > 40
    assert summary.cases_without_foreground == ()


def test_brain_atlas_hemispheres_and_structure_sizes(brain_atlas: Path) -> None:
    labels = sorted((brain_atlas / "labelsTr").iterdir())
    assert [p.name.removesuffix(".nii.gz") for p in labels] == [
        f"{pair}_{side}"
        for pair in ("icbm2009a_desikankilliany", "icbm2009c_neuromorphometrics", "mni152_harvardoxford")
        for side in ("left", "right")
    ]
    for path in labels:
        image = nib.load(str(path))
        label = np.asarray(image.dataobj)
        hippocampus = np.argwhere(label == 1)
        world_x = (image.affine[:3, :3] @ hippocampus.mean(axis=0) + image.affine[:3, 3])[0]
        assert (world_x < -10) if path.name.endswith("_left.nii.gz") else (world_x > 10), (
            path.name
        )  # RAS+: left is x < 0
        cubic_cm = np.bincount(label.ravel(), minlength=3)[1:] * 1.5**3 / 1000
        assert 3.0 < cubic_cm[0] < 8.0 and 0.8 < cubic_cm[1] < 4.0, (
            path.name,
            cubic_cm,
        )  # one hippocampus, one amygdala
        intensities = np.asarray(nib.load(str(brain_atlas / "imagesTr" / f"{path.name[:-7]}_0000.nii.gz")).dataobj)
        assert intensities[label > 0].min() > 0  # structures lie inside the brain of the template
        np.testing.assert_allclose(
            image.affine, nib.load(str(brain_atlas / "imagesTr" / f"{path.name[:-7]}_0000.nii.gz")).affine
        )


def test_brain_atlas_with_accumbens(tmp_path: Path) -> None:
    summary = check_dataset(prepare_builtin("brain_atlas", tmp_path, accumbens=True, margin_mm=8.0))
    names = [c.name for c in summary.classes]
    assert names == ["background", "hippocampus", "amygdala", "accumbens"]
    accumbens = summary.classes[3]
    assert 0 < accumbens.fraction < summary.classes[1].fraction


def test_nuclei_tiles_and_classes(nuclei: Path) -> None:
    summary = check_dataset(nuclei)
    assert (summary.name, summary.num_cases, summary.spatial_dims) == ("Dataset902_Nuclei", 16, 2)
    assert summary.shape_min == summary.shape_max == (128, 128, 1)
    assert [c.name for c in summary.classes] == ["background", "nucleus", "boundary"]
    foreground = summary.classes[1].fraction + summary.classes[2].fraction
    assert 0.17 < foreground < 0.23  # data.md: 20% foreground
    assert 0.02 < summary.classes[2].fraction < 0.04  # data.md: boundary about 3%
    prepared = prepare_dataset(nuclei, cache_dir=nuclei.parent / "cache")
    assert prepared.spatial_dims == 2 and prepared.channel_names == ("microscopy",)
    for case in prepared.cases:
        assert case.image.shape == (1, 128, 128) and case.label.shape == (128, 128)
        assert float(case.image.mean()) == pytest.approx(0.0, abs=1e-4)
        assert float(case.image.std()) == pytest.approx(1.0, abs=1e-3)


def test_inner_boundary_is_one_pixel_and_stops_at_the_frame() -> None:
    instances = _grid("""
        11102233
        11102233
        11102233
        00002233
    """)
    expected = _grid("""
        00101110
        00101110
        11101110
        00001110
    """)
    # Touching nuclei (2, 3) both get a boundary; the image frame is not a neighbour.
    assert inner_boundary(instances).astype(int).tolist() == expected.tolist()


def _grid(text: str) -> np.ndarray:
    return np.array([[int(c) for c in line.strip()] for line in text.strip().splitlines()], dtype=np.int64)


def test_cli_check_shows_the_imbalance_of_the_brain_structures(
    brain_atlas: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "check", str(brain_atlas)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"dataset Dataset901_BrainAtlas (nnunet layout) at {brain_atlas}"
    rows = {line.split()[1]: line.split() for line in lines if line.strip()[:1].isdigit()}
    assert set(rows) == {"background", "hippocampus", "amygdala"}
    assert 40 < float(rows["hippocampus"][4]) < float(rows["amygdala"][4])  # background/class ratio


def test_cli_prepare_nuclei(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "nuclei", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"asymtune: wrote {tmp_path / 'Dataset902_Nuclei'}\n")
    assert "boundary" in out and "cases: 16" in out

"""check_dataset: the summary of a sound dataset, and one exact sentence per file defect."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from asymtune.cli import main
from asymtune.data.check import check_dataset
from asymtune.data.layouts import DatasetError
from asymtune.data.writers import write_decathlon, write_nnunet


def _defects(root: Path) -> list[str]:
    with pytest.raises(DatasetError) as caught:
        check_dataset(root)
    return caught.value.defects


def _rewrite(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> None:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))


def _known_dataset(root: Path) -> Path:
    """Two 3-D cases of 4x5x2 voxels: case a has 6 class-1 and 2 class-2 voxels, case b none."""
    label_a = np.zeros((4, 5, 2), dtype=np.uint8)
    label_a[0, :, 0] = 1  # 5 voxels
    label_a[1, 0, 0] = 1  # 6th
    label_a[3, 4, :] = 2  # 2 voxels
    image = np.ones((1, 4, 5, 2), dtype=np.float32)
    cases = [("a", image, label_a), ("b", image, np.zeros((4, 5, 2), dtype=np.uint8))]
    return write_nnunet(root, cases, ("CT",), ("background", "liver", "tumour"), spacing=(0.8, 0.8, 2.5))


def test_summary_of_a_known_dataset(tmp_path: Path) -> None:
    summary = check_dataset(_known_dataset(tmp_path / "Dataset007_Liver"))
    assert (summary.name, summary.layout, summary.num_cases) == ("Dataset007_Liver", "nnunet", 2)
    assert summary.channel_names == ("CT",)
    assert summary.spatial_dims == 3
    assert (summary.shape_min, summary.shape_max) == ((4, 5, 2), (4, 5, 2))
    assert summary.spacing_min == pytest.approx((0.8, 0.8, 2.5))
    assert [(c.value, c.name, c.voxels) for c in summary.classes] == [
        (0, "background", 72),
        (1, "liver", 6),
        (2, "tumour", 2),
    ]
    assert [c.fraction for c in summary.classes] == pytest.approx([72 / 80, 6 / 80, 2 / 80])
    assert [c.imbalance for c in summary.classes] == pytest.approx([1.0, 12.0, 36.0])
    assert summary.cases_without_foreground == ("b",)
    text = summary.to_text()
    assert "cases: 2; channels: CT; spatial dims: 3" in text
    assert "    1  liver                           6    7.5000%              12.0" in text
    assert "    2  tumour                          2    2.5000%              36.0" in text
    assert text.endswith("cases without foreground: b")


def test_summary_2d_ranges_and_absent_class(tmp_path: Path, make_cases) -> None:
    cases = make_cases(spatial=(9, 8), channels=2, count=2, values=(0, 1))
    cases.append(("case09", np.zeros((2, 12, 3), np.float32), np.zeros((12, 3), np.uint8)))
    root = write_decathlon(tmp_path / "d", cases, ("T2", "ADC"), ("background", "lesion", "rare"), spacing=(0.5, 0.7))
    summary = check_dataset(root)
    assert summary.spatial_dims == 2
    assert (summary.shape_min, summary.shape_max) == ((9, 3, 1), (12, 8, 1))
    assert summary.spacing_max == pytest.approx((0.5, 0.7, 1.0))
    assert summary.classes[2].voxels == 0 and math.isinf(summary.classes[2].imbalance)
    assert "absent" in summary.to_text()
    assert summary.cases_without_foreground == ("case09",)


def test_mixed_singleton_axes_count_as_3d(tmp_path: Path, make_cases) -> None:
    cases = make_cases(spatial=(6, 7, 1), count=1) + make_cases(spatial=(6, 7, 3), count=1, seed=1)
    cases[1] = ("case01", *cases[1][1:])
    assert check_dataset(write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "a", "b"))).spatial_dims == 3


def test_unreadable_file(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    (root / "imagesTr" / "case01_0000.nii.gz").write_bytes(b"not an image")
    assert _defects(root) == [
        "imagesTr/case01_0000.nii.gz: cannot be read by nibabel "
        "(ImageFileError: File case01_0000.nii.gz is not a gzip file)"
    ]


def test_shape_mismatch(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(channels=2), ("T2", "ADC"), ("background", "a", "b"))
    _rewrite(root / "imagesTr" / "case02_0001.nii.gz", np.zeros((6, 7, 4), np.float32))
    assert _defects(root) == [
        "imagesTr/case02_0001.nii.gz: shape (6, 7, 4) differs from the label labelsTr/case02.nii.gz shape (6, 7, 5)"
    ]


def test_affine_mismatch_beyond_tolerance(tmp_path: Path, make_cases) -> None:
    cases = make_cases()
    root = write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "a", "b"))
    shifted = np.eye(4)
    shifted[0, 3] = 0.5
    _rewrite(root / "imagesTr" / "case00_0000.nii.gz", cases[0][1][0], shifted)
    nearly = np.eye(4)
    nearly[1, 3] = 5e-4  # within the tolerance
    _rewrite(root / "imagesTr" / "case01_0000.nii.gz", cases[1][1][0], nearly)
    assert _defects(root) == [
        "imagesTr/case00_0000.nii.gz: affine differs from that of the label labelsTr/case00.nii.gz "
        "by up to 0.5 (tolerance 0.001)"
    ]


def test_undeclared_label_values(tmp_path: Path, make_cases) -> None:
    cases = make_cases()
    root = write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "a", "b"))
    label = cases[1][2].copy()
    label[0, 0, 0], label[1, 1, 1] = 7, 3
    _rewrite(root / "labelsTr" / "case01.nii.gz", label)
    assert _defects(root) == [
        "labelsTr/case01.nii.gz: label values [3, 7] are not declared in dataset.json labels (declared: [0, 1, 2])"
    ]


def test_non_integer_label(tmp_path: Path, make_cases) -> None:
    cases = make_cases()
    root = write_decathlon(tmp_path / "d", cases, ("CT",), ("background", "a", "b"))
    label = cases[0][2].astype(np.float32)
    label[2, 2, 2] = 0.5
    _rewrite(root / "labelsTr" / "case00.nii.gz", label)
    assert _defects(root) == ["labelsTr/case00.nii.gz: label is not integer-valued (1 voxels such as 0.5)"]


def test_non_finite_intensities(tmp_path: Path, make_cases) -> None:
    cases = make_cases(channels=2)
    root = write_nnunet(tmp_path / "d", cases, ("T2", "ADC"), ("background", "a", "b"))
    image = cases[2][1][1].copy()
    image[0, 0, :2] = np.nan
    image[5, 6, 4] = -np.inf
    _rewrite(root / "imagesTr" / "case02_0001.nii.gz", image)
    assert _defects(root) == ["imagesTr/case02_0001.nii.gz: 3 NaN or infinite intensities"]


def test_decathlon_channel_count(tmp_path: Path, make_cases) -> None:
    cases = make_cases(channels=2, count=2)
    root = write_decathlon(tmp_path / "d", cases, ("T2", "ADC"), ("background", "a", "b"))
    _rewrite(root / "imagesTr" / "case01.nii.gz", np.zeros((6, 7, 5, 3), np.float32))
    _rewrite(root / "imagesTr" / "case00.nii.gz", np.zeros((6, 7, 5), np.float32))
    assert _defects(root) == [
        "imagesTr/case00.nii.gz: 3-D image has 1 channel but dataset.json modality declares 2",
        "imagesTr/case01.nii.gz: 4-D image has 3 channels but dataset.json modality declares 2",
    ]


def test_structural_defects_come_first_and_stop_reading(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    (root / "labelsTr" / "case00.nii.gz").unlink()
    (root / "imagesTr" / "case01_0000.nii.gz").write_bytes(b"broken")
    assert _defects(root) == [
        "imagesTr/case00_0000.nii.gz: image without a label: expected labelsTr/case00.nii.gz",
        "dataset.json: numTraining is 3 but labelsTr holds 2 cases",
    ]


def test_every_file_defect_is_reported_at_once(tmp_path: Path, make_cases) -> None:
    cases = make_cases()
    root = write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "a", "b"))
    (root / "imagesTr" / "case00_0000.nii.gz").write_bytes(b"broken")
    _rewrite(root / "labelsTr" / "case02.nii.gz", np.full((6, 7, 5), 9, np.uint8))
    assert [d.split(":")[0] for d in _defects(root)] == ["imagesTr/case00_0000.nii.gz", "labelsTr/case02.nii.gz"]


def test_cli_check_prints_summary_or_every_defect(
    tmp_path: Path, make_cases, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _known_dataset(tmp_path / "ok")
    assert main(["data", "check", str(root)]) == 0
    assert "liver" in capsys.readouterr().out
    broken = write_nnunet(tmp_path / "broken", make_cases(), ("CT",), ("background", "a", "b"))
    (broken / "imagesTr" / "case00_0000.nii.gz").write_bytes(b"broken")
    _rewrite(broken / "labelsTr" / "case01.nii.gz", np.full((6, 7, 5), 9, np.uint8))
    assert main(["data", "check", str(broken), "--layout", "nnunet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"asymtune data check: error: dataset {broken.absolute()}: 2 defects"
    assert err[1].startswith("  imagesTr/case00_0000.nii.gz: cannot be read by nibabel")
    assert (
        err[2]
        == "  labelsTr/case01.nii.gz: label values [9] are not declared in dataset.json labels (declared: [0, 1, 2])"
    )
    assert main(["data", "check", str(root), "--layout", "decathlon"]) == 2
    assert "key 'modality' is missing" in capsys.readouterr().err

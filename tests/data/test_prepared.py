"""prepare_dataset: normalisation against hand-computed values, label mapping, 2-D squeezing, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from asymtune.data.layouts import DatasetError
from asymtune.data.prepared import prepare_dataset
from asymtune.data.writers import write_decathlon, write_nnunet


def _ct_dataset(root: Path) -> Path:
    """Two CT cases of (10, 10, 2) voxels whose 201 foreground voxels hold 0..200, background -1000.

    Pooled foreground: 0.5th percentile 1, 99.5th percentile 199, mean 100, std sqrt(40400 / 12).
    """
    cases = []
    for case_id, values in (("a", np.arange(0, 101)), ("b", np.arange(101, 201))):
        image = np.full(200, -1000.0, dtype=np.float32)
        label = np.zeros(200, dtype=np.uint8)
        image[: values.size], label[: values.size] = values, 1
        cases.append((case_id, image.reshape(1, 10, 10, 2), label.reshape(10, 10, 2)))
    return write_nnunet(root, cases, ("ct",), ("background", "organ"))


def test_ct_clip_and_dataset_z_score(tmp_path: Path) -> None:
    prepared = prepare_dataset(_ct_dataset(tmp_path / "ct"), cache_dir=tmp_path / "cache")
    std = np.sqrt(40400 / 12)
    a, b = (case.image.reshape(-1) for case in prepared.cases)
    assert a.dtype == np.float32 and a.shape == (200,)
    assert a[0] == pytest.approx((1 - 100) / std)  # 0 clipped up to the 0.5th percentile
    assert a[50] == pytest.approx((50 - 100) / std)
    assert a[150] == pytest.approx((1 - 100) / std)  # background -1000 clipped too
    assert b[99] == pytest.approx((199 - 100) / std)  # 200 clipped down to the 99.5th percentile
    assert b[0] == pytest.approx((101 - 100) / std)
    meta = json.loads((prepared.cache_path / "meta.json").read_text())
    assert meta["ct_statistics"]["ct"] == pytest.approx({"lower": 1.0, "upper": 199.0, "mean": 100.0, "std": std})


def test_mr_per_case_z_score_and_no_norm(tmp_path: Path) -> None:
    ramp = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    cases = [
        ("p1", np.stack([ramp, 2 * ramp + 7, ramp]), np.zeros((3, 4, 5), np.uint8)),
        ("p2", np.stack([ramp + 100, ramp, -ramp]), np.ones((3, 4, 5), np.uint8)),
    ]
    root = write_decathlon(tmp_path / "mr", cases, ("T2", "ADC", "noNorm"), ("background", "lesion"))
    prepared = prepare_dataset(root, cache_dir=tmp_path / "cache")
    expected = (ramp - 29.5) / np.sqrt((60**2 - 1) / 12)  # mean and population std of 0..59
    for case in prepared.cases:
        assert case.image.shape == (3, 3, 4, 5)
        np.testing.assert_allclose(case.image[0], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            case.image[1], expected, rtol=1e-6, atol=1e-6
        )  # affine intensity change: same z-score
    np.testing.assert_array_equal(prepared.cases[0].image[2], ramp)
    np.testing.assert_array_equal(prepared.cases[1].image[2], -ramp)


def test_non_consecutive_label_values_become_indices(tmp_path: Path, make_cases) -> None:
    cases = make_cases(values=(0, 2, 5), count=2)
    root = write_nnunet(tmp_path / "d", cases, ("T1",), ("background", "vessel", "tumour"), label_values=(0, 2, 5))
    prepared = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert prepared.class_names == ("background", "vessel", "tumour")
    for case, (_, _, label) in zip(prepared.cases, cases):
        assert case.label.dtype == np.uint8
        np.testing.assert_array_equal(case.label, np.searchsorted([0, 2, 5], label))
        assert set(np.unique(case.label)) == {0, 1, 2}


def test_axis_order_spacing_and_memory_map(tmp_path: Path) -> None:
    image = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6)
    label = np.zeros((4, 5, 6), np.uint8)
    label[3, 0, 5] = 1
    root = write_nnunet(
        tmp_path / "d", [("x", image, label)], ("noNorm",), ("background", "a"), spacing=(0.7, 0.8, 3.0)
    )
    prepared = prepare_dataset(root, cache_dir=tmp_path / "cache")
    (case,) = prepared.cases
    assert (prepared.spatial_dims, prepared.layout, prepared.name) == (3, "nnunet", "d")
    assert case.spacing == pytest.approx((0.7, 0.8, 3.0))
    np.testing.assert_array_equal(case.image, image)  # nibabel's axis order, no transposition
    assert case.label[3, 0, 5] == 1 and case.label.sum() == 1
    assert isinstance(case.image, np.memmap) and isinstance(case.label, np.memmap)
    assert not case.image.flags.writeable


def test_2d_cases_are_squeezed(tmp_path: Path, make_cases) -> None:
    cases = make_cases(spatial=(9, 8), channels=2, count=2)
    root = write_decathlon(tmp_path / "d", cases, ("T2", "ADC"), ("background", "a", "b"), spacing=(0.5, 0.6))
    prepared = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert prepared.spatial_dims == 2
    for case, (_, _, label) in zip(prepared.cases, cases):
        assert case.image.shape == (2, 9, 8) and case.label.shape == (9, 8)
        assert case.spacing == pytest.approx((0.5, 0.6))
        np.testing.assert_array_equal(case.label, label)
        assert case.image.mean(axis=(1, 2)) == pytest.approx([0.0, 0.0], abs=1e-5)


def test_cache_is_reused_then_invalidated_by_a_changed_file(tmp_path: Path, make_cases) -> None:
    cases = make_cases()
    root = write_nnunet(tmp_path / "d", cases, ("T1",), ("background", "a", "b"))
    first = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert first.cache_path.name == f"d-{first.fingerprint[:12]}"
    # A marker written into the cache shows that the second call reads it instead of recomputing.
    marked = np.load(first.cache_path / "case01_image.npy")
    marked[0, 0, 0, 0] = 1234.5
    np.save(first.cache_path / "case01_image.npy", marked)
    second = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert second.cache_path == first.cache_path and second.fingerprint == first.fingerprint
    assert second.cases[1].image[0, 0, 0, 0] == 1234.5

    path = root / "imagesTr" / "case01_0000.nii.gz"
    nib.save(nib.Nifti1Image(cases[1][1][0] * 2 + 1, np.eye(4)), str(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert third.fingerprint != first.fingerprint
    assert third.cases[1].image[0, 0, 0, 0] != 1234.5
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [first.cache_path.name, third.cache_path.name]
    )


def test_changed_dataset_json_invalidates_the_cache(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("T1",), ("background", "a", "b"))
    first = prepare_dataset(root, cache_dir=tmp_path / "cache")
    description = json.loads((root / "dataset.json").read_text())
    description["labels"] = {"background": 0, "renamed": 1, "b": 2}
    (root / "dataset.json").write_text(json.dumps(description))
    second = prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert second.fingerprint != first.fingerprint
    assert second.class_names == ("background", "renamed", "b")


def test_default_cache_dir_from_environment(tmp_path: Path, make_cases, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYMTUNE_CACHE", str(tmp_path / "env-cache"))
    root = write_nnunet(tmp_path / "d", make_cases(count=1), ("T1",), ("background", "a", "b"))
    assert prepare_dataset(root).cache_path.parent == tmp_path / "env-cache"


def test_broken_dataset_writes_nothing(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("T1",), ("background", "a", "b"))
    (root / "imagesTr" / "case00_0000.nii.gz").write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"imagesTr/case00_0000\.nii\.gz: cannot be read by nibabel"):
        prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_ct_without_foreground_is_refused(tmp_path: Path) -> None:
    cases = [("a", np.ones((1, 3, 3, 3), np.float32), np.zeros((3, 3, 3), np.uint8))]
    root = write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "organ"))
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(root, cache_dir=tmp_path / "cache")
    assert caught.value.defects == [
        "dataset.json: channel 0 is 'CT' but no case has foreground (label > 0): "
        "CT normalisation needs foreground intensities"
    ]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_two_processes_preparing_at_once_share_one_complete_cache(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(
        tmp_path / "d", make_cases(spatial=(20, 20, 10), channels=2, count=6), ("T2", "ADC"), ("background", "a", "b")
    )
    script = (
        "import sys; from asymtune.data.prepared import prepare_dataset; "
        "p = prepare_dataset(sys.argv[1], cache_dir=sys.argv[2]); "
        "print(p.cache_path, sum(float(c.image.sum()) for c in p.cases))"
    )
    command = [sys.executable, "-c", script, str(root), str(tmp_path / "cache")]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].split() for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    assert outputs[0][0] == outputs[1][0]
    assert float(outputs[0][1]) == pytest.approx(float(outputs[1][1]))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [Path(outputs[0][0]).name]  # no temporary folder left

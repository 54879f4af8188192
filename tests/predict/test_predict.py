"""``asymtune predict`` on small datasets written to disk: label maps on the input's grid, the same
prediction as the evaluation's, per-case metrics, and bad input refused naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from asymtune.cli import compose, main
from asymtune.data.prepared import normalise_image, prepare_dataset
from asymtune.data.writers import write_decathlon, write_nnunet
from asymtune.predict import InputError, run_predict
from asymtune.train.factory import build_trainer

LABEL_VALUES = (0, 5)  # declared values that are not the class indices: the maps must hold 0 and 5


def _affine(index: int) -> np.ndarray:
    """An oblique grid (rotated, anisotropic, shifted), different per case."""
    angle = 0.3 + 0.1 * index
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.2, 0.9, 2.0])
    affine[:3, 3] = [-10.0 + index, 4.0, 7.5]
    return affine


def _cases(spatial: tuple[int, ...], count: int = 6) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    cases = []
    for index in range(count):
        shape = tuple(n + index % 3 for n in spatial)  # cases of different sizes
        label = np.zeros(shape, dtype=np.uint8)
        label[tuple(slice(n // 4, n // 2 + 1) for n in shape)] = 5
        t1 = rng.normal(size=shape) + 2.0 * (label > 0)
        ct = 40.0 + 30.0 * rng.normal(size=shape) + 200.0 * (label > 0)
        cases.append((f"case{index}", np.stack([t1, ct]).astype(np.float32), label))
    return cases


@pytest.fixture(scope="module")
def dataset_3d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six two-channel (T1, CT) 3-D cases on oblique grids, labels 0 and 5."""
    root = tmp_path_factory.mktemp("data") / "Dataset001_Two"
    cases = _cases((12, 14, 10))
    return write_nnunet(root, cases, ("T1", "CT"), ("background", "blob"), affines=[_affine(i) for i in range(6)],
                        label_values=LABEL_VALUES)


def _config(root: Path, patch: list[int], **params: Any) -> dict[str, Any]:
    overrides = [
        "dataset_name=two", "data.source=nnunet", f"+data.params.root={root}",
        f"+data.params.cache_dir={root.parent / 'cache'}", "model.base_channels=4", "model.depth=2",
        f"train.patch_size=[{','.join(str(p) for p in patch)}]", "train.epochs=1", "train.iterations_per_epoch=1",
        "train.batch_size=2", "train.device=cpu", "settings.margin=[0,0]", "settings.gamma=[0,0]",
        "settings.rare=[false,true]", *(f"+data.params.{k}={v}" for k, v in params.items()),
    ]
    return compose("train", overrides)


@pytest.fixture(scope="module")
def model_3d(dataset_3d: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    """``(config, its YAML file, weights)`` of a freshly initialised 3-D U-Net on ``dataset_3d``."""
    folder = tmp_path_factory.mktemp("model")
    config = _config(dataset_3d, [8, 8, 8])
    weights = folder / "model.pt"
    torch.save(build_trainer(config).model.state_dict(), weights)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return config, folder / "config.yaml", weights


def _input_folder(dataset: Path, target: Path, cases: list[str]) -> Path:
    target.mkdir(parents=True)
    for case in cases:
        for path in (dataset / "imagesTr").glob(f"{case}_*.nii.gz"):
            shutil.copy(path, target / path.name)
    return target


def test_label_maps_keep_the_grid_and_header_of_their_images(
    dataset_3d: Path, model_3d: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    config, _, weights = model_3d
    images = _input_folder(dataset_3d, tmp_path / "in", ["case1", "case2"])
    result = run_predict(config, tmp_path / "out", input_dir=images, weights=weights)
    assert result["cases"] == 2 and result["labels"] is None
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == ["case1.nii.gz", "case2.nii.gz"]
    for case in ("case1", "case2"):
        source, written = nib.load(images / f"{case}_0000.nii.gz"), nib.load(tmp_path / "out" / f"{case}.nii.gz")
        assert written.shape == source.shape
        assert np.array_equal(written.affine, source.affine)
        assert written.header.get_zooms() == source.header.get_zooms()
        assert written.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(written.dataobj)).tolist()) <= set(LABEL_VALUES)
    record = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert [case["case"] for case in record["cases"]] == ["case1", "case2"] and record["weights"] == str(weights)
    assert not (tmp_path / "out" / "metrics.csv").exists()


def test_images_are_normalised_as_the_training_arrays(dataset_3d: Path) -> None:
    prepared = prepare_dataset(dataset_3d, cache_dir=dataset_3d.parent / "cache")
    assert set(prepared.ct_statistics) == {1}  # the CT channel's dataset statistics
    for case in prepared.cases[:2]:
        raw = np.stack([np.asarray(nib.load(dataset_3d / "imagesTr" / f"{case.case_id}_{c:04d}.nii.gz").dataobj)
                        for c in range(2)])
        assert np.array_equal(normalise_image(raw, prepared.channel_names, prepared.ct_statistics), case.image)


def test_the_test_split_gets_the_evaluations_prediction_and_its_metrics(
    model_3d: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    config, _, weights = model_3d
    result = run_predict(config, tmp_path / "out", weights=weights)
    trainer = build_trainer(config)
    trainer.model.load_state_dict(torch.load(weights, weights_only=True))
    test = trainer.dataset.test
    assert test.case_ids is not None and result["cases"] == len(test) >= 1
    for case_id, logits in zip(test.case_ids, trainer.predict_logits(test)):
        written = np.asarray(nib.load(tmp_path / "out" / f"{case_id}.nii.gz").dataobj)
        assert np.array_equal(written, np.asarray(LABEL_VALUES)[logits.argmax(0).numpy()])
    expected = trainer.evaluate(test, "test", per_case=True)
    assert result["labels"] == "test split"
    assert result["dice/blob"] == pytest.approx(expected["test/case_dice/blob"], abs=1e-9)
    assert result["hd95/blob"] == pytest.approx(expected["test/hd95/blob"], abs=1e-6)
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "case,dice/blob,sensitivity/blob,precision/blob,hd95/blob" and len(rows) == 1 + len(test)


def test_labels_equal_to_the_prediction_score_perfectly(
    dataset_3d: Path, model_3d: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    config, _, weights = model_3d
    images = _input_folder(dataset_3d, tmp_path / "in", ["case0", "case3"])
    run_predict(config, tmp_path / "first", input_dir=images, weights=weights)
    result = run_predict(config, tmp_path / "second", input_dir=images, labels=tmp_path / "first", weights=weights)
    assert result["labels"] == str(tmp_path / "first")
    assert result["mean_fg_dice"] == 1.0 and result["mean_fg_hd95"] == 0.0
    metrics = json.loads((tmp_path / "second" / "metrics.json").read_text())
    assert [row["case"] for row in metrics["cases"]] == ["case0", "case3"]


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["predict", *args]) == 2
    return capsys.readouterr().err


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> None:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4) if affine is None else affine), str(path))


@pytest.mark.parametrize(
    ("defect", "named", "reason"),
    [
        ("missing channel", "case1_0001.nii.gz", "missing: case case1 needs channel 1 (CT)"),
        ("wrong shape", "case1_0001.nii.gz", "shape (5, 5, 5) differs from case1_0000.nii.gz's"),
        ("2-D image", "case1_0000.nii.gz", "the model is 3-D: expected a 3-D image (X, Y, Z)"),
        ("not an image", "case1_0001.nii.gz", "cannot be read as an image by nibabel"),
        ("another file", "notes.txt", "not an image of the nnU-Net layout: expected <case>_0000.nii.gz .. "
                                      "<case>_0001.nii.gz (one file per channel: T1, CT)"),
        ("extra channel", "case1_0002.nii.gz", "channel 2, but the model takes 2 channels"),
        ("label shape", "labels/case1.nii.gz", "shape (12, 14, 9) differs from the image's (12, 14, 10)"),
        ("missing label", "labels/case2.nii.gz", "missing: expected the reference label map of case case2"),
    ],
)
def test_bad_input_is_refused_naming_the_file(
    defect: str, named: str, reason: str, dataset_3d: Path, model_3d: tuple[dict[str, Any], Path, Path],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, config_file, weights = model_3d
    images = _input_folder(dataset_3d, tmp_path / "in", ["case0"])  # a sound case beside the bad one
    labels = tmp_path / "labels"
    labels.mkdir()
    shutil.copy(dataset_3d / "labelsTr" / "case0.nii.gz", labels)
    _save(images / "case1_0000.nii.gz", np.zeros((12, 14, 10)))
    if defect != "missing channel":
        _save(images / "case1_0001.nii.gz", np.zeros((5, 5, 5) if defect == "wrong shape" else (12, 14, 10)))
    if defect == "2-D image":
        _save(images / "case1_0000.nii.gz", np.zeros((12, 14)))
        _save(images / "case1_0001.nii.gz", np.zeros((12, 14)))
    if defect == "not an image":
        (images / "case1_0001.nii.gz").write_text("not a NIfTI file")
    if defect == "another file":
        (images / "notes.txt").write_text("scanner protocol")
    if defect == "extra channel":
        _save(images / "case1_0002.nii.gz", np.zeros((12, 14, 10)))
    with_labels = defect in ("label shape", "missing label")
    if defect == "label shape":
        _save(labels / "case1.nii.gz", np.zeros((12, 14, 9)))
    if defect == "missing label":
        shutil.copy(images / "case1_0000.nii.gz", images / "case2_0000.nii.gz")
        shutil.copy(images / "case1_0001.nii.gz", images / "case2_0001.nii.gz")
        _save(labels / "case1.nii.gz", np.zeros((12, 14, 10)))
    args = ["--config", str(config_file), "--weights", str(weights), "-i", str(images), "-o", str(tmp_path / "out")]
    err = _refused([*args, *(["--labels", str(labels)] if with_labels else [])], capsys)
    line = next((row for row in err.splitlines() if named in row), "")
    assert str(tmp_path / ("" if named.startswith("labels/") else "in") / named) in line, err
    assert reason in line, err
    assert not (tmp_path / "out").exists(), "nothing is written when an input is bad"


def test_bad_voxels_stop_the_case_naming_the_file(
    dataset_3d: Path, model_3d: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    config, _, weights = model_3d
    images = _input_folder(dataset_3d, tmp_path / "in", ["case0"])
    data = np.asarray(nib.load(images / "case0_0001.nii.gz").dataobj).copy()
    data[0, 0, 0] = np.nan
    _save(images / "case0_0001.nii.gz", data, nib.load(images / "case0_0000.nii.gz").affine)
    with pytest.raises(InputError, match=r"case0_0001\.nii\.gz: 1 NaN or infinite intensity"):
        run_predict(config, tmp_path / "out", input_dir=images, weights=weights)
    labels = tmp_path / "labels"
    labels.mkdir()
    image = nib.load(dataset_3d / "labelsTr" / "case1.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) + 1, image.affine), str(labels / "case1.nii.gz"))
    images = _input_folder(dataset_3d, tmp_path / "in1", ["case1"])
    with pytest.raises(InputError, match=r"case1\.nii\.gz: label values \[1, 6\] are not classes of the model"):
        run_predict(config, tmp_path / "out1", input_dir=images, labels=labels, weights=weights)


def test_a_2d_model_writes_maps_of_the_stored_2d_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    cases = []
    for index in range(5):
        label = np.zeros((20, 18), dtype=np.uint8)
        label[4:9, 5:10] = 1
        cases.append((f"slide{index}", (rng.normal(size=(1, 20, 18)) + label).astype(np.float32), label))
    root = write_nnunet(tmp_path / "Dataset002_Flat", cases, ("microscopy",), ("background", "cell"),
                        spacing=(0.5, 0.5))
    config = _config(root, [16, 16])
    weights = tmp_path / "model.pt"
    torch.save(build_trainer(config).model.state_dict(), weights)
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(root / "imagesTr" / "slide0_0000.nii.gz", images)
    _save(images / "volume_0000.nii.gz", np.zeros((20, 18, 3)))
    with pytest.raises(InputError, match=r"volume_0000\.nii\.gz: shape \(20, 18, 3\): the model is 2-D"):
        run_predict(config, tmp_path / "out", input_dir=images, weights=weights)
    (images / "volume_0000.nii.gz").unlink()
    run_predict(config, tmp_path / "out", input_dir=images, weights=weights)
    written, source = nib.load(tmp_path / "out" / "slide0.nii.gz"), nib.load(images / "slide0_0000.nii.gz")
    assert written.shape == source.shape == (20, 18, 1)
    assert np.array_equal(written.affine, source.affine)


def test_a_model_on_synthetic_data_predicts_its_test_split(tmp_path: Path) -> None:
    overrides = ["train.epochs=1", "train.iterations_per_epoch=1", "model.base_channels=4", "model.depth=2",
                 "train.device=cpu", "+data.params.image_size=32", "+data.params.n_train=4", "+data.params.n_test=3"]
    config = compose("train", overrides)
    trainer = build_trainer(config)
    weights = tmp_path / "model.pt"
    torch.save(trainer.model.state_dict(), weights)
    result = run_predict(config, tmp_path / "out", weights=weights)
    assert result["cases"] == 3
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == [
        f"synth_lesions_test_{i:03d}.nii.gz" for i in range(3)
    ]
    assert nib.load(tmp_path / "out" / "synth_lesions_test_000.nii.gz").shape == (32, 32, 1)
    expected = trainer.evaluate(trainer.dataset.test, "test", per_case=True)
    assert result["dice/lesion"] == pytest.approx(expected["test/case_dice/lesion"], abs=1e-9)
    with pytest.raises(ValueError, match=r"trained on data.source='synth_lesions', generated in memory"):
        run_predict(config, tmp_path / "out2", input_dir=tmp_path / "out", weights=weights)


def test_option_mistakes_are_refused_before_any_model_is_built(
    model_3d: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    config, _, weights = model_3d
    with pytest.raises(FileNotFoundError, match=r"--weights .*absent\.pt: no such file"):
        run_predict(config, tmp_path / "out", weights=tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="--labels .* needs --input"):
        run_predict(config, tmp_path / "out", labels=tmp_path, weights=weights)
    with pytest.raises(ValueError, match="is the input folder"):
        run_predict(config, tmp_path, input_dir=tmp_path, weights=weights)
    with pytest.raises(ValueError, match="exactly one of --weights"):
        run_predict(config, tmp_path / "out")


def test_a_decathlon_test_split_keeps_its_images_grid(tmp_path: Path) -> None:
    cases = [(case_id, image, (label > 0).astype(np.uint8)) for case_id, image, label in _cases((10, 12, 8), 5)]
    root = write_decathlon(tmp_path / "Task01_Two", cases, ("T1", "CT"), ("background", "blob"), spacing=(1.5, 1, 2))
    config = _config(root, [8, 8, 8])
    config["data"]["source"] = "decathlon"
    weights = tmp_path / "model.pt"
    torch.save(build_trainer(config).model.state_dict(), weights)
    result = run_predict(config, tmp_path / "out", weights=weights)
    assert result["cases"] >= 1
    for path in (tmp_path / "out").glob("*.nii.gz"):
        image = nib.load(root / "imagesTr" / path.name)  # (X, Y, Z, 2): the channels last
        assert image.shape[3] == 2 and nib.load(path).shape == image.shape[:3]
        assert np.array_equal(nib.load(path).affine, image.affine)

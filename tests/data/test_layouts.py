"""scan_layout: reading the nnU-Net v2 and Decathlon layouts, and one exact sentence per structural defect."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from asymtune.data.layouts import DatasetError, scan_layout
from asymtune.data.writers import write_decathlon, write_nnunet


def _defects(root: Path, layout: str = "auto") -> list[str]:
    with pytest.raises(DatasetError) as caught:
        scan_layout(root, layout)
    return caught.value.defects


def _edit_json(root: Path, **changes: object) -> None:
    path = root / "dataset.json"
    description = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            description.pop(key, None)
        else:
            description[key] = value
    path.write_text(json.dumps(description))


# --- reading -------------------------------------------------------------------------------------


def test_nnunet_two_channels_3d(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(
        tmp_path / "Dataset001_Prostate", make_cases(channels=2), ("T2", "ADC"), ("background", "pz", "tz")
    )
    found = scan_layout(root)
    assert found.layout == "nnunet"
    assert found.name == "Dataset001_Prostate"
    assert found.root == root.absolute()
    assert found.channel_names == ("T2", "ADC")
    assert found.label_values == (0, 1, 2)
    assert found.class_names == ("background", "pz", "tz")
    assert found.file_ending == ".nii.gz"
    assert [c.case_id for c in found.cases] == ["case00", "case01", "case02"]
    first = found.cases[0]
    assert [p.name for p in first.images] == ["case00_0000.nii.gz", "case00_0001.nii.gz"]
    assert first.label == root.absolute() / "labelsTr" / "case00.nii.gz"


def test_decathlon_two_channels_2d(tmp_path: Path, make_cases) -> None:
    cases = make_cases(spatial=(9, 8), channels=2, count=2)
    root = write_decathlon(
        tmp_path / "Task05_Prostate", cases, ("T2", "ADC"), ("background", "lesion", "gland"), name="Prostate"
    )
    found = scan_layout(root)
    assert (found.layout, found.name, found.file_ending) == ("decathlon", "Prostate", ".nii.gz")
    assert found.channel_names == ("T2", "ADC")
    assert found.class_names == ("background", "lesion", "gland")
    assert [(c.case_id, [p.name for p in c.images], c.label.name) for c in found.cases] == [
        ("case00", ["case00.nii.gz"], "case00.nii.gz"),
        ("case01", ["case01.nii.gz"], "case01.nii.gz"),
    ]
    assert nib.load(str(found.cases[0].images[0])).shape == (9, 8, 1, 2)  # channels last


def test_cases_sorted_and_labels_sorted_by_value(tmp_path: Path, make_cases) -> None:
    cases = make_cases(values=(0, 5, 2), count=3)[::-1]  # written in reverse order
    root = write_nnunet(tmp_path / "d", cases, ("CT",), ("background", "vessel", "tumour"), label_values=(0, 2, 5))
    description = json.loads((root / "dataset.json").read_text())
    description["labels"] = {"tumour": 5, "background": 0, "vessel": 2}  # any key order
    (root / "dataset.json").write_text(json.dumps(description))
    found = scan_layout(root)
    assert [c.case_id for c in found.cases] == ["case00", "case01", "case02"]
    assert found.label_values == (0, 2, 5)
    assert found.class_names == ("background", "vessel", "tumour")


def test_explicit_layout_and_hidden_files(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(count=2), ("CT",), ("background", "a", "b"))
    (root / "imagesTr" / "._case00.nii.gz").write_bytes(b"macOS resource fork")
    (root / "labelsTr" / ".DS_Store").write_bytes(b"")
    assert len(scan_layout(root, "decathlon").cases) == 2
    assert _defects(root, "nnunet")[0].startswith("dataset.json: key 'channel_names' is missing")


def test_unknown_layout_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"layout 'msd': expected 'auto', 'nnunet' or 'decathlon'"):
        scan_layout(tmp_path, "msd")


# --- dataset.json defects ------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    assert _defects(root) == [f"{root}: no such folder: expected a dataset folder with dataset.json"]


def test_missing_dataset_json(tmp_path: Path) -> None:
    assert _defects(tmp_path) == [
        "dataset.json: no such file: expected the nnU-Net v2 or Decathlon dataset description"
    ]


def test_dataset_json_not_json(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text("{'labels': 1}")
    (defect,) = _defects(tmp_path)
    assert defect.startswith("dataset.json: not valid JSON (Expecting property name enclosed in double quotes")


def test_undetectable_layout(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0}}))
    assert _defects(tmp_path) == [
        "dataset.json: cannot tell the layout: expected 'channel_names' and 'file_ending' (nnU-Net v2) "
        "or 'training' and 'modality' (Decathlon)"
    ]


def test_nnunet_missing_and_malformed_keys(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    _edit_json(root, channel_names={"0": "CT", "2": "T2"}, file_ending=None, labels=None)
    assert _defects(root, "nnunet") == [
        'dataset.json: \'channel_names\' is {"0": "CT", "2": "T2"}: '
        'expected a non-empty object {"0": "<channel name>", ...} with keys 0..C-1',
        "dataset.json: key 'labels' is missing: expected an object of class name -> integer value, "
        'e.g. {"background": 0, "tumour": 1}',
        "dataset.json: key 'file_ending' is missing: expected a file ending such as \".nii.gz\"",
    ]


def test_region_based_labels_are_refused(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("T1",), ("background", "a", "b"))
    _edit_json(root, labels={"background": 0, "whole tumour": [1, 2], "core": 2}, regions_class_order=[1, 2])
    assert _defects(root) == [
        "dataset.json: label 'whole tumour' is the region [1, 2]: region-based labels are not supported: "
        "expected one integer value per class"
    ]


def test_labels_without_background(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(), ("T1",), ("background", "a", "b"))
    _edit_json(root, labels={"1": "a", "2": "b"})
    assert _defects(root) == ["dataset.json: 'labels' declares [1, 2]: expected 0 (background) and positive values"]


def test_decathlon_labels_with_non_integer_key(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(), ("T1",), ("background", "a", "b"))
    _edit_json(root, labels={"0": "background", "one": "a"})
    assert _defects(root) == [
        'dataset.json: label "one": "a": expected an object of "integer value" -> class name, '
        'e.g. {"0": "background", "1": "tumour"}'
    ]


def test_num_training_mismatch(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    _edit_json(root, numTraining=5)
    assert _defects(root) == ["dataset.json: numTraining is 5 but labelsTr holds 3 cases"]


# --- file defects --------------------------------------------------------------------------------


def test_empty_nnunet_dataset(tmp_path: Path) -> None:
    root = write_nnunet(tmp_path / "d", [], ("CT",), ("background", "a"))
    assert _defects(root) == ["labelsTr: no cases: expected at least one labelled training case"]


def test_empty_decathlon_dataset(tmp_path: Path) -> None:
    root = write_decathlon(tmp_path / "d", [], ("CT",), ("background", "a"))
    assert _defects(root) == [
        "dataset.json: 'training' is empty: no cases: expected at least one labelled training case"
    ]


def test_missing_images_folder(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(count=1), ("CT",), ("background", "a", "b"))
    for path in (root / "imagesTr").iterdir():
        path.unlink()
    (root / "imagesTr").rmdir()
    assert _defects(root) == ["imagesTr: no such folder: expected the training images"]


def test_nnunet_label_without_image(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(channels=2), ("T2", "ADC"), ("background", "a", "b"))
    for channel in (0, 1):
        (root / "imagesTr" / f"case01_000{channel}.nii.gz").unlink()
    assert _defects(root) == ["labelsTr/case01.nii.gz: label without an image: expected imagesTr/case01_0000.nii.gz"]


def test_nnunet_image_without_label(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    (root / "labelsTr" / "case02.nii.gz").unlink()
    _edit_json(root, numTraining=2)
    assert _defects(root) == ["imagesTr/case02_0000.nii.gz: image without a label: expected labelsTr/case02.nii.gz"]


def test_nnunet_missing_channel_file(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(channels=2), ("T2", "ADC"), ("background", "a", "b"))
    (root / "imagesTr" / "case01_0001.nii.gz").unlink()
    assert _defects(root) == ["imagesTr/case01_0001.nii.gz: missing channel file (channel 1 'ADC' of case case01)"]


def test_nnunet_undeclared_channel_and_bad_name(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(), ("CT",), ("background", "a", "b"))
    images = root / "imagesTr"
    (images / "case00_0000.nii.gz").rename(images / "case00_0001.nii.gz")
    (images / "case01_0000.nii.gz").rename(images / "case01.nii.gz")
    assert _defects(root) == [
        "imagesTr/case00_0001.nii.gz: channel 1 is not declared in dataset.json channel_names (1 channel)",
        'imagesTr/case01.nii.gz: name does not end in _XXXX (a 4-digit channel index) before ".nii.gz"',
        "labelsTr/case00.nii.gz: label without an image: expected imagesTr/case00_0000.nii.gz",
        "labelsTr/case01.nii.gz: label without an image: expected imagesTr/case01_0000.nii.gz",
    ]


def test_nnunet_wrong_file_ending(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(count=2), ("CT",), ("background", "a", "b"))
    _, image, label = make_cases(count=1)[0]
    nib.save(nib.Nifti1Image(image[0], np.eye(4)), str(root / "imagesTr" / "case09_0000.nii"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(root / "labelsTr" / "case09.nii"))
    assert _defects(root) == [
        'labelsTr/case09.nii: wrong file ending: expected ".nii.gz" (dataset.json file_ending)',
        'imagesTr/case09_0000.nii: wrong file ending: expected ".nii.gz" (dataset.json file_ending)',
    ]


def test_decathlon_missing_label_and_image(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(), ("MRI",), ("background", "a", "b"))
    (root / "labelsTr" / "case00.nii.gz").unlink()
    (root / "imagesTr" / "case02.nii.gz").unlink()
    assert _defects(root) == [
        "labelsTr/case00.nii.gz: missing label for the image imagesTr/case00.nii.gz (dataset.json training[0])",
        "imagesTr/case02.nii.gz: missing image for the label labelsTr/case02.nii.gz (dataset.json training[2])",
    ]


def test_decathlon_unlisted_files_and_wrong_ending(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(), ("MRI",), ("background", "a", "b"))
    description = json.loads((root / "dataset.json").read_text())
    description["training"] = description["training"][:2]
    description["numTraining"] = 2
    (root / "dataset.json").write_text(json.dumps(description))
    (root / "labelsTr" / "notes.txt").write_text("annotator: A")
    assert _defects(root) == [
        "imagesTr/case02.nii.gz: image without a label: not listed in dataset.json 'training'",
        "labelsTr/case02.nii.gz: label without an image: not listed in dataset.json 'training'",
        'labelsTr/notes.txt: wrong file ending: expected ".nii.gz" (Decathlon layout)',
    ]


def test_decathlon_malformed_training_entry(tmp_path: Path, make_cases) -> None:
    root = write_decathlon(tmp_path / "d", make_cases(count=1), ("MRI",), ("background", "a", "b"))
    description = json.loads((root / "dataset.json").read_text())
    description["training"].append({"image": "./imagesTr/case09.nii.gz"})
    description["numTraining"] = 2
    (root / "dataset.json").write_text(json.dumps(description))
    assert _defects(root) == [
        'dataset.json: training[1] is {"image": "./imagesTr/case09.nii.gz"}: expected a list of '
        '{"image": "./imagesTr/<case>.nii.gz", "label": "./labelsTr/<case>.nii.gz"}'
    ]


def test_error_lists_every_defect_under_the_root(tmp_path: Path, make_cases) -> None:
    root = write_nnunet(tmp_path / "d", make_cases(channels=2), ("T2", "ADC"), ("background", "a", "b"))
    (root / "imagesTr" / "case00_0001.nii.gz").unlink()
    (root / "labelsTr" / "case02.nii.gz").unlink()
    with pytest.raises(DatasetError) as caught:
        scan_layout(root)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).splitlines() == [
        f"dataset {root.absolute()}: 3 defects",
        "  imagesTr/case00_0001.nii.gz: missing channel file (channel 1 'ADC' of case case00)",
        "  imagesTr/case02_0000.nii.gz: image without a label: expected labelsTr/case02.nii.gz",
        "  dataset.json: numTraining is 3 but labelsTr holds 2 cases",
    ]

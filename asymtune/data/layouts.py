"""Where the files of a labelled dataset on disk are: the nnU-Net v2 raw and the Decathlon layouts.

Both layouts keep training images in ``imagesTr/`` and label maps in ``labelsTr/`` next to a
``dataset.json``; only these labelled training cases are read (``imagesTs/`` is ignored).

- nnU-Net v2 raw: ``dataset.json`` has ``channel_names`` (``{"0": "CT"}``), ``labels`` (name ->
  int, ``{"background": 0, "liver": 1}``) and ``file_ending`` (``".nii.gz"``); one file per
  channel ``imagesTr/<case>_0000<file_ending>``, ``_0001`` ...; labels ``labelsTr/<case><file_ending>``.
- Medical Segmentation Decathlon: ``dataset.json`` has ``modality`` (``{"0": "MRI"}``), ``labels``
  (``{"0": "background", "1": "left atrium"}``) and ``training`` (``[{"image": "./imagesTr/x.nii.gz",
  "label": "./labelsTr/x.nii.gz"}]``); one NIfTI per image, 4-D with channels last when there
  are several channels.

:func:`scan_layout` only looks at names (it opens no image); every structural defect it finds is
collected and raised at once as one :class:`DatasetError`. Hidden files (``.DS_Store``, the
``._x.nii.gz`` files of the Decathlon archives) are ignored.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYOUTS = ("nnunet", "decathlon")
DECATHLON_ENDING = ".nii.gz"
_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


class DatasetError(ValueError):
    """One or more defects of a dataset on disk.

    Attributes:
        root: the dataset folder.
        defects: one sentence per defect, each naming the file (relative to ``root``) and the problem.
    """

    def __init__(self, root: str | Path, defects: list[str]) -> None:
        self.root = Path(root)
        self.defects = list(defects)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.defects)
        header = f"dataset {self.root}: {count} defect{'s' if count != 1 else ''}"
        return "\n".join([header, *(f"  {defect}" for defect in self.defects)])


@dataclass(frozen=True)
class CaseFiles:
    """The files of one labelled case.

    Attributes:
        case_id: ``<case>`` of nnU-Net names, the image name without ``.nii.gz`` for Decathlon.
        images: nnU-Net: one file per channel, in channel order; Decathlon: one 3-D or 4-D file
            (channels on the last axis).
        label: the label map.
    """

    case_id: str
    images: tuple[Path, ...]
    label: Path


@dataclass(frozen=True)
class DatasetLayout:
    """A dataset's description and files, as found on disk.

    Attributes:
        root: the dataset folder (holds ``dataset.json``).
        layout: ``"nnunet"`` or ``"decathlon"``.
        name: ``dataset.json`` ``name``, else the folder name.
        channel_names: in channel order, e.g. ``("T2", "ADC")``.
        label_values: declared label values, sorted; the first is 0 (background).
        class_names: one per label value, same order.
        file_ending: e.g. ``".nii.gz"`` (always ``".nii.gz"`` for Decathlon).
        cases: sorted by ``case_id``.
    """

    root: Path
    layout: str
    name: str
    channel_names: tuple[str, ...]
    label_values: tuple[int, ...]
    class_names: tuple[str, ...]
    file_ending: str
    cases: tuple[CaseFiles, ...]

    def relative(self, path: Path) -> str:
        """``path`` relative to the root when it is inside it (for messages)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def scan_layout(root: str | Path, layout: str = "auto") -> DatasetLayout:
    """Read ``dataset.json`` and pair the image and label files of every training case.

    Args:
        root: the dataset folder.
        layout: ``"auto"`` (nnU-Net when ``dataset.json`` has ``channel_names`` and
            ``file_ending``, Decathlon when it has ``training`` and ``modality``), ``"nnunet"``
            or ``"decathlon"``.

    Raises:
        ValueError: for an unknown ``layout``.
        DatasetError: listing every structural defect: missing or malformed ``dataset.json``,
            no cases, an image without a label or a label without an image, a missing channel
            file, a file with the wrong ending.
    """
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"layout {layout!r}: expected 'auto', 'nnunet' or 'decathlon'")
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise DatasetError(root, [f"{root}: no such folder: expected a dataset folder with dataset.json"])
    description = _read_description(root)
    if layout == "auto":
        layout = _detect(root, description)
    defects: list[str] = []
    if layout == "nnunet":
        result = _scan_nnunet(root, description, defects)
    else:
        result = _scan_decathlon(root, description, defects)
    if defects or result is None:
        raise DatasetError(root, defects)
    return result


def _read_description(root: Path) -> dict[str, Any]:
    path = root / "dataset.json"
    if not path.is_file():
        raise DatasetError(
            root, ["dataset.json: no such file: expected the nnU-Net v2 or Decathlon dataset description"]
        )
    try:
        description = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(root, [f"dataset.json: not valid JSON ({error})"]) from error
    if not isinstance(description, dict):
        raise DatasetError(root, [f"dataset.json: holds a {type(description).__name__}: expected a JSON object"])
    return description


def _detect(root: Path, description: dict[str, Any]) -> str:
    if "channel_names" in description and "file_ending" in description:
        return "nnunet"
    if "training" in description and "modality" in description:
        return "decathlon"
    raise DatasetError(
        root,
        [
            (
                "dataset.json: cannot tell the layout: expected 'channel_names' and 'file_ending' (nnU-Net v2) "
                "or 'training' and 'modality' (Decathlon)"
            )
        ],
    )


def _channels(description: dict[str, Any], key: str, defects: list[str]) -> tuple[str, ...] | None:
    """Channel names from ``{"0": name, "1": name}`` (keys must be 0..C-1)."""
    value = description.get(key)
    expected = 'expected a non-empty object {"0": "<channel name>", ...} with keys 0..C-1'
    if value is None:
        defects.append(f"dataset.json: key '{key}' is missing: {expected}")
        return None
    if not isinstance(value, dict) or not value:
        defects.append(f"dataset.json: '{key}' is {json.dumps(value)}: {expected}")
        return None
    try:
        indices = sorted(int(k) for k in value)
    except ValueError:
        defects.append(f"dataset.json: '{key}' has keys {sorted(value)}: {expected}")
        return None
    if indices != list(range(len(value))) or not all(isinstance(v, str) and v for v in value.values()):
        defects.append(f"dataset.json: '{key}' is {json.dumps(value)}: {expected}")
        return None
    by_index = {int(k): v for k, v in value.items()}
    return tuple(by_index[i] for i in range(len(by_index)))


def _labels(
    description: dict[str, Any], layout: str, defects: list[str]
) -> tuple[tuple[int, ...], tuple[str, ...]] | None:
    """Declared ``(values, names)`` sorted by value; nnU-Net maps name -> int, Decathlon "int" -> name."""
    value = description.get("labels")
    expected = (
        'expected an object of class name -> integer value, e.g. {"background": 0, "tumour": 1}'
        if layout == "nnunet"
        else 'expected an object of "integer value" -> class name, e.g. {"0": "background", "1": "tumour"}'
    )
    if value is None:
        defects.append(f"dataset.json: key 'labels' is missing: {expected}")
        return None
    if not isinstance(value, dict) or not value:
        defects.append(f"dataset.json: 'labels' is {json.dumps(value)}: {expected}")
        return None
    pairs: list[tuple[int, str]] = []
    for key, item in value.items():
        if layout == "nnunet":
            if isinstance(item, list):
                defects.append(
                    f"dataset.json: label '{key}' is the region {json.dumps(item)}: region-based labels are "
                    "not supported: expected one integer value per class"
                )
                return None
            if not isinstance(item, int) or isinstance(item, bool):
                defects.append(f"dataset.json: label '{key}' is {json.dumps(item)}: {expected}")
                return None
            pairs.append((item, key))
        else:
            if not (isinstance(key, str) and key.strip().lstrip("-").isdigit()) or not isinstance(item, str):
                defects.append(f"dataset.json: label {json.dumps(key)}: {json.dumps(item)}: {expected}")
                return None
            pairs.append((int(key), item))
    pairs.sort()
    values = tuple(v for v, _ in pairs)
    if len(set(values)) != len(values):
        duplicated = sorted({v for v in values if values.count(v) > 1})
        defects.append(
            f"dataset.json: 'labels' declares the values {duplicated} more than once: expected one class per value"
        )
        return None
    if values[0] != 0:
        defects.append(f"dataset.json: 'labels' declares {list(values)}: expected 0 (background) and positive values")
        return None
    return values, tuple(n for _, n in pairs)


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())


def _folder(root: Path, name: str, defects: list[str]) -> Path | None:
    folder = root / name
    if not folder.is_dir():
        defects.append(f"{name}: no such folder: expected the training {'images' if name == 'imagesTr' else 'labels'}")
        return None
    return folder


def _scan_nnunet(root: Path, description: dict[str, Any], defects: list[str]) -> DatasetLayout | None:
    channels = _channels(description, "channel_names", defects)
    labels = _labels(description, "nnunet", defects)
    ending = description.get("file_ending")
    if not isinstance(ending, str) or not ending.startswith("."):
        state = "is missing" if ending is None else f"is {json.dumps(ending)}"
        defects.append(f"dataset.json: key 'file_ending' {state}: expected a file ending such as \".nii.gz\"")
        ending = None
    images_dir, labels_dir = _folder(root, "imagesTr", defects), _folder(root, "labelsTr", defects)
    if channels is None or labels is None or ending is None or images_dir is None or labels_dir is None:
        return None

    label_files: dict[str, Path] = {}
    for path in _visible_files(labels_dir):
        if not path.name.endswith(ending):
            defects.append(f'labelsTr/{path.name}: wrong file ending: expected "{ending}" (dataset.json file_ending)')
            continue
        label_files[path.name[: -len(ending)]] = path
    image_files: dict[str, dict[int, Path]] = {}
    for path in _visible_files(images_dir):
        if not path.name.endswith(ending):
            defects.append(f'imagesTr/{path.name}: wrong file ending: expected "{ending}" (dataset.json file_ending)')
            continue
        match = _CHANNEL_SUFFIX.match(path.name[: -len(ending)])
        if match is None:
            defects.append(
                f'imagesTr/{path.name}: name does not end in _XXXX (a 4-digit channel index) before "{ending}"'
            )
            continue
        channel = int(match["channel"])
        if channel >= len(channels):
            defects.append(
                f"imagesTr/{path.name}: channel {channel} is not declared in dataset.json channel_names "
                f"({len(channels)} channel{'s' if len(channels) != 1 else ''})"
            )
            continue
        image_files.setdefault(match["case"], {})[channel] = path

    cases = []
    for case_id in sorted(set(label_files) | set(image_files)):
        found = image_files.get(case_id, {})
        if case_id not in label_files:
            first = found[min(found)]
            defects.append(f"imagesTr/{first.name}: image without a label: expected labelsTr/{case_id}{ending}")
            continue
        if not found:
            defects.append(
                f"labelsTr/{case_id}{ending}: label without an image: expected imagesTr/{case_id}_0000{ending}"
            )
            continue
        missing = [c for c in range(len(channels)) if c not in found]
        for channel in missing:
            defects.append(
                f"imagesTr/{case_id}_{channel:04d}{ending}: missing channel file (channel {channel} "
                f"'{channels[channel]}' of case {case_id})"
            )
        if not missing:
            cases.append(CaseFiles(case_id, tuple(found[c] for c in range(len(channels))), label_files[case_id]))

    _check_count(description, len(label_files), "labelsTr holds", defects)
    if not label_files and not image_files:
        defects.append("labelsTr: no cases: expected at least one labelled training case")
    values, names = labels
    return DatasetLayout(
        root=root,
        layout="nnunet",
        name=_name(root, description),
        channel_names=channels,
        label_values=values,
        class_names=names,
        file_ending=ending,
        cases=tuple(cases),
    )


def _scan_decathlon(root: Path, description: dict[str, Any], defects: list[str]) -> DatasetLayout | None:
    channels = _channels(description, "modality", defects)
    labels = _labels(description, "decathlon", defects)
    training = description.get("training")
    expected = 'expected a list of {"image": "./imagesTr/<case>.nii.gz", "label": "./labelsTr/<case>.nii.gz"}'
    if not isinstance(training, list):
        state = "is missing" if training is None else f"is {json.dumps(training)[:60]}"
        defects.append(f"dataset.json: key 'training' {state}: {expected}")
        training = None
    images_dir, labels_dir = _folder(root, "imagesTr", defects), _folder(root, "labelsTr", defects)
    if channels is None or labels is None or training is None or images_dir is None or labels_dir is None:
        return None

    listed: set[Path] = set()
    cases: dict[str, CaseFiles] = {}
    for index, entry in enumerate(training):
        if not (
            isinstance(entry, dict) and isinstance(entry.get("image"), str) and isinstance(entry.get("label"), str)
        ):
            defects.append(f"dataset.json: training[{index}] is {json.dumps(entry)[:80]}: {expected}")
            continue
        image, label = _normalised(root / entry["image"]), _normalised(root / entry["label"])
        listed.update((image, label))
        problems = False
        for path, kind, key in ((image, "image", "label"), (label, "label", "image")):
            text = entry[kind]
            if not path.name.endswith(DECATHLON_ENDING):
                defects.append(
                    f'{text.removeprefix("./")}: wrong file ending: expected "{DECATHLON_ENDING}" (Decathlon layout)'
                )
                problems = True
            elif not path.is_file():
                other = entry[key].removeprefix("./")
                defects.append(
                    f"{text.removeprefix('./')}: missing {kind} for the {key} {other} (dataset.json training[{index}])"
                )
                problems = True
        case_id = image.name.removesuffix(DECATHLON_ENDING)
        if case_id in cases:
            defects.append(f"dataset.json: training[{index}] repeats the case {case_id}: expected each case once")
            continue
        if not problems:
            cases[case_id] = CaseFiles(case_id, (image,), label)

    for folder, kind, other in ((images_dir, "image", "label"), (labels_dir, "label", "image")):
        for path in _visible_files(folder):
            if not path.name.endswith(DECATHLON_ENDING):
                defects.append(
                    f'{folder.name}/{path.name}: wrong file ending: expected "{DECATHLON_ENDING}" (Decathlon layout)'
                )
            elif _normalised(path) not in listed:
                defects.append(
                    f"{folder.name}/{path.name}: {kind} without {'an' if other == 'image' else 'a'} {other}: "
                    "not listed in dataset.json 'training'"
                )
    _check_count(description, len(training), "dataset.json 'training' lists", defects)
    if not training:
        defects.append("dataset.json: 'training' is empty: no cases: expected at least one labelled training case")
    values, names = labels
    return DatasetLayout(
        root=root,
        layout="decathlon",
        name=_name(root, description),
        channel_names=channels,
        label_values=values,
        class_names=names,
        file_ending=DECATHLON_ENDING,
        cases=tuple(cases[k] for k in sorted(cases)),
    )


def _normalised(path: Path) -> Path:
    """``path`` with ``.`` and ``..`` removed (symbolic links kept, so messages show the user's names)."""
    return Path(os.path.normpath(path))


def _check_count(description: dict[str, Any], count: int, where: str, defects: list[str]) -> None:
    declared = description.get("numTraining")
    if declared is not None and declared != count:
        defects.append(f"dataset.json: numTraining is {json.dumps(declared)} but {where} {count} cases")


def _name(root: Path, description: dict[str, Any]) -> str:
    name = description.get("name")
    return name if isinstance(name, str) and name.strip() else root.name

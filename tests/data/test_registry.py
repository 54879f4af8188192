"""The dataset registry: names, parameter checks, and the summary of a built dataset."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from asymtune.data import (
    SegmentationDataset,
    Split,
    create_dataset,
    describe,
    list_datasets,
    register_dataset,
    registry,
)
from asymtune.data.registry import check_int, check_number, check_range


def test_builtin_datasets_are_registered() -> None:
    names = list_datasets()
    assert {"synth_lesions", "synth_organs"} <= set(names)
    assert names == sorted(names)


BUILT_IN = ["synth_lesions", "synth_organs"]  # the others (nnunet, decathlon) need a folder: tests/e2e


def test_datasets_given_by_path_need_their_root() -> None:
    for name in ("nnunet", "decathlon"):
        with pytest.raises(ValueError, match=rf"dataset '{name}' needs the parameters \['root'\]"):
            create_dataset(name)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_dataset_builds(name: str) -> None:
    dataset = create_dataset(name)
    assert isinstance(dataset, SegmentationDataset)
    assert dataset.name == name
    assert dataset.num_classes >= 2
    assert dataset.rare_classes and all(0 < c < dataset.num_classes for c in dataset.rare_classes)
    for split in (dataset.train, dataset.val, dataset.test):
        assert len(split) >= 1
        assert split.images.dtype == np.float32
        assert split.labels.dtype == np.int64
        assert split.labels.min() >= 0 and split.labels.max() < dataset.num_classes


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="'no_such_data'") as error:
        create_dataset("no_such_data")
    for name in list_datasets():
        assert name in str(error.value)


def test_unknown_parameter_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="n_trian") as error:
        create_dataset("synth_lesions", n_trian=4)
    assert "n_train" in str(error.value)


@pytest.mark.parametrize(
    ("name", "parameter", "value", "expected"),
    [
        ("synth_lesions", "n_train", 0, "expected an integer >= 1"),
        ("synth_lesions", "n_val", 2.5, "expected an integer >= 1"),
        ("synth_lesions", "n_test", True, "expected an integer >= 1"),
        ("synth_lesions", "seed", -1, "expected an integer >= 0"),
        ("synth_lesions", "spatial_dims", 4, "expected an integer in [2, 3]"),
        ("synth_lesions", "image_size", 8, "expected an integer in [16, 512]"),
        ("synth_lesions", "noise", -0.1, "expected a number in [0.0, 10.0]"),
        ("synth_lesions", "bias_field", math.nan, "expected a number"),
        ("synth_lesions", "rare_contrast", (2.0, 1.0), "expected two numbers"),
        ("synth_lesions", "rare_contrast", 1.0, "expected two numbers"),
        ("synth_lesions", "lesion_fraction", 0.0, "expected a number in (0.0, 0.05]"),
        ("synth_lesions", "max_lesions", 0, "expected an integer in [1, 10]"),
        ("synth_organs", "organ_fraction", 0.9, "expected a number in [0.02, 0.4]"),
        ("synth_organs", "small_fraction", "0.01", "expected a number"),
        ("synth_organs", "spatial_dims", 3.0, "expected an integer in [2, 3]"),
    ],
)
def test_bad_parameter_value_names_parameter_value_and_expectation(
    name: str, parameter: str, value: object, expected: str
) -> None:
    with pytest.raises(ValueError) as error:
        create_dataset(name, **{parameter: value})
    message = str(error.value)
    assert message.startswith(f"{parameter}={value!r}:")
    assert expected in message


def _toy_dataset(*, size: int = 4) -> SegmentationDataset:
    labels = np.zeros((1, size, size), dtype=np.int64)
    labels[0, 0, 0] = 1
    split = Split(images=np.zeros((1, 1, size, size), dtype=np.float32), labels=labels)
    return SegmentationDataset("toy", ("background", "dot"), split, split, split, rare_classes=(1,))


def test_register_dataset_adds_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert register_dataset("toy")(_toy_dataset) is _toy_dataset
    register_dataset("toy")(_toy_dataset)  # the same function again (a reload) is fine
    assert "toy" in list_datasets()
    assert create_dataset("toy", size=6).train.labels.shape == (1, 6, 6)
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_dataset("toy")(lambda: _toy_dataset())
    with pytest.raises(ValueError, match="size"):
        create_dataset("toy", side=6)


def test_describe_is_json_ready_and_consistent() -> None:
    dataset = create_dataset("synth_organs", n_train=4, n_val=2, n_test=3)
    summary = describe(dataset)
    json.dumps(summary)
    assert summary["num_cases"] == {"train": 4, "val": 2, "test": 3}
    assert summary["class_names"] == list(dataset.class_names)
    assert summary["rare_classes"] == [2, 3]
    assert summary["spatial_shape"] == [64, 64]
    for split_name in ("train", "val", "test"):
        assert math.isclose(sum(summary["class_fractions"][split_name].values()), 1.0)
        assert summary["cases_with_class"][split_name]["organ"] == 1.0
    train_fractions = list(summary["class_fractions"]["train"].values())
    np.testing.assert_allclose(train_fractions, dataset.class_fractions())


@pytest.mark.parametrize(
    ("check", "args", "value", "result"),
    [
        (check_int, {"minimum": 1}, 3, 3),
        (check_int, {"minimum": 1}, np.int64(3), 3),
        (check_number, {"low": 0.0, "high": 1.0}, 1, 1.0),
        (check_number, {"low": 0.0, "high": 1.0}, np.float32(0.5), 0.5),
        (check_range, {"low": 0.0, "high": 10.0}, [1, 2], (1.0, 2.0)),
    ],
)
def test_checks_return_the_converted_value(check: object, args: dict, value: object, result: object) -> None:
    assert check("x", value, **args) == result  # type: ignore[operator]


@pytest.mark.parametrize(
    ("check", "args", "value"),
    [
        (check_int, {"minimum": 1}, 1.0),
        (check_int, {"minimum": 1, "maximum": 3}, 4),
        (check_number, {"low": 0.0, "high": 1.0, "low_open": True}, 0.0),
        (check_number, {"low": 0.0, "high": 1.0}, math.inf),
        (check_number, {"low": 0.0, "high": 1.0}, False),
        (check_range, {"low": 0.0, "high": 10.0}, (0.0, 1.0)),
        (check_range, {"low": 0.0, "high": 10.0}, (1.0, 2.0, 3.0)),
    ],
)
def test_checks_reject_bad_values(check: object, args: dict, value: object) -> None:
    with pytest.raises(ValueError, match=r"^x="):
        check("x", value, **args)  # type: ignore[operator]

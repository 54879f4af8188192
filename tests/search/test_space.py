"""Search spaces: expansion per class, anchors, mapping to settings, refusal of bad files."""

from __future__ import annotations

import optuna
import pytest

from asymtune.paths import search_spaces_dir
from asymtune.search.space import SearchSpace, SearchSpaceError

CLASSES = ("background", "organ", "small_a", "small_b")


def _bound(name: str):  # noqa: ANN202
    return SearchSpace.from_file(search_spaces_dir() / f"{name}.yaml").bind(CLASSES, (2, 3))


def test_paper_form_keys_and_mapping() -> None:
    space = _bound("paper")
    assert space.keys == ["margin", "gamma", "mixup_alpha", "mixup_margin", "rare.organ", "rare.small_a", "rare.small_b"]
    params = {"margin": 0.5, "gamma": 3.0, "mixup_alpha": 0.4, "mixup_margin": 0.1,
              "rare.organ": False, "rare.small_a": True, "rare.small_b": False}
    settings = space.to_settings(params)
    assert settings.margin == (0.0, 0.0, 0.5, 0.0)
    assert settings.gamma == (3.0, 3.0, 0.0, 3.0)
    assert settings.rare == (False, False, True, False)
    assert (settings.mixup_alpha, settings.mixup_margin, settings.schedule) == (0.4, 0.1, "separate")


def test_per_class_form_gives_each_class_its_own_values() -> None:
    space = _bound("per_class")
    assert "margin.small_a" in space.keys and "gamma.background" in space.keys and "margin.background" not in space.keys
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    space(trial)
    settings = space.to_settings(trial.params)
    assert settings.margin[0] == 0.0
    assert settings.margin[1:] == tuple(trial.params[f"margin.{c}"] for c in CLASSES[1:])
    assert settings.gamma == tuple(trial.params[f"gamma.{c}"] for c in CLASSES)


@pytest.mark.parametrize("name", ["paper", "per_class"])
def test_anchors_are_the_baseline_and_the_authors_defaults(name: str) -> None:
    space = _bound(name)
    anchors = space.anchor_points()
    assert list(anchors) == ["baseline", "authors_default"]
    assert space.to_settings(anchors["baseline"]).is_baseline
    default = space.to_settings(anchors["authors_default"])
    assert default.margin == (0.0, 0.0, 1.0, 1.0) and default.gamma == (4.0, 4.0, 0.0, 0.0)
    assert (default.mixup_alpha, default.mixup_margin) == (0.2, 0.2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"form": "scalar", "params": {"margin": {"type": "float", "low": 0, "high": 1}}}, "form='scalar'"),
        ({"params": {"margin": {"type": "uniform", "low": 0, "high": 1}}}, "params.margin.type='uniform'"),
        ({"params": {"temperature": {"type": "float", "low": 0, "high": 1}}}, "unknown setting 'temperature'"),
        ({"params": {"margin": {"type": "float", "low": 0}}}, "needs low and high"),
        ({"params": {"mixup_alpha": {"type": "float", "low": 0, "high": 1, "per_class": "all"}}}, "only"),
        ({"form": "per_class", "params": {"margin": {"type": "float", "low": 0, "high": 1}}}, "needs per_class"),
        ({"params": {"margin": {"type": "float", "low": 0, "high": 1}}, "anchors": {"a": {"rare": "some"}}},
         "anchors.a.rare='some'"),
    ],
)
def test_malformed_spaces_are_refused_with_the_field(raw: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SearchSpace.from_mapping(raw, "space.yaml")


def test_bounds_of_the_wrong_length_are_refused() -> None:
    raw = {"form": "per_class", "params": {"gamma": {"type": "float", "low": [0, 0], "high": 4, "per_class": "all"}}}
    with pytest.raises(SearchSpaceError, match=r"params.gamma.low has 2 values \[0, 0\]: expected 4"):
        SearchSpace.from_mapping(raw, "space.yaml").bind(CLASSES, (2, 3))


def test_missing_file_is_named(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(SearchSpaceError, match="nothing.yaml does not exist"):
        SearchSpace.from_file(tmp_path / "nothing.yaml")

"""Search spaces: expansion per class, anchors, mapping to settings, refusal of bad files."""

from __future__ import annotations

import re

import optuna
import pytest

from asymtune.paths import search_spaces_dir
from asymtune.search.space import SearchSpace, SearchSpaceError

CLASSES = ("background", "organ", "small_a", "small_b")


def _bound(name: str):
    return SearchSpace.from_file(search_spaces_dir() / f"{name}.yaml").bind(CLASSES, (2, 3))


def test_paper_form_keys_and_mapping() -> None:
    space = _bound("paper")
    assert space.keys == ["margin", "gamma", "mixup_alpha", "mixup_margin",
                          "rare.organ", "rare.small_a", "rare.small_b"]
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


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(SearchSpaceError, match="nothing.yaml does not exist"):
        SearchSpace.from_file(tmp_path / "nothing.yaml")


def test_every_class_anchor_makes_every_class_rare_background_included() -> None:
    space = _bound("symmetric_controls")
    assert space.keys == ["margin", "adv_eps", "rare"]
    anchors = space.anchor_points()
    assert list(anchors) == ["baseline", "symmetric_margin", "symmetric_adversarial"]
    assert anchors["symmetric_margin"]["rare"] == "every_class"

    baseline = space.to_settings(anchors["baseline"])
    assert baseline.is_baseline and baseline.rare == (False, False, True, True)

    margin = space.to_settings(anchors["symmetric_margin"])
    assert margin.rare == (True, True, True, True)
    assert margin.margin == (1.0, 1.0, 1.0, 1.0) and margin.gamma == (0.0, 0.0, 0.0, 0.0)  # the symmetric margin
    assert not margin.is_baseline

    adversarial = space.to_settings(anchors["symmetric_adversarial"])
    assert adversarial.rare == (True, True, True, True) and adversarial.adv_eps == 10.0
    assert adversarial.margin == (0.0,) * 4 and not adversarial.is_baseline


def test_rare_searched_among_keywords_gives_the_named_sets() -> None:
    space = _bound("symmetric_controls")
    point = {"margin": 0.5, "adv_eps": 2.5}
    assert space.to_settings({**point, "rare": "dataset"}).margin == (0.0, 0.0, 0.5, 0.5)
    assert space.to_settings({**point, "rare": "every_class"}).margin == (0.5, 0.5, 0.5, 0.5)


def test_optuna_searches_the_rare_keyword_and_the_trial_config_holds_the_settings() -> None:
    space = _bound("symmetric_controls")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        config = space(trial)
        assert trial.params["rare"] in ("dataset", "every_class")
        assert config == {"settings": space.to_settings(trial.params).to_dict()}
        seen.add(trial.params["rare"])
    assert seen == {"dataset", "every_class"}


@pytest.mark.parametrize("anchor", ["baseline", "symmetric_margin", "symmetric_adversarial"])
def test_exported_settings_round_trip(anchor: str) -> None:
    from asymtune.method import AsymmetrySettings

    settings = _bound("symmetric_controls").to_settings(_bound("symmetric_controls").anchor_points()[anchor])
    exported = settings.to_dict()
    assert AsymmetrySettings.from_dict(exported) == settings
    assert exported["rare"] == list(settings.rare)


@pytest.mark.parametrize("source", ["synth_lesions", "synth_organs"])
def test_symmetric_controls_bind_to_a_builtin_dataset(source: str) -> None:
    from asymtune.data.loading import load_dataset

    dataset = load_dataset({"source": source, "params": {"image_size": 32}})
    space = SearchSpace.from_file(search_spaces_dir() / "symmetric_controls.yaml").bind(
        dataset.class_names, dataset.rare_classes
    )
    anchors = space.anchor_points()
    count = dataset.num_classes
    for name in ("symmetric_margin", "symmetric_adversarial"):
        assert space.to_settings(anchors[name]).rare == (True,) * count
    assert space.to_settings(anchors["symmetric_margin"]).margin == (1.0,) * count
    assert space.to_settings(anchors["baseline"]).rare == tuple(i in dataset.rare_classes for i in range(count))


def test_existing_spaces_keep_their_optuna_names_and_anchor_points() -> None:
    # The default sweep must select the same trials: nothing about the shipped spaces moved.
    space = _bound("paper")
    assert [(d.key, d.type) for d in space.dimensions] == [
        ("margin", "float"), ("gamma", "float"), ("mixup_alpha", "float"), ("mixup_margin", "float"),
        ("rare.organ", "bool"), ("rare.small_a", "bool"), ("rare.small_b", "bool"),
    ]
    assert space.anchor_points() == {
        "baseline": {"margin": 0.0, "gamma": 0.0, "mixup_alpha": 0.0, "mixup_margin": 0.0,
                     "rare.organ": False, "rare.small_a": False, "rare.small_b": False},
        "authors_default": {"margin": 1.0, "gamma": 4.0, "mixup_alpha": 0.2, "mixup_margin": 0.2,
                            "rare.organ": False, "rare.small_a": True, "rare.small_b": True},
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"params": {"rare": {"type": "categorical", "choices": ["dataset", "some"]}}},
         "params.rare.choices=['dataset', 'some']: expected distinct keywords among"),
        ({"params": {"rare": {"type": "categorical", "choices": ["dataset", "dataset"]}}},
         "expected distinct keywords"),
        ({"params": {"rare": {"type": "float", "low": 0, "high": 1}}},
         "params.rare: expected type rare_set (one flag per foreground class) or type categorical"),
    ],
)
def test_bad_rare_keyword_params_are_refused(raw: dict, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=re.escape(message)):
        SearchSpace.from_mapping(raw, "space.yaml")


@pytest.mark.parametrize(
    ("params", "anchor", "message"),
    [
        ({"rare": {"type": "rare_set"}}, "every_class",
         "anchors.a.rare='every_class': this space cannot make the background rare"),
        ({}, "every_class", "anchors.a.rare='every_class': this space cannot make the background rare"),
        ({"rare": {"type": "categorical", "choices": ["dataset", "every_class"]}}, "none",
         "anchors.a.rare='none': expected one of the searched choices ['dataset', 'every_class']"),
    ],
)
def test_anchor_rare_sets_the_space_cannot_hold_are_refused_at_bind(params: dict, anchor: str, message: str) -> None:
    raw = {"params": {"margin": {"type": "float", "low": 0, "high": 2}, **params},
           "anchors": {"a": {"margin": 1.0, "rare": anchor}}}
    space = SearchSpace.from_mapping(raw, "space.yaml")  # the file itself is well formed
    with pytest.raises(SearchSpaceError, match=re.escape(message)):
        space.bind(CLASSES, (2, 3))

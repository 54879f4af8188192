"""``search.warm_start``: an earlier sweep's best settings, mapped to the new sweep's datasets and
space, enqueued first; a source that cannot be used is refused before anything starts.

The earlier sweeps here are real Optuna studies in SQLite written with Optuna's API, beside a
``sweep.json`` as ``asymtune tune`` writes it (a whole sweep: tests/e2e/test_warm_start_sweep.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from asymtune.cli import main
from asymtune.config import ConfigError, check_tune_config, compose
from asymtune.search.plan import DatasetPlan, plan_datasets
from asymtune.search.space import SearchSpace
from asymtune.search.warm_start import (
    EPOCHS_ATTR,
    map_point,
    match_classes,
    open_source,
    plan_warm_starts,
    profile_distance,
)

PAPER = {"margin": (0.0, 2.0), "gamma": (0.0, 6.0), "mixup_alpha": (0.0, 1.0), "mixup_margin": (0.0, 0.5)}


@pytest.fixture(scope="module")
def smoke_plans() -> tuple[dict[str, Any], list[DatasetPlan]]:
    """The smoke experiment's config (8 trials, so that two earlier trials and the anchors fit) and
    its two datasets, loaded and bound to the paper space."""
    cfg = compose("tune", ["experiment=smoke", "search.num_samples=8"])
    return cfg, plan_datasets(cfg)


def _add_trial(study: optuna.Study, params: dict[str, Any], value: float, epochs: int) -> None:
    distributions = {
        key: FloatDistribution(*PAPER[key]) if key in PAPER else CategoricalDistribution([False, True])
        for key in params
    }
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions=distributions, value=value, user_attrs={EPOCHS_ATTR: epochs},
    ))


def _point(margin: float, gamma: float, rare: dict[str, bool]) -> dict[str, Any]:
    return {"margin": margin, "gamma": gamma, "mixup_alpha": 0.1, "mixup_margin": 0.1,
            **{f"rare.{name}": flag for name, flag in rare.items()}}


def _earlier_sweep(folder: Path, datasets: dict[str, list[tuple[dict[str, Any], float, int]]],
                   plans: list[DatasetPlan] | None = None) -> Path:
    """An earlier output_dir: sweep.json and an Optuna study per dataset holding ``(params, value, epochs)``."""
    folder.mkdir(parents=True)
    storage = f"sqlite:///{folder / 'optuna.db'}"
    fractions = {p.name: [float(f) for f in p.dataset.class_fractions()] for p in plans or []}
    entries = {}
    for name, trials in datasets.items():
        study = optuna.create_study(study_name=f"asymtune-earlier-{name}", storage=storage, direction="maximize")
        for params, value, epochs in trials:
            _add_trial(study, params, value, epochs)
        known = {p.name: list(p.dataset.class_names) for p in plans or []}  # for a study without trials
        named = list(dict.fromkeys(k[5:] for p, _, _ in trials for k in p if k.startswith("rare.")))
        classes = ["background", *named] if named else known[name]
        entries[name] = {"study_name": study.study_name, "class_names": classes}
        if name in fractions:
            entries[name]["class_fractions"] = fractions[name]
    (folder / "sweep.json").write_text(json.dumps({"sweep_id": "earlier", "optuna_storage": storage,
                                                   "datasets": entries}))
    return folder


# ----------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize(("a", "b", "expected"), [
    ([0.9, 0.1], [0.9, 0.1], 0.0),
    ([0.9, 0.1], [0.09, 0.01], 1.0),           # every class 10 times rarer
    # each class weighs the same: a third class moves 1/6 of the mass from the background's log10 fraction
    # (about 0) to the split class's (-2.3); the foreground alone moves by 0.3 (1/2 x 0.3 + 1/6 x 2.3)
    ([0.99, 0.01], [0.99, 0.005, 0.005], 0.53),
])
def test_profile_distance(a: list[float], b: list[float], expected: float) -> None:
    assert profile_distance(a, b) == pytest.approx(expected, abs=0.01)
    assert profile_distance(b, a) == pytest.approx(profile_distance(a, b))


def test_classes_are_matched_background_first_then_by_frequency_rank() -> None:
    organs = (["background", "organ", "organ_lesion", "duct"], [0.84, 0.148, 0.006, 0.005])
    lesions = (["background", "lesion"], [0.993, 0.007])
    assert match_classes(*lesions, *organs) == {"background": "background", "lesion": "duct"}
    assert match_classes(*organs, *lesions) == {
        "background": "background", "duct": "lesion", "organ_lesion": "lesion", "organ": "lesion",
    }
    assert match_classes(*organs, *organs) == {name: name for name in organs[0]}


def test_points_are_clipped_to_the_new_space_and_unknown_values_left_to_the_sampler() -> None:
    space = SearchSpace.from_mapping({
        "form": "per_class",
        "params": {"margin": {"type": "float", "low": 0.0, "high": 1.0, "per_class": "foreground"},
                   "gamma": {"type": "float", "low": 0.0, "high": 6.0, "per_class": "all"},
                   "mixup_alpha": {"type": "categorical", "choices": [0.0, 0.2]}},
    }).bind(["background", "lesion"], [1])
    earlier = {"margin.spot": 1.7, "gamma.background": 3.0, "gamma.spot": -1.0, "mixup_alpha": 0.5, "margin": 9.0}
    point = map_point(earlier, space, {"background": "background", "lesion": "spot"})
    assert point == {"margin.lesion": 1.0, "gamma.background": 3.0, "gamma.lesion": 0.0}


# ------------------------------------------------------------------------------- the planning
def test_the_same_dataset_starts_from_its_best_full_trials(
    tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]
) -> None:
    cfg, plans = smoke_plans
    best, second = _point(1.5, 2.0, {"lesion": True}), _point(0.5, 5.0, {"lesion": False})
    duplicate = dict(best)
    folder = _earlier_sweep(tmp_path / "first", {"synth_lesions": [
        (_point(0.0, 0.0, {"lesion": False}), 0.30, 2),
        (second, 0.40, 2),
        (best, 0.50, 2),
        (duplicate, 0.49, 2),                          # the same setting again: taken once
        (_point(2.0, 6.0, {"lesion": True}), 0.90, 1),  # stopped early by ASHA: after the full trials
    ]})
    lesions = [p for p in plans if p.name == "synth_lesions"]
    starts = plan_warm_starts({**cfg, "search": {**cfg["search"], "warm_start": str(folder)}}, lesions)
    start = starts["synth_lesions"]
    assert start.points == (best, second)
    assert start.trial_numbers == (2, 1) and start.values == (0.5, 0.4)
    assert (start.source_dataset, start.reason) == ("synth_lesions", "the same dataset")
    assert start.sentence() == (
        f"warm start: the first 2 trials repeat the 2 best settings of sweep earlier in {folder}, dataset "
        "synth_lesions (the same dataset): trials #2 (0.5), #1 (0.4) of study asymtune-earlier-synth_lesions "
        "(objective in brackets)."
    )


def test_another_dataset_starts_from_the_closest_class_frequency_profile(
    tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]
) -> None:
    cfg, plans = smoke_plans
    lesions = next(p for p in plans if p.name == "synth_lesions")
    organs = next(p for p in plans if p.name == "synth_organs")
    # the earlier sweep tuned synth_organs and "spots", a dataset with synth_lesions' profile whose class is "spot"
    spots = DatasetPlan("spots", lesions.spec, lesions.dataset, lesions.space)
    folder = _earlier_sweep(tmp_path / "first", {
        "spots": [(_point(0.7, 1.0, {"spot": True}), 0.6, 2), (_point(0.2, 1.0, {"spot": False}), 0.5, 2)],
        "synth_organs": [(_point(1.9, 0.1, {"organ": False, "organ_lesion": True, "duct": True}), 0.7, 2)],
    }, plans=[spots, organs])
    start = plan_warm_starts(
        {**cfg, "search": {**cfg["search"], "warm_start": str(folder), "warm_start_top_k": 1}}, [lesions]
    )["synth_lesions"]
    assert start.source_dataset == "spots"
    assert start.reason == (
        "closest class-frequency profile to synth_lesions: distance 0.00; "
        f"synth_organs {profile_distance(lesions.dataset.class_fractions(), organs.dataset.class_fractions()):.2f}"
    )
    assert start.points == (_point(0.7, 1.0, {"lesion": True}),)  # rare.spot read as rare.lesion
    assert start.sentence().startswith(f"warm start: the first trial repeats the best setting of sweep earlier in "
                                       f"{folder}, dataset spots (closest class-frequency profile")


def test_profiles_missing_from_an_older_manifest_are_recomputed(
    tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]
) -> None:
    cfg, plans = smoke_plans
    lesions = next(p for p in plans if p.name == "synth_lesions")
    folder = _earlier_sweep(tmp_path / "first", {  # no class_fractions in its sweep.json
        "synth_organs": [(_point(1.9, 0.1, {"organ": True, "organ_lesion": False, "duct": False}), 0.7, 2)],
    })
    (folder / "config.yaml").write_text(json.dumps({"data": cfg["data"]}))  # JSON is YAML
    renamed = DatasetPlan("new_lesions", lesions.spec, lesions.dataset, lesions.space)
    start = plan_warm_starts(
        {**cfg, "search": {**cfg["search"], "warm_start": str(folder), "warm_start_top_k": 1}}, [renamed]
    )["new_lesions"]
    assert start.source_dataset == "synth_organs" and start.reason.startswith("closest class-frequency profile")
    assert start.points[0]["rare.lesion"] is False  # a rare organ class, not the frequent organ, plays the lesion


def test_a_study_url_seeds_every_dataset(tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]) -> None:
    cfg, plans = smoke_plans
    folder = _earlier_sweep(tmp_path / "first", {"synth_lesions": [(_point(1.2, 3.0, {"lesion": True}), 0.5, 2)]})
    location = f"sqlite:///{folder / 'optuna.db'}#asymtune-earlier-synth_lesions"
    starts = plan_warm_starts({**cfg, "search": {**cfg["search"], "warm_start": location, "warm_start_top_k": 1}},
                              plans)
    assert starts["synth_lesions"].points == (_point(1.2, 3.0, {"lesion": True}),)
    assert starts["synth_lesions"].reason == "the same dataset"
    assert starts["synth_organs"].points == ({"margin": 1.2, "gamma": 3.0, "mixup_alpha": 0.1, "mixup_margin": 0.1},)
    assert starts["synth_organs"].reason == "the study named"


# ---------------------------------------------------------------------------------- refusals
def test_a_missing_folder_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_such_sweep"
    capsys.readouterr()
    code = main(["tune", "experiment=smoke", f"search.warm_start={missing}", f"output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not (tmp_path / "out").exists(), err
    assert err[0] == (
        f"asymtune tune: error: search.warm_start='{missing}': no such folder {missing}: expected the output_dir "
        "of an earlier 'asymtune tune' run, or STORAGE_URL#STUDY_NAME"
    )


def test_unusable_sources_are_refused_naming_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty/sweep.json does not exist: expected the output_dir of an earlier"):
        open_source(str(tmp_path / "empty"))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="one", storage=url)
    with pytest.raises(ConfigError, match=r"a storage URL needs the study: expected STORAGE_URL#STUDY_NAME"):
        open_source(url)
    with pytest.raises(ConfigError, match=r"no study 'two' in sqlite:///.*: expected one of \['one'\]"):
        open_source(f"{url}#two")


def test_too_many_points_for_the_trials_are_refused(
    tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]
) -> None:
    cfg, plans = smoke_plans
    folder = _earlier_sweep(tmp_path / "first", {"synth_lesions": [(_point(1.0, 1.0, {"lesion": True}), 0.5, 2)]})
    search = {**cfg["search"], "warm_start": str(folder), "num_samples": 3, "warm_start_top_k": 2}
    with pytest.raises(ConfigError) as error:
        plan_warm_starts({**cfg, "search": search}, plans[:1])
    assert str(error.value) == (
        "search.warm_start_top_k=2 earlier trials plus the search space's 2 anchors are more than "
        "search.num_samples=3: expected warm_start_top_k <= 1, so that the anchors (the baseline first) still run"
    )


def test_a_study_without_a_completed_trial_is_refused(
    tmp_path: Path, smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]
) -> None:
    cfg, plans = smoke_plans
    folder = _earlier_sweep(tmp_path / "first", {"synth_lesions": []}, plans=plans[:1])
    with pytest.raises(ConfigError, match="has no completed trial whose settings fit the search space of synth_"):
        plan_warm_starts({**cfg, "search": {**cfg["search"], "warm_start": str(folder)}}, plans[:1])


def test_top_k_below_one_is_refused() -> None:
    cfg = compose("tune", ["search.warm_start_top_k=0"])
    with pytest.raises(ConfigError, match=r"^search.warm_start_top_k=0: expected an integer >= 1"):
        check_tune_config(cfg)


def test_a_cold_start_has_no_warm_start(smoke_plans: tuple[dict[str, Any], list[DatasetPlan]]) -> None:
    cfg, plans = smoke_plans
    assert cfg["search"]["warm_start"] is None and plan_warm_starts(cfg, plans) == {}

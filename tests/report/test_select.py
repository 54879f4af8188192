"""Selection from validation metrics: ranking with a constraint, the confirmed choice, Pareto fronts."""

from __future__ import annotations

import pytest

from asymtune.confirm.options import ConfirmOptions, DecisionOptions
from asymtune.confirm.select import pareto_front, rank_trials, select_confirmed
from asymtune.method.settings import AsymmetrySettings, baseline
from asymtune.results.layout import FIXED_KEY
from asymtune.results.spec import TrialSpec
from asymtune.results.trials import TrialRecord

CLASSES = ("background", "organ", "duct")
CONFIG = {FIXED_KEY: TrialSpec(
    dataset_name="organs", dataset={"source": "synth_organs", "params": {}}, class_names=CLASSES, rare=(2,),
    model={"name": "unet"}, train={"epochs": 4, "seed": 0},
).to_dict()}


def _trial(trial_id: str, organ: float, duct: float, epochs: int = 4, asymmetric: bool = True) -> TrialRecord:
    settings = (
        AsymmetrySettings(margin=(0.0, 1.0, 1.0), gamma=(4.0, 0.0, 0.0), rare=(False, True, True))
        if asymmetric else baseline(3)
    )
    history = [{
        "training_iteration": epochs, "val/dice/organ": organ, "val/dice/duct": duct,
        "val/mean_fg_dice": (organ + duct) / 2,
    }]
    return TrialRecord(trial_id, CONFIG, settings, history)


def test_rank_by_objective_and_drop_trials_below_the_baseline_on_a_class() -> None:
    base = _trial("base", 0.60, 0.20, asymmetric=False)
    better_both = _trial("a", 0.62, 0.30)
    best_mean_but_duct_worse = _trial("b", 0.90, 0.10)
    failed = TrialRecord("c", CONFIG, baseline(3), [], error="boom")
    trials = [base, better_both, best_mean_but_duct_worse, failed]
    assert [t.trial_id for t in rank_trials(trials, "val/mean_fg_dice", "max")] == ["b", "a", "base"]
    constrained = rank_trials(trials, "val/mean_fg_dice", "max", "no_class_below_baseline", base)
    assert [t.trial_id for t in constrained] == ["a", "base"]


def test_ties_go_to_more_epochs_then_the_earlier_trial() -> None:
    trials = [_trial("x", 0.5, 0.5, epochs=2), _trial("y", 0.5, 0.5, epochs=4), _trial("z", 0.5, 0.5, epochs=4)]
    assert [t.trial_id for t in rank_trials(trials, "val/mean_fg_dice", "max")] == ["y", "z", "x"]


def _seeds(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"val/dice/organ": o, "val/dice/duct": d, "val/mean_fg_dice": (o + d) / 2} for o, d in pairs]


def test_confirmed_choice_is_the_best_mean_over_seeds() -> None:
    runs = {
        "base": _seeds((0.6, 0.2), (0.6, 0.2)),
        "lucky": _seeds((0.9, 0.5), (0.3, 0.1)),  # best single seed, worse mean
        "steady": _seeds((0.7, 0.3), (0.7, 0.3)),
    }
    assert select_confirmed(runs, "base", "val/mean_fg_dice", "max", None, CLASSES) == "steady"


def test_confirmed_choice_keeps_the_baseline_when_nothing_beats_it_or_the_constraint_fails() -> None:
    worse = {"base": _seeds((0.6, 0.2)), "cand": _seeds((0.5, 0.2))}
    assert select_confirmed(worse, "base", "val/mean_fg_dice", "max", None, CLASSES) == "base"
    tie = {"base": _seeds((0.6, 0.2)), "cand": _seeds((0.6, 0.2))}
    assert select_confirmed(tie, "base", "val/mean_fg_dice", "max", None, CLASSES) == "base"
    duct_worse = {"base": _seeds((0.6, 0.2)), "cand": _seeds((0.9, 0.1))}
    assert select_confirmed(duct_worse, "base", "val/mean_fg_dice", "max", None, CLASSES) == "cand"
    assert select_confirmed(duct_worse, "base", "val/mean_fg_dice", "max", "no_class_below_baseline", CLASSES) == "base"


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ({"a": [0.8, 0.2], "b": [0.5, 0.5], "c": [0.4, 0.4]}, ["a", "b"]),
        ({"a": [0.8, 0.6], "b": [0.5, 0.5]}, ["a"]),
        ({"a": [0.5, 0.5], "b": [0.5, 0.5]}, ["a", "b"]),
        ({"a": [0.9, 0.1, 0.1], "b": [0.1, 0.9, 0.1], "c": [0.1, 0.1, 0.9], "d": [0.1, 0.1, 0.1]}, ["a", "b", "c"]),
    ],
)
def test_pareto_front(points: dict[str, list[float]], front: list[str]) -> None:
    assert pareto_front(points) == front


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"selection": {"constraint": "no_worse"}}, r"selection.constraint='no_worse': expected null or one of"),
        ({"confirm": {"seeds": 0}}, r"confirm.seeds=0: expected an integer >= 1"),
        ({"confirm": {"top_k": 1.5}}, r"confirm.top_k=1.5: expected an integer >= 1"),
        ({"confirm": {"confidence": 95}}, r"confirm.confidence=95: expected a value in \(0, 1\)"),
        ({"confirm": {"seed": 3}}, r"confirm: unknown keys \['seed'\]"),
        ({"confirm": {"executor": "dask"}}, r"confirm.executor=.dask.: expected .ray. or .local."),
    ],
)
def test_bad_decision_options_are_refused_with_the_field_and_value(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecisionOptions.from_config({"objective": {"metric": "val/mean_fg_dice", "mode": "max"}, **cfg})


def test_confirmation_seeds_start_at_the_sweeps_seed() -> None:
    assert ConfirmOptions(seeds=3).seed_values(7) == [7, 8, 9]

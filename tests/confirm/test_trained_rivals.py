"""The trained rivals: the authors' fixed defaults built on the baseline's contract, a sweep trial
reused when it trained exactly that setting, and bad names refused."""

from __future__ import annotations

import pytest

from asymtune.confirm.options import ConfirmOptions, DecisionOptions
from asymtune.confirm.rivals import RIVAL_TRIAL_PREFIX, RIVALS, check_rivals, rival_trial, rival_trials
from asymtune.method.settings import AsymmetrySettings, authors_default, baseline
from asymtune.report.results import describe_trial
from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY
from asymtune.results.spec import TrialSpec
from asymtune.results.trials import TrialRecord

CLASSES = ("background", "organ", "lesion")


def _trial(trial_id: str, settings: AsymmetrySettings, rare: tuple[int, ...] = (2,), loss: str = "asymmetric",
           history: bool = True) -> TrialRecord:
    spec = TrialSpec(dataset_name="d", dataset={"source": "synth_organs", "params": {}}, class_names=CLASSES,
                     rare=rare, model={"name": "unet"}, train={"seed": 0, "epochs": 3, "loss": loss})
    config = {FIXED_KEY: spec.to_dict(), SETTINGS_KEY: settings.to_dict()}
    return TrialRecord(trial_id, config, settings, history=[{"training_iteration": 3}] if history else [])


def test_authors_defaults_put_each_strength_where_the_paper_does() -> None:
    rare = [False, False, True]
    margin = authors_default(baseline(3), rare, ["margin"])
    assert margin.margin == (0.0, 0.0, 1.0) and margin.gamma == (0.0, 0.0, 0.0) and margin.mixup_alpha == 0
    focal = authors_default(baseline(3), rare, ["focal"])
    assert focal.gamma == (4.0, 4.0, 0.0) and focal.margin == (0.0, 0.0, 0.0)
    mixup = authors_default(baseline(3), rare, ["mixup"])
    assert (mixup.mixup_alpha, mixup.mixup_margin, mixup.rare) == (0.2, 0.2, (False, False, True))
    assert not mixup.is_baseline and not any(mixup.margin) and not any(mixup.gamma)
    combined = authors_default(baseline(3), rare, ["margin", "focal", "mixup"])
    assert (combined.margin, combined.gamma, combined.mixup_alpha) == ((0.0, 0.0, 1.0), (4.0, 4.0, 0.0), 0.2)
    summed = authors_default(AsymmetrySettings((0.0,) * 3, (0.0,) * 3, (False,) * 3, schedule="summed"), rare,
                             ["margin"])
    assert summed.schedule == "summed", "the baseline's other options are kept"
    with pytest.raises(ValueError, match="techniques \\['adversarial'\\]"):
        authors_default(baseline(3), rare, ["adversarial"])


def test_a_rival_is_the_sweep_trial_that_trained_its_setting() -> None:
    base = _trial("base", baseline(3))
    combined = authors_default(baseline(3), [False, False, True], ["margin", "focal", "mixup"])
    anchor = _trial("anchor", combined)
    other = _trial("other", authors_default(baseline(3), [False, True, True], ["margin"]))
    found = rival_trials(["authors_combined", "authors_margin"], base, [base, anchor, other])
    assert found["authors_combined"] is anchor
    stand_in = found["authors_margin"]
    assert stand_in.trial_id == f"{RIVAL_TRIAL_PREFIX}authors_margin" and not stand_in.history
    assert stand_in.settings.margin == (0.0, 0.0, 1.0), "the dataset's rare set (lesion), not the other trial's"
    assert stand_in.spec == base.spec, "trained with the baseline's contract"
    unfinished = _trial("anchor", combined, history=False)
    assert rival_trial(RIVALS["authors_combined"], base, [base, unfinished]).trial_id.startswith(RIVAL_TRIAL_PREFIX)


def test_a_plain_loss_rival_changes_the_loss_only() -> None:
    base = _trial("base", baseline(3))
    rival = rival_trial(RIVALS["weighted_ce"], base, [base])
    assert rival is not None and rival.settings == base.settings
    assert rival.spec.train["loss"] == "weighted_ce" and base.spec.train["loss"] == "asymmetric"


def test_the_logit_offset_rival_is_the_baseline_with_offsets_and_no_sweep_trial() -> None:
    base = _trial("base", baseline(3))
    rival = rival_trial(RIVALS["logit_offset"], base, [base])
    assert rival is not None and rival.trial_id == f"{RIVAL_TRIAL_PREFIX}logit_offset"
    assert rival.settings == base.settings and rival.spec.train == {**base.spec.train, "logit_offsets": True}
    assert "logit_offsets" not in base.spec.train, "the baseline's own config is not touched"
    assert describe_trial(rival, CLASSES) == (
        "baseline (cross-entropy + soft Dice, no asymmetry) + per-class logit offsets fitted on the validation split")
    assert describe_trial(base, CLASSES) == "baseline (cross-entropy + soft Dice, no asymmetry)"
    weighted = rival_trial(RIVALS["weighted_ce"], base, [base])
    assert weighted is not None and describe_trial(weighted, CLASSES) == "loss weighted_ce"
    no_rare = _trial("base", baseline(3), rare=())
    assert list(rival_trials(["logit_offset"], no_rare, [no_rare])) == ["logit_offset"], "not the baseline itself"


def test_a_rival_equal_to_the_baseline_is_left_out() -> None:
    base = _trial("base", baseline(3), rare=())  # no rare class: no margin to add
    found = rival_trials(["authors_margin", "authors_focal"], base, [base])
    assert list(found) == ["authors_focal"] and found["authors_focal"].settings.gamma == (4.0, 4.0, 4.0)


def test_unknown_or_repeated_rivals_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="confirm.rivals: 'authors_adversarial' is not a rival: expected names"):
        check_rivals(["authors_adversarial"])
    with pytest.raises(ValueError, match="named more than once"):
        ConfirmOptions(rivals=["authors_focal", "authors_focal"])
    assert ConfirmOptions().rivals == [
        "authors_margin", "authors_focal", "authors_mixup", "authors_combined", "logit_offset"]


def test_an_older_sweeps_config_has_no_trained_rivals() -> None:
    cfg = {"objective": {"metric": "val/mean_fg_dice", "mode": "max"}, "confirm": {"seeds": 2}}
    assert DecisionOptions.from_config(cfg).confirm.rivals == []
    cfg["confirm"]["rivals"] = ["authors_mixup"]
    assert DecisionOptions.from_config(cfg).confirm.rivals == ["authors_mixup"]

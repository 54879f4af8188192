"""Per-class settings: the paper's mapping, validation, round trips."""

from __future__ import annotations

import pytest

from asymtune.method.settings import AsymmetrySettings, baseline, from_paper_form


def test_paper_form_maps_to_per_class_vectors() -> None:
    settings = from_paper_form(3, [False, True, False], margin=1.5, gamma=4.0)
    assert settings.margin == (0.0, 1.5, 0.0)  # m_j = m r_j
    assert settings.gamma == (4.0, 0.0, 4.0)  # gamma_j = gamma (1 - r_j)
    assert not settings.is_baseline
    assert baseline(3).is_baseline


def test_round_trip_and_flat_params() -> None:
    settings = from_paper_form(2, [False, True], margin=1.0, gamma=2.0, mixup_alpha=0.2, mixup_margin=0.2)
    assert AsymmetrySettings.from_dict(settings.to_dict()) == settings
    params = settings.flat_params(("background", "lesion"))
    assert params["margin.lesion"] == 1.0 and params["gamma.background"] == 2.0 and params["rare.lesion"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": (0.0, -1.0)}, r"margin\[1\]=-1.0"),
        ({"gamma": (0.0,)}, "one value per class"),
        ({"mixup_margin": 1.0}, "mixup_margin=1.0"),
        ({"schedule": "joint"}, "schedule='joint'"),
        ({"aug_p_bg": 2.0}, "aug_p_bg=2.0"),
    ],
)
def test_bad_values_are_refused_with_their_name(kwargs: dict, message: str) -> None:
    values = {"margin": (0.0, 0.0), "gamma": (0.0, 0.0), "rare": (False, True), **kwargs}
    with pytest.raises(ValueError, match=message):
        AsymmetrySettings(**values)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        AsymmetrySettings.from_dict({"margin": [0, 0], "gamma": [0, 0], "rare": [0, 0], "focal": 1})


def test_every_class_rare_is_the_symmetric_control() -> None:
    # method.md section 2: r = all ones, background included, is the symmetric margin / adversarial /
    # augmentation control; the paper form then puts the margin on every class and no focal factor.
    margin = from_paper_form(3, [True, True, True], margin=1.0, gamma=4.0)
    assert margin.rare == (True, True, True)
    assert margin.margin == (1.0, 1.0, 1.0) and margin.gamma == (0.0, 0.0, 0.0)
    assert not margin.is_baseline
    assert not from_paper_form(3, [True] * 3, adv_eps=10.0).is_baseline
    assert from_paper_form(3, [True] * 3).is_baseline  # a rare set alone changes nothing
    assert AsymmetrySettings.from_dict(margin.to_dict()) == margin

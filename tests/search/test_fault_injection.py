"""The test-only fault injection: off by default, never read from the user's config."""

from __future__ import annotations

import math

import pytest
import torch

from asymtune.method import create_loss
from asymtune.search.faults import FAULTS_ENV, Faults, InjectedFault


def test_no_faults_without_the_environment_variable() -> None:
    faults = Faults.from_environment({})
    assert not faults.active and faults.for_trial(is_baseline=True) == Faults()


def test_unknown_fault_key_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['nan_at'\]"):
        Faults.from_environment({FAULTS_ENV: '{"nan_at": 2}'})


def test_only_baseline_spares_other_trials() -> None:
    faults = Faults.from_environment({FAULTS_ENV: '{"raise_at_epoch": 2, "only_baseline": true}'})
    assert faults.for_trial(is_baseline=False) == Faults()
    baseline = faults.for_trial(is_baseline=True)
    baseline.check_epoch(1)
    with pytest.raises(InjectedFault, match="epoch 2"):
        baseline.check_epoch(2)


def test_poisoned_loss_is_nan_from_the_given_epoch_on() -> None:
    loss = create_loss("ce_dice", num_classes=2)
    epoch = {"now": 1}
    Faults(nan_at_epoch=2).poison_loss(loss, lambda: epoch["now"])
    logits, target = torch.randn(1, 2, 4, 4), torch.randint(0, 2, (1, 4, 4))
    assert math.isfinite(float(loss(logits, target)))
    epoch["now"] = 2
    assert math.isnan(float(loss(logits, target)))

"""The logit-offset rival: offsets fitted on validation by coordinate search, hand-checked."""

from __future__ import annotations

import numpy as np
import torch

from asymtune.train.offsets import apply_offsets, cross_fitted_logits, fit_logit_offsets


def test_an_under_called_class_gets_the_offset_that_recovers_it() -> None:
    # class 1 wins only where its logit beats 2.0; voxel 2 (1.5) needs b > 0.5, voxel 1 (1.0) needs b < 1.0
    logits = torch.tensor([[[[2.0, 2.0, 2.0, 2.0]], [[1.0, 1.5, 2.5, 3.0]]]])  # (N=1, C=2, 1, 4)
    labels = np.array([[[0, 1, 1, 1]]])
    assert fit_logit_offsets(logits, labels) == [0.0, 0.75]


def test_a_model_that_needs_no_offset_keeps_zero() -> None:
    logits = torch.tensor([[[[3.0, 0.0]], [[0.0, 3.0]]]])
    assert fit_logit_offsets(logits, np.array([[[0, 1]]])) == [0.0, 0.0]


def test_each_class_is_fitted_with_the_others_held() -> None:
    # voxel 0 (truth 1) goes to class 2 (1.2 > 1.0): class 1 needs b_1 > 0.2 (and <= 2, else it takes
    # voxel 1, truth 0), so b_1 = 0.25; class 2 then keeps every voxel right with b_2 in (-1.75, 0.05]: 0
    logits = torch.tensor([[[[0.0, 2.0, 0.0]], [[1.0, 0.0, 0.0]], [[1.2, 0.0, 2.0]]]])
    labels = np.array([[[1, 0, 2]]])
    offsets = fit_logit_offsets(logits, labels)
    assert offsets == [0.0, 0.25, 0.0]
    shifted = apply_offsets(logits, offsets)
    assert isinstance(shifted, torch.Tensor) and shifted.argmax(1).tolist() == [[[1, 0, 2]]]


def test_apply_offsets_to_stacked_and_per_case_logits() -> None:
    stacked = torch.zeros(2, 3, 4, 4)
    shifted = apply_offsets(stacked, [0.0, 1.0, -2.0])
    assert isinstance(shifted, torch.Tensor) and shifted.shape == stacked.shape
    assert shifted[:, 1].eq(1.0).all() and shifted[:, 2].eq(-2.0).all() and shifted[:, 0].eq(0.0).all()
    cases = apply_offsets([torch.zeros(3, 2, 2, 2), torch.zeros(3, 5, 5, 5)], [0.0, 0.5, 0.25])
    assert [tuple(c.shape) for c in cases] == [(3, 2, 2, 2), (3, 5, 5, 5)] and float(cases[1][2].mean()) == 0.25


def test_cross_fitting_shifts_each_item_by_the_other_folds_offsets() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 4, 4, generator=generator)  # (N=5, C=3, 4, 4)
    labels = torch.randint(0, 3, (5, 4, 4), generator=generator).numpy()
    shifted = cross_fitted_logits(logits, labels)
    for fold in (0, 1):
        rest = [i for i in range(5) if i % 2 != fold]
        offsets = fit_logit_offsets([logits[i] for i in rest], [labels[i] for i in rest])
        for i in range(fold, 5, 2):
            expected = logits[i] + torch.tensor(offsets).view(3, 1, 1)
            assert torch.equal(shifted[i], expected), f"item {i}: offsets of the other fold {offsets}"
    relabelled = labels.copy()
    relabelled[[0, 2, 4]] = 1  # fold 0's own labels changed: its shifts cannot move, fold 1's do
    again = cross_fitted_logits(logits, relabelled)
    assert all(torch.equal(again[i], shifted[i]) for i in (0, 2, 4))
    assert not all(torch.equal(again[i], shifted[i]) for i in (1, 3))


def test_cross_fitting_a_single_item_leaves_it_unshifted() -> None:
    case = torch.tensor([[[2.0, 2.0]], [[1.5, 1.0]]])  # (C=2, 1, 2): offsets fitted on it would move it
    assert fit_logit_offsets([case], [np.array([[1, 0]])]) == [0.0, 0.75]
    (alone,) = cross_fitted_logits([case], [np.array([[1, 0]])])
    assert torch.equal(alone, case)

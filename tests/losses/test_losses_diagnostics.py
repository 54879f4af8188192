"""Boundary distances and the logit-shift summary (method.md section 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from asymtune.losses import boundary_distance, logit_shift_summary


def test_boundary_distance_by_hand() -> None:
    # One sample, three classes, four voxels (columns).
    logits = torch.tensor(
        [
            [
                [2.0, 0.0, 1.0, -1.0],  # z_0
                [1.0, 3.0, 1.5, 0.0],  # z_1
                [0.0, 1.0, 4.0, 0.5],  # z_2
            ]
        ]
    )
    target = torch.tensor([[0, 1, 2, 1]])
    assert boundary_distance(logits, target, 0).tolist() == [2.0 - 1.0]
    assert boundary_distance(logits, target, 1).tolist() == [3.0 - 1.0, 0.0 - 0.5]
    assert boundary_distance(logits, target, 2).tolist() == [4.0 - 1.5]


def test_boundary_distance_spatial_and_batch_order() -> None:
    logits = torch.zeros(2, 2, 2, 2)
    logits[:, 1] = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    target = torch.ones(2, 2, 2, dtype=torch.long)
    target[0, 0, 1] = 0
    target[1, 1, 0] = -1  # ignored voxels are of no class
    assert boundary_distance(logits, target, 1).tolist() == [1.0, 3.0, 4.0, 5.0, 6.0, 8.0]
    assert boundary_distance(logits, target, 0).tolist() == [-2.0]


def test_boundary_distance_of_an_absent_class_is_empty() -> None:
    distances = boundary_distance(torch.randn(1, 3, 4), torch.zeros(1, 4, dtype=torch.long), 2)
    assert distances.shape == (0,) and distances.dtype == torch.float32


def test_boundary_distance_rejects_bad_class() -> None:
    with pytest.raises(ValueError, match=r"cls = 3 .*\[0, 2\]"):
        boundary_distance(torch.randn(1, 3, 4), torch.zeros(1, 4, dtype=torch.long), 3)


def test_logit_shift_summary_by_hand() -> None:
    train = torch.tensor([1.0, 2.0, 3.0, 4.0])  # median 2.5, no negative
    val = np.array([-1.0, 0.5, 2.0])  # median 0.5, one negative in three
    summary = logit_shift_summary(train, val)
    assert summary["median_train"] == 2.5
    assert summary["median_val"] == 0.5
    assert summary["shift"] == 2.0
    assert summary["frac_negative_train"] == 0.0
    assert summary["frac_negative_val"] == pytest.approx(1 / 3)
    # W1 = integral |F_train - F_val|: on [-1, 0.5) 1/3, [0.5, 1) 2/3, [1, 2) 2/3 - 1/4,
    # [2, 3) 1 - 2/4, [3, 4) 1 - 3/4.
    expected = 1.5 / 3 + 0.5 * 2 / 3 + (2 / 3 - 1 / 4) + 0.5 + 0.25
    assert summary["wasserstein"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("u", "v", "expected"),
    [([0.0, 1.0], [1.0, 2.0], 1.0), ([0.0], [0.0, 2.0], 1.0), ([3.0, 3.0], [3.0], 0.0)],
)
def test_wasserstein_simple_cases(u: list[float], v: list[float], expected: float) -> None:
    assert logit_shift_summary(u, v)["wasserstein"] == pytest.approx(expected)


def test_wasserstein_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=57), rng.normal(0.4, 2.0, size=31)
    assert logit_shift_summary(u, v)["wasserstein"] == pytest.approx(stats.wasserstein_distance(u, v))


def test_empty_inputs_give_nan_fields() -> None:
    summary = logit_shift_summary([], [1.0, -1.0])
    assert math.isnan(summary["median_train"]) and math.isnan(summary["frac_negative_train"])
    assert math.isnan(summary["shift"]) and math.isnan(summary["wasserstein"])
    assert summary["median_val"] == 0.0 and summary["frac_negative_val"] == 0.5
    assert all(math.isnan(value) for value in logit_shift_summary([], []).values())

"""Sliding-window inference and per-case metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import torch

from asymtune.models import UNet
from asymtune.train.case_metrics import case_metrics_dict, case_scores, hd95
from asymtune.train.inference import sliding_window_logits


def test_one_window_equals_a_single_forward_pass() -> None:
    torch.manual_seed(0)
    net = UNet(3, 2, 3, base_channels=4, depth=2).eval()
    volume = torch.randn(2, 16, 24, 16)
    with torch.no_grad():
        direct = net(volume[None])[0]
        windowed = sliding_window_logits(net, volume.numpy(), (16, 24, 16), batch_size=2, device=torch.device("cpu"))
    assert windowed.shape == (3, 16, 24, 16)
    torch.testing.assert_close(windowed, direct, rtol=1e-5, atol=1e-5)


def test_windows_cover_a_larger_case_and_blend_a_constant_exactly() -> None:
    # a predictor whose output is the same everywhere: the Gaussian-weighted average must return it
    def constant(windows: torch.Tensor) -> torch.Tensor:
        return torch.ones(windows.shape[0], 2, *windows.shape[2:]) * torch.tensor([1.5, -0.5]).view(1, 2, 1, 1)

    image = np.zeros((1, 50, 37), dtype=np.float32)
    logits = sliding_window_logits(constant, image, (16, 16), batch_size=4, device=torch.device("cpu"))
    assert logits.shape == (2, 50, 37)
    torch.testing.assert_close(logits[0], torch.full((50, 37), 1.5))
    torch.testing.assert_close(logits[1], torch.full((50, 37), -0.5))


def test_windows_see_the_image_where_it_is() -> None:
    # the identity network: the windowed output must equal the input, voxel for voxel
    image = np.random.default_rng(0).normal(size=(1, 40, 33)).astype(np.float32)
    logits = sliding_window_logits(lambda x: x, image, (16, 16), batch_size=3, device=torch.device("cpu"))
    np.testing.assert_allclose(logits[0].numpy(), image[0], rtol=1e-5, atol=1e-5)


def test_hd95_of_two_points_is_their_distance_in_mm() -> None:
    prediction = torch.zeros(10, 10, dtype=torch.int64)
    target = torch.zeros(10, 10, dtype=torch.int64)
    prediction[2, 2] = 1
    target[2, 5] = 1  # 3 voxels apart along the second axis
    assert hd95(prediction, target, 2, spacing=(1.0, 1.0))[0] == 3.0
    assert hd95(prediction, target, 2, spacing=(1.0, 2.0))[0] == 6.0


def test_hd95_of_a_shifted_square() -> None:
    prediction = torch.zeros(20, 20, dtype=torch.int64)
    target = torch.zeros(20, 20, dtype=torch.int64)
    target[5:10, 5:10] = 1
    prediction[5:10, 7:12] = 1  # shifted by 2 columns: every surface point is at most 2 away
    assert hd95(prediction, target, 2, spacing=(1.0, 1.0))[0] == 2.0


def test_hd95_conventions_for_absent_classes() -> None:
    empty = torch.zeros(6, 8, dtype=torch.int64)
    one = empty.clone()
    one[1, 1] = 1
    assert hd95(empty, empty, 2, (1.0, 1.0))[0] == 0.0
    diagonal = math.sqrt(6**2 + (8 * 0.5) ** 2)
    assert hd95(empty, one, 2, (1.0, 0.5))[0] == diagonal
    assert hd95(one, empty, 2, (1.0, 0.5))[0] == diagonal


def test_case_scores_and_their_means() -> None:
    target = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 2]])
    prediction = torch.tensor([[0, 1, 0, 2], [1, 0, 1, 2]])
    scores = case_scores(prediction, target, 3, (1.0, 1.0))
    # class 1: tp 2, fp 1, fn 1 -> Dice 4/6, sensitivity 2/3, precision 2/3; class 2 exact
    np.testing.assert_allclose(scores["dice"], [4 / 6, 1.0])
    np.testing.assert_allclose(scores["sensitivity"], [2 / 3, 1.0])
    np.testing.assert_allclose(scores["precision"], [2 / 3, 1.0])
    assert scores["hd95"][1] == 0.0
    other = {"dice": np.array([0.0, 1.0]), "sensitivity": np.array([0.0, 1.0]),
             "precision": np.array([0.0, 1.0]), "hd95": np.array([5.0, 1.0])}
    flat = case_metrics_dict([scores, other], ("bg", "a", "b"), "test")
    assert math.isclose(flat["test/case_dice/a"], (4 / 6 + 0.0) / 2)
    assert math.isclose(flat["test/hd95/a"], (scores["hd95"][0] + 5.0) / 2)
    assert math.isclose(flat["test/mean_fg_hd95"], (scores["hd95"][0] + 5.0 + 0.0 + 1.0) / 4)

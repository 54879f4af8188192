"""Numbers and identities of the pure loss functions (method.md 3.1, 3.2, section 7)."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from asymtune.losses import (
    AsymmetricLoss,
    CEDiceLoss,
    WeightedCEDiceLoss,
    asymmetric_ce,
    asymmetric_dice,
    soft_ce,
    soft_dice,
)

SMOOTH = 1e-5


# Two classes, three voxels, written out so that every number below can be checked by hand.
# Voxel logits (z_0, z_1) and true classes.
TINY_LOGITS = [(1.0, 0.0), (0.0, 2.0), (0.5, 0.5)]
TINY_TARGET = [0, 1, 1]


def _tiny_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.tensor(TINY_LOGITS).T.reshape(1, 2, 3)  # (B=1, C=2, N=3)
    return logits, torch.tensor([TINY_TARGET])


def _softmax2(z0: float, z1: float) -> tuple[float, float]:
    e0, e1 = math.exp(z0), math.exp(z1)
    return e0 / (e0 + e1), e1 / (e0 + e1)


def _shifted_probs(margin: list[float]) -> list[tuple[float, float]]:
    probs = []
    for (z0, z1), t in zip(TINY_LOGITS, TINY_TARGET):
        z = [z0, z1]
        z[t] -= margin[t]
        probs.append(_softmax2(*z))
    return probs


def _hand_ce(margin: list[float], gamma: list[float]) -> float:
    total = 0.0
    for (q0, q1), t in zip(_shifted_probs(margin), TINY_TARGET):
        q_t = (q0, q1)[t]
        total += -((1 - q_t) ** gamma[t]) * math.log(q_t)
    return total / len(TINY_TARGET)


def _hand_dice(margin: list[float], gamma: list[float]) -> float:
    tp = fp = fn = fn_focal = 0.0
    for (_, q1), t in zip(_shifted_probs(margin), TINY_TARGET):
        y = 1.0 if t == 1 else 0.0
        tp += q1 * y
        fp += q1 * (1 - y)
        fn += (1 - q1) * y
        fn_focal += (1 - q1) * y * (1 - q1) ** gamma[1]
    return (fp + fn_focal + SMOOTH) / (2 * tp + fp + fn + SMOOTH)


def test_ce_pinned_number() -> None:
    # margin 1 on class 1, gamma 2 on class 0, computed by hand:
    # v0: q_0 = e/(e+1), factor (1/(e+1))^2;  v1: logits (0, 1), q_1 = e/(1+e);
    # v2: logits (0.5, -0.5), q_1 = 1/(e+1).
    e = math.e
    expected = (
        -((1 / (e + 1)) ** 2) * math.log(e / (e + 1))
        - math.log(e / (1 + e))
        - math.log(1 / (e + 1))
    ) / 3
    logits, target = _tiny_inputs()
    loss = asymmetric_ce(logits, target, margin=[0.0, 1.0], gamma=[2.0, 0.0])
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("margin", "gamma"),
    [
        ([0.0, 0.0], [0.0, 0.0]),
        ([0.0, 1.0], [4.0, 0.0]),
        ([0.5, 2.0], [0.0, 0.0]),
        ([0.0, 0.0], [2.0, 3.0]),
        ([0.3, 0.7], [1.5, 2.5]),
    ],
)
def test_ce_and_dice_match_hand_computation(margin: list[float], gamma: list[float]) -> None:
    logits, target = _tiny_inputs()
    assert asymmetric_ce(logits, target, margin, gamma).item() == pytest.approx(
        _hand_ce(margin, gamma), rel=1e-5
    )
    assert asymmetric_dice(logits, target, margin, gamma).item() == pytest.approx(
        _hand_dice(margin, gamma), rel=1e-5
    )


def test_dice_pinned_number() -> None:
    # No margin, no focal: q_1 = (1/(e+1), e^2/(1+e^2), 1/2), y = (0, 1, 1).
    e = math.e
    q = [1 / (e + 1), e**2 / (1 + e**2), 0.5]
    tp, fp, fn = q[1] + q[2], q[0], (1 - q[1]) + (1 - q[2])
    expected = (fp + fn + SMOOTH) / (2 * tp + fp + fn + SMOOTH)
    logits, target = _tiny_inputs()
    assert asymmetric_dice(logits, target, [0.0, 0.0], [0.0, 0.0]).item() == pytest.approx(
        expected, rel=1e-6
    )


def _random_inputs(
    seed: int = 0, shape: tuple[int, ...] = (2, 3, 5, 4, 3)
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(shape, generator=generator)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator)
    target[0, 0] = -1  # some ignored voxels
    return logits, target


def _reference_soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -1
) -> torch.Tensor:
    """1 - 2TP / (2TP + FP + FN + s) per foreground class, batch sums, ignored voxels dropped."""
    num_classes = logits.shape[1]
    probs = logits.float().softmax(1).movedim(1, -1)[target != ignore_index]  # (M, C)
    one_hot = F.one_hot(target[target != ignore_index], num_classes).float()  # (M, C)
    tp = (probs * one_hot).sum(0)
    fp = (probs * (1 - one_hot)).sum(0)
    fn = ((1 - probs) * one_hot).sum(0)
    dice = 2 * tp / (2 * tp + fp + fn + SMOOTH)
    return (1 - dice)[1:].mean()


def test_zero_margin_zero_gamma_is_cross_entropy() -> None:
    logits, target = _random_inputs()
    zeros = [0.0, 0.0, 0.0]
    expected = F.cross_entropy(logits, target, ignore_index=-1)
    assert asymmetric_ce(logits, target, zeros, zeros).item() == pytest.approx(expected.item(), abs=1e-6)
    # Tensors are accepted as well as sequences.
    tensor_zeros = torch.zeros(3)
    assert asymmetric_ce(logits, target, tensor_zeros, tensor_zeros).item() == pytest.approx(
        expected.item(), abs=1e-6
    )


def test_zero_gamma_dice_is_one_minus_soft_dice() -> None:
    logits, target = _random_inputs()
    expected = _reference_soft_dice_loss(logits, target)
    for gamma in ([0.0, 0.0, 0.0], torch.zeros(3)):
        loss = asymmetric_dice(logits, target, [0.0, 0.0, 0.0], gamma)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_all_rare_margin_is_the_symmetric_margin() -> None:
    logits, target = _random_inputs(seed=1)
    m = 0.7
    loss_module = AsymmetricLoss.from_rare_classes([1, 1, 1], margin=m, gamma=4.0)
    assert loss_module.margin.tolist() == pytest.approx([m, m, m])
    assert loss_module.gamma.tolist() == [0.0, 0.0, 0.0]
    # Symmetric large margin: every voxel's true logit lowered by m.
    valid = target != -1
    one_hot = F.one_hot(target.clamp_min(0), 3).movedim(-1, 1).float() * valid.unsqueeze(1)
    shifted = logits - m * one_hot
    expected_ce = F.cross_entropy(shifted, target, ignore_index=-1)
    expected_dice = _reference_soft_dice_loss(shifted, target)
    assert asymmetric_ce(logits, target, [m] * 3, [0.0] * 3).item() == pytest.approx(
        expected_ce.item(), abs=1e-6
    )
    assert asymmetric_dice(logits, target, [m] * 3, [0.0] * 3).item() == pytest.approx(
        expected_dice.item(), abs=1e-6
    )
    assert loss_module(logits, target).item() == pytest.approx(
        (expected_ce + expected_dice).item(), abs=1e-5
    )


def _reference_focal(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Ordinary focal loss (Lin et al.) without alpha, mean over non-ignored voxels."""
    valid = target != -1
    log_p = logits.float().log_softmax(1)
    log_pt = log_p.gather(1, target.clamp_min(0).unsqueeze(1)).squeeze(1)[valid]
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


@pytest.mark.parametrize("gamma", [0.5, 2.0, 4.0])
def test_no_rare_class_focal_is_ordinary_focal(gamma: float) -> None:
    logits, target = _random_inputs(seed=2)
    loss_module = AsymmetricLoss.from_rare_classes([0, 0, 0], margin=1.0, gamma=gamma, dice_weight=0.0)
    assert loss_module.gamma.tolist() == pytest.approx([gamma] * 3)
    expected = _reference_focal(logits, target, gamma)
    assert asymmetric_ce(logits, target, [0.0] * 3, [gamma] * 3).item() == pytest.approx(
        expected.item(), rel=1e-5
    )
    assert loss_module(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_rare_class_keeps_plain_cross_entropy() -> None:
    # r = [0, 1]: rare voxels keep -log q, frequent ones get the focal factor.
    logits, target = _tiny_inputs()
    asymmetric = asymmetric_ce(logits, target, [0.0, 0.0], [3.0, 0.0])
    (p0, _), (_, p1), (_, p2) = _shifted_probs([0.0, 0.0])
    expected = (-((1 - p0) ** 3) * math.log(p0) - math.log(p1) - math.log(p2)) / 3
    assert asymmetric.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("function", [asymmetric_ce, asymmetric_dice])
def test_ignored_voxels_do_not_count(function) -> None:  # type: ignore[no-untyped-def]
    logits, target = _random_inputs(seed=3)
    margin, gamma = [0.0, 1.0, 0.5], [3.0, 0.0, 0.0]
    changed = logits.clone()
    changed[:, :, 0] = 100 * torch.randn_like(changed[:, :, 0])  # only where target[0, 0] == -1 ...
    changed[1, :, 0] = logits[1, :, 0]  # ... so restore sample 1
    logits.requires_grad_(True)
    loss = function(logits, target, margin, gamma)
    loss.backward()
    assert function(changed, target, margin, gamma).item() == pytest.approx(loss.item(), abs=1e-6)
    assert logits.grad is not None
    assert torch.all(logits.grad[0, :, 0] == 0)


def test_ignore_index_other_value() -> None:
    logits, target = _random_inputs(seed=4)
    target = target.masked_fill(target == -1, 255)
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert asymmetric_ce(logits, target, [0.0] * 3, [0.0] * 3, ignore_index=255).item() == pytest.approx(
        expected.item(), abs=1e-6
    )


def test_all_ignored_gives_zero_connected_to_graph() -> None:
    logits = torch.randn(1, 2, 4, requires_grad=True)
    target = torch.full((1, 4), -1)
    loss = asymmetric_ce(logits, target, [0.0, 1.0], [2.0, 0.0])
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_logits_are_computed_in_float32(dtype: torch.dtype) -> None:
    logits, target = _random_inputs(seed=5)
    low = logits.to(dtype)
    margin, gamma = [0.0, 1.0, 1.0], [4.0, 0.0, 0.0]
    for function in (asymmetric_ce, asymmetric_dice):
        loss = function(low, target, margin, gamma)
        assert loss.dtype == torch.float32
        expected = function(low.float(), target, margin, gamma)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_gradients_are_finite_for_confident_predictions() -> None:
    logits = torch.tensor([[[30.0, -30.0], [-30.0, 30.0]]], requires_grad=True)  # q_t ~ 1
    target = torch.tensor([[0, 1]])
    loss = asymmetric_ce(logits, target, [0.0, 1.0], [4.0, 0.0]) + asymmetric_dice(
        logits, target, [0.0, 1.0], [4.0, 0.0]
    )
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_soft_targets_with_one_hot_equal_hard_losses() -> None:
    logits, target = _random_inputs(seed=6)
    valid = (target != -1).unsqueeze(1)
    one_hot = F.one_hot(target.clamp_min(0), 3).movedim(-1, 1).float() * valid  # ignored rows all 0
    zeros = [0.0] * 3
    assert soft_ce(logits, one_hot).item() == pytest.approx(
        asymmetric_ce(logits, target, zeros, zeros).item(), abs=1e-6
    )
    assert soft_dice(logits, one_hot).item() == pytest.approx(
        asymmetric_dice(logits, target, zeros, zeros).item(), abs=1e-6
    )


def test_soft_ce_is_linear_in_the_target() -> None:
    logits, target = _random_inputs(seed=7)
    target = target.clamp_min(0)
    other = target.flip(0)
    e_a = F.one_hot(target, 3).movedim(-1, 1).float()
    e_b = F.one_hot(other, 3).movedim(-1, 1).float()
    lam = 0.3
    mixed = soft_ce(logits, lam * e_a + (1 - lam) * e_b)
    expected = lam * F.cross_entropy(logits, target) + (1 - lam) * F.cross_entropy(logits, other)
    assert mixed.item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize(
    ("margin", "gamma", "message"),
    [
        ([0.0, 1.0, 0.0], [0.0, 0.0], "gamma has 2 values"),
        ([0.0], [0.0, 0.0, 0.0], "margin has 1 values"),
        ([0.0, -1.0, 0.0], [0.0, 0.0, 0.0], "margin[1] = -1.0"),
        (torch.zeros(2), torch.zeros(3), "margin has shape (2,)"),
    ],
)
def test_bad_class_vectors_are_rejected(margin: object, gamma: object, message: str) -> None:
    logits, target = _random_inputs()
    with pytest.raises(ValueError, match=re.escape(message)):
        asymmetric_ce(logits, target, margin, gamma)  # type: ignore[arg-type]


def test_shape_mismatch_names_both_shapes() -> None:
    logits = torch.randn(2, 3, 4, 4)
    target = torch.zeros(2, 4, 5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\(2, 4, 5\).*\(2, 3, 4, 4\)"):
        asymmetric_dice(logits, target, [0.0] * 3, [0.0] * 3)
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 5\).*\(2, 3, 4, 4\)"):
        soft_ce(logits, torch.zeros(2, 3, 4, 5))


def _absent_class_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """Class 2 in neither the labels nor the predictions: the Dice ratio of class 2 is s / s."""
    logits = torch.tensor([[[5.0, -5.0], [-5.0, 5.0], [-1e3, -1e3]]])  # (B=1, C=3, N=2)
    return logits, torch.tensor([[0, 1]])


@pytest.mark.parametrize("smooth", [0.0, -1e-5])
@pytest.mark.parametrize(
    "dice",
    [
        lambda logits, target, smooth: asymmetric_dice(logits, target, [0.0] * 3, [0.0] * 3, smooth=smooth),
        lambda logits, target, smooth: soft_dice(logits, F.one_hot(target, 3).movedim(-1, 1).float(), smooth),
        lambda logits, target, smooth: AsymmetricLoss([0.0] * 3, [0.0] * 3, smooth=smooth)(logits, target),
        lambda logits, target, smooth: CEDiceLoss(3, smooth=smooth)(logits, target),
        lambda logits, target, smooth: WeightedCEDiceLoss([1.0] * 3, smooth=smooth)(logits, target),
    ],
    ids=["asymmetric_dice", "soft_dice", "AsymmetricLoss", "CEDiceLoss", "WeightedCEDiceLoss"],
)
def test_smooth_must_be_positive(dice, smooth: float) -> None:  # type: ignore[no-untyped-def]
    # With s = 0 a class absent from labels and predictions has Dice 0 / 0 = NaN.
    logits, target = _absent_class_inputs()
    with pytest.raises(ValueError, match=re.escape(f"smooth = {smooth!r} is invalid; expected a finite value > 0")):
        dice(logits, target, smooth)


def test_default_smooth_keeps_an_absent_class_finite() -> None:
    logits, target = _absent_class_inputs()
    assert torch.isfinite(asymmetric_dice(logits, target, [0.0] * 3, [0.0] * 3))

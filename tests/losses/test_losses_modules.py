"""Loss modules and the registry: every registered loss is tested the day it is added."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asymtune.losses import (
    AsymmetricLoss,
    CEDiceLoss,
    SegmentationLoss,
    UnifiedFocalLoss,
    WeightedCEDiceLoss,
    asymmetric_ce,
    asymmetric_dice,
    create_loss,
    list_losses,
    register_loss,
    soft_ce,
    soft_dice,
)

NUM_CLASSES = 3


# The one set of arguments every registered loss is built from (as the trainer builds it): each loss
# reads what it needs. A new loss that cannot be built from it fails every test below.
UNIFORM_KWARGS: dict[str, Any] = {
    "num_classes": NUM_CLASSES,
    "margin": [0.0, 1.0, 1.0],
    "gamma": [4.0, 0.0, 0.0],
    "class_fractions": [0.8, 0.15, 0.05],
    "ce_weight": 1.0,
    "dice_weight": 1.0,
}
BINARY_KWARGS: dict[str, Any] = {
    **UNIFORM_KWARGS, "num_classes": 2, "margin": [0.0, 1.0], "gamma": [4.0, 0.0], "class_fractions": [0.95, 0.05]
}


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, NUM_CLASSES, 6, 5, generator=generator)
    target = torch.randint(0, NUM_CLASSES, (2, 6, 5), generator=generator)
    target[1, :2] = -1
    return logits, target


def test_the_shipped_losses_are_registered_in_order() -> None:
    assert {"asymmetric", "ce_dice", "unified_focal", "weighted_ce"} <= set(list_losses())
    assert list_losses() == sorted(list_losses())


@pytest.mark.parametrize("name", list_losses())
def test_registered_loss_is_a_finite_differentiable_scalar(name: str) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    assert isinstance(loss_module, SegmentationLoss)
    logits, target = _inputs()
    logits.requires_grad_(True)
    loss = loss_module(logits, target)
    assert loss.shape == () and loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert repr(loss_module)  # extra_repr works


@pytest.mark.parametrize("name", list_losses())
def test_registered_loss_ignores_ignored_voxels(name: str) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    logits, target = _inputs(seed=1)
    changed = logits.clone()
    changed[1, :, :2] = 50 * torch.randn(NUM_CLASSES, 2, 5)
    expected = loss_module(logits, target)
    assert loss_module(changed, target).item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("name", list_losses())
def test_registered_loss_accepts_half_precision(name: str) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    logits, target = _inputs(seed=2)
    loss = loss_module(logits.half(), target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(loss_module(logits.half().float(), target).item(), abs=1e-6)


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize(
    ("logits_shape", "target_shape"),
    [
        ((2, NUM_CLASSES, 6, 5), (2, 6, 4)),  # spatial mismatch
        ((2, NUM_CLASSES, 6, 5), (2, 1, 6, 5)),  # channel dim in the target
        ((2, NUM_CLASSES + 1, 6, 5), (2, 6, 5)),  # wrong number of classes
    ],
)
def test_registered_loss_rejects_wrong_shapes(
    name: str, logits_shape: tuple[int, ...], target_shape: tuple[int, ...]
) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    logits = torch.randn(logits_shape)
    target = torch.zeros(target_shape, dtype=torch.long)
    with pytest.raises(ValueError) as error:
        loss_module(logits, target)
    message = str(error.value)
    assert str(logits_shape) in message
    if target_shape != (2, 6, 5):
        assert str(target_shape) in message
    else:
        assert f"built for {NUM_CLASSES} classes" in message


@pytest.mark.parametrize("name", list_losses())
def test_registered_loss_rejects_float_target(name: str) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    with pytest.raises(ValueError, match="float32"):
        loss_module(torch.randn(1, NUM_CLASSES, 4, 4), torch.zeros(1, 4, 4))


@pytest.mark.parametrize("name", list_losses())
def test_soft_targets_supported_or_refused_clearly(name: str) -> None:
    loss_module = create_loss(name, **UNIFORM_KWARGS)
    assert isinstance(loss_module, SegmentationLoss)
    logits, target = _inputs(seed=3)
    target = target.clamp_min(0)
    one_hot = F.one_hot(target, NUM_CLASSES).movedim(-1, 1).float()
    if not loss_module.supports_soft_targets:
        with pytest.raises(NotImplementedError, match=type(loss_module).__name__):
            loss_module.forward_soft(logits, one_hot)
        return
    soft = loss_module.forward_soft(logits, one_hot)
    assert torch.isfinite(soft)
    with pytest.raises(ValueError, match=re.escape(str(tuple(one_hot[:, :2].shape)))):
        loss_module.forward_soft(logits, one_hot[:, :2])


def test_asymmetric_loss_is_the_weighted_sum_of_its_terms() -> None:
    margin, gamma = [0.0, 1.0, 0.5], [4.0, 0.0, 1.0]
    loss_module = AsymmetricLoss(margin, gamma, ce_weight=0.7, dice_weight=1.3)
    logits, target = _inputs(seed=6)
    expected = 0.7 * asymmetric_ce(logits, target, margin, gamma) + 1.3 * asymmetric_dice(
        logits, target, margin, gamma
    )
    assert loss_module(logits, target).item() == pytest.approx(expected.item(), abs=1e-6)
    ce_only = AsymmetricLoss(margin, gamma, dice_weight=0.0)
    assert ce_only(logits, target).item() == pytest.approx(
        asymmetric_ce(logits, target, margin, gamma).item(), abs=1e-6
    )


def test_ce_dice_soft_and_hard_agree() -> None:
    loss_module = CEDiceLoss(num_classes=NUM_CLASSES)
    logits, target = _inputs(seed=4)
    valid = (target != -1).unsqueeze(1)
    one_hot = F.one_hot(target.clamp_min(0), NUM_CLASSES).movedim(-1, 1).float() * valid
    assert loss_module.forward_soft(logits, one_hot).item() == pytest.approx(
        loss_module(logits, target).item(), abs=1e-6
    )


def test_weighted_ce_matches_torch_weighted_cross_entropy() -> None:
    weights = [0.2, 1.0, 3.0]
    loss_module = WeightedCEDiceLoss(weights, dice_weight=0.0)
    logits, target = _inputs(seed=5)
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=-1)
    assert loss_module(logits, target).item() == pytest.approx(expected.item(), abs=1e-6)
    all_ignored = torch.full_like(target, -1)
    assert loss_module(logits, all_ignored).item() == 0.0


def test_weighted_ce_inverse_frequency() -> None:
    loss_module = WeightedCEDiceLoss.from_class_fractions([0.9, 0.09, 0.01])
    weights = loss_module.class_weights.tolist()
    inverse = [1 / 0.9, 1 / 0.09, 1 / 0.01]
    assert weights == pytest.approx([w * 3 / sum(inverse) for w in inverse], rel=1e-6)
    assert sum(weights) / 3 == pytest.approx(1.0)


def test_unified_focal_pinned_number() -> None:
    # Binary, one sample, two voxels: background with p_0 = 1/(1+e), foreground with p_1 = 1/2.
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # (B=1, C=2, N=2)
    target = torch.tensor([[0, 1]])
    delta, gamma, lam, e, eps = 0.6, 0.5, 0.5, math.e, 1e-6
    p0, p1 = 1 / (1 + e), 0.5
    focal = ((1 - delta) * (1 - p0) ** gamma * -math.log(p0) + delta * -math.log(p1)) / 2
    # Background: TP = p0, FN = 1 - p0, FP = 1 - p1 (= 0.5, voxel 2 predicted background).
    tversky_0 = (p0 + eps) / (p0 + delta * (1 - p0) + (1 - delta) * 0.5 + eps)
    # Foreground: TP = p1, FN = 1 - p1, FP = 1 - p0.
    tversky_1 = (p1 + eps) / (p1 + delta * (1 - p1) + (1 - delta) * (1 - p0) + eps)
    focal_tversky = ((1 - tversky_0) + (1 - tversky_1) ** (1 - gamma)) / 2
    expected = lam * focal + (1 - lam) * focal_tversky
    loss = UnifiedFocalLoss(num_classes=2, focal_weight=lam, delta=delta, gamma=gamma)
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_asymmetric_loss_moves_to_the_logits_device_and_keeps_no_state() -> None:
    loss_module = AsymmetricLoss([0.0, 1.0], [2.0, 0.0])
    assert loss_module.state_dict() == {}  # margin and gamma are hyper-parameters
    assert loss_module.margin.dtype == torch.float32


def test_unknown_loss_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown loss 'nope'") as error:
        create_loss("nope", num_classes=2)
    for name in list_losses():
        assert name in str(error.value)


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'asymmetric' is already registered"):
        register_loss("asymmetric")(CEDiceLoss)


@pytest.mark.parametrize(
    ("factory", "kwargs", "message"),
    [
        (AsymmetricLoss, {"margin": [0.0, 1.0], "gamma": [1.0]}, "margin has 2 values"),
        (AsymmetricLoss, {"margin": [1.0], "gamma": [1.0]}, "at least 2 classes"),
        (AsymmetricLoss, {"margin": [0.0, -0.5], "gamma": [0.0, 0.0]}, "margin[1] = -0.5"),
        (AsymmetricLoss, {"margin": [0.0, 0.5], "gamma": [float("nan"), 0.0]}, "gamma[0] = nan"),
        (
            AsymmetricLoss,
            {"margin": [0.0, 0.5], "gamma": [0.0, 0.0], "ce_weight": -1.0},
            "ce_weight = -1.0",
        ),
        (
            AsymmetricLoss,
            {"margin": [0.0, 0.5], "gamma": [0.0, 0.0], "ce_weight": 0.0, "dice_weight": 0.0},
            "ce_weight = 0 and dice_weight = 0",
        ),
        (
            AsymmetricLoss.from_rare_classes,
            {"rare": [0, 2], "margin": 1.0, "gamma": 0.0},
            "rare[1] = 2.0",
        ),
        (CEDiceLoss, {"num_classes": 1}, "num_classes = 1"),
        (WeightedCEDiceLoss, {"class_weights": [1.0, -2.0]}, "class_weights[1] = -2.0"),
        (WeightedCEDiceLoss, {"class_weights": [0.0, 0.0]}, "class_weights = [0.0, 0.0]"),
        (WeightedCEDiceLoss.from_class_fractions, {"fractions": [1.0, 0.0]}, "fractions[1] = 0.0"),
        (UnifiedFocalLoss, {"num_classes": 2, "delta": 1.0}, "delta = 1.0"),
        (UnifiedFocalLoss, {"num_classes": 2, "gamma": 1.5}, "gamma = 1.5"),
        (UnifiedFocalLoss, {"num_classes": 2, "focal_weight": -0.1}, "focal_weight = -0.1"),
        (UnifiedFocalLoss, {"num_classes": 0}, "num_classes = 0"),
    ],
)
def test_bad_options_raise_value_error_naming_the_value(
    factory: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        factory(**kwargs)


def _toy_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """A 16x16 image with a 4x4 bright square (the small class) in noise; fixed seed."""
    generator = torch.Generator().manual_seed(0)
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    target[0, 5:9, 9:13] = 1
    image = target.unsqueeze(1).float() + 0.3 * torch.randn(1, 1, 16, 16, generator=generator)
    return image, target


def _foreground_dice(logits: torch.Tensor, target: torch.Tensor) -> float:
    predicted = logits.argmax(1) == 1
    truth = target == 1
    return 2 * (predicted & truth).sum().item() / max(predicted.sum().item() + truth.sum().item(), 1)


@pytest.mark.parametrize("name", list_losses())
def test_tiny_network_learns_the_square(name: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1))
    loss_module = create_loss(name, **BINARY_KWARGS)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    image, target = _toy_problem()
    with torch.no_grad():
        assert _foreground_dice(model(image), target) < 0.5  # nothing learnt yet
    for _ in range(40):
        optimiser.zero_grad()
        loss_module(model(image), target).backward()
        optimiser.step()
    with torch.no_grad():
        assert _foreground_dice(model(image), target) > 0.8


def _one_hot_with_ignored(target: torch.Tensor) -> torch.Tensor:
    valid = (target != -1).unsqueeze(1)
    return F.one_hot(target.clamp_min(0), NUM_CLASSES).movedim(-1, 1).float() * valid  # ignored rows all 0


@pytest.mark.parametrize(
    ("margin", "gamma"),
    [([0.0, 1.0, 0.5], [4.0, 0.0, 1.0]), ([0.7, 0.7, 0.7], [0.0, 0.0, 0.0]), ([0.0, 0.0, 0.0], [2.0, 2.0, 2.0])],
)
def test_soft_loss_of_one_hot_targets_is_the_hard_loss(margin: list[float], gamma: list[float]) -> None:
    # Symmetric mixup keeps margin and focal (method.md 3.6): one-hot soft targets give the hard loss.
    loss_module = AsymmetricLoss(margin, gamma, ce_weight=0.7, dice_weight=1.3)
    logits, target = _inputs(seed=8)
    assert loss_module.forward_soft(logits, _one_hot_with_ignored(target)).item() == pytest.approx(
        loss_module(logits, target).item(), abs=1e-6
    )


def _reference_soft_loss(
    logits: torch.Tensor, soft: torch.Tensor, margin: list[float], gamma: list[float]
) -> torch.Tensor:
    """CE + focal Dice against soft targets, written out voxel by voxel (method.md 3.1, 3.2, 3.6)."""
    m = torch.tensor(margin).view(1, -1, 1, 1)
    g = torch.tensor(gamma).view(1, -1, 1, 1)
    q = (logits - soft * m).softmax(1)  # z' = z - y m
    valid = soft.sum(1) > 0
    ce = -(soft * (1 - q) ** g * q.log()).sum(1)[valid].mean()
    tp = (q * soft).sum((0, 2, 3))
    fp = (q * (1 - soft) * valid.unsqueeze(1)).sum((0, 2, 3))
    fn = ((1 - q) * soft).sum((0, 2, 3))
    fn_focal = ((1 - q) * soft * (1 - q) ** g).sum((0, 2, 3))
    dice = (fp + fn_focal + 1e-5) / (2 * tp + fp + fn + 1e-5)
    return ce + dice[1:].mean()


def test_soft_loss_applies_margin_and_focal_to_mixed_targets() -> None:
    margin, gamma = [0.0, 1.0, 0.5], [4.0, 0.0, 1.0]
    logits, target = _inputs(seed=9)
    one_hot = _one_hot_with_ignored(target)
    soft = 0.3 * one_hot + 0.7 * one_hot.flip(0)
    soft = soft * (one_hot.sum(1, keepdim=True) * one_hot.flip(0).sum(1, keepdim=True))  # ignored if either is
    loss = AsymmetricLoss(margin, gamma).forward_soft(logits, soft)
    assert loss.item() == pytest.approx(_reference_soft_loss(logits, soft, margin, gamma).item(), rel=1e-5)
    plain = CEDiceLoss(NUM_CLASSES).forward_soft(logits, soft)
    assert abs(loss.item() - plain.item()) > 1e-3  # the margin and the focal factor act


def test_soft_loss_without_margin_and_focal_is_soft_ce_plus_soft_dice() -> None:
    logits, target = _inputs(seed=10)
    one_hot = _one_hot_with_ignored(target)
    soft = 0.4 * one_hot + 0.6 * one_hot.flip(0)
    zeros = [0.0] * NUM_CLASSES
    loss = AsymmetricLoss(zeros, zeros, ce_weight=0.7, dice_weight=1.3).forward_soft(logits, soft)
    expected = 0.7 * soft_ce(logits, soft) + 1.3 * soft_dice(logits, soft)
    assert loss.item() == expected.item()  # bit-identical: the baseline's symmetric mixup is unchanged


# What create_loss(name, **UNIFORM_KWARGS with weights 0.7 and 1.3) must build, module by module.
DIRECT_MODULES: dict[str, Any] = {
    "asymmetric": lambda: AsymmetricLoss([0.0, 1.0, 1.0], [4.0, 0.0, 0.0], ce_weight=0.7, dice_weight=1.3),
    "ce_dice": lambda: CEDiceLoss(NUM_CLASSES, ce_weight=0.7, dice_weight=1.3),
    "weighted_ce": lambda: WeightedCEDiceLoss.from_class_fractions([0.8, 0.15, 0.05], ce_weight=0.7, dice_weight=1.3),
    "unified_focal": lambda: UnifiedFocalLoss(NUM_CLASSES),  # has no CE / Dice weights
}


@pytest.mark.parametrize(("name", "direct"), DIRECT_MODULES.items())
def test_registered_factory_builds_the_module_from_the_uniform_arguments(name: str, direct: Any) -> None:
    created = create_loss(name, **{**UNIFORM_KWARGS, "ce_weight": 0.7, "dice_weight": 1.3})
    expected = direct()
    assert type(created) is type(expected) and repr(created) == repr(expected)
    logits, target = _inputs(seed=11)
    assert created(logits, target).item() == expected(logits, target).item()


def test_every_registered_loss_has_its_direct_module() -> None:
    assert set(DIRECT_MODULES) == set(list_losses())


@pytest.mark.parametrize("name", list_losses())
def test_class_fractions_are_computed_only_for_a_loss_that_reads_them(name: str) -> None:
    calls = []

    def fractions() -> list[float]:
        calls.append(1)
        return [0.8, 0.15, 0.05]

    create_loss(name, **{**UNIFORM_KWARGS, "class_fractions": fractions})
    assert len(calls) == (1 if name == "weighted_ce" else 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": [0.0, 1.0]}, "margin has 2 values [0.0, 1.0]; expected num_classes = 3"),
        ({"gamma": [0.0] * 4}, "gamma has 4 values [0.0, 0.0, 0.0, 0.0]; expected num_classes = 3"),
        ({"num_classes": 1}, "num_classes = 1 is invalid"),
    ],
)
@pytest.mark.parametrize("name", list_losses())
def test_uniform_arguments_are_checked_for_every_loss(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_loss(name, **{**UNIFORM_KWARGS, **kwargs})


def test_weighted_ce_without_class_fractions_is_refused() -> None:
    with pytest.raises(ValueError, match="loss 'weighted_ce' needs class_fractions"):
        create_loss("weighted_ce", num_classes=NUM_CLASSES)
    with pytest.raises(ValueError,
                       match=re.escape("class_fractions has 2 values [0.5, 0.5]; expected num_classes = 3")):
        create_loss("weighted_ce", num_classes=NUM_CLASSES, class_fractions=[0.5, 0.5])

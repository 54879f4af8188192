"""Asymmetric adversarial perturbation (method.md 3.3)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asymtune.losses import adversarial_perturbation

RARE = [False, False, True]  # class 2 rare
EPS = 2.5
XI = 1e-3  # larger than the default so that the probe point differs measurably from x


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1)
    )
    return model.train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(3, 2, 8, 7, generator=generator)
    labels = torch.randint(0, 2, (3, 8, 7), generator=generator)  # frequent classes only ...
    labels[0, 2:4, 3:5] = 2  # ... plus rare voxels in samples 0 and 1
    labels[1, 5, 1] = 2
    labels[1, 0, 0] = -1
    return images, labels


def _perturb(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, rare: list[bool]
) -> torch.Tensor:
    return adversarial_perturbation(
        model, images, labels, rare, eps=EPS, xi=XI, generator=torch.Generator().manual_seed(7)
    )


def test_norm_is_eps_per_sample_and_zero_without_rare_voxels() -> None:
    images, labels = _batch()
    delta = _perturb(_model(), images, labels, RARE)
    assert delta.shape == images.shape and delta.dtype == images.dtype
    assert not delta.requires_grad
    norms = delta.flatten(1).norm(dim=1)
    assert norms[:2].tolist() == pytest.approx([EPS, EPS], rel=1e-4)
    assert norms[2].item() == 0.0  # sample 2 has no rare voxel


def test_labels_of_non_rare_voxels_do_not_matter() -> None:
    images, labels = _batch()
    model = _model()
    changed = labels.clone()
    frequent = labels != 2
    changed[frequent] = 1 - labels[frequent].clamp_min(0)  # swap the frequent classes ...
    changed[0, 0, :3] = -1  # ... and ignore a few frequent voxels
    assert torch.equal(_perturb(model, images, labels, RARE), _perturb(model, images, changed, RARE))


def test_rare_labels_do_matter() -> None:
    images, labels = _batch()
    model = _model()
    changed = labels.clone()
    changed[1, 5, 1] = 0
    changed[1, 6, 6] = 2
    original = _perturb(model, images, labels, RARE)
    assert not torch.allclose(original, _perturb(model, images, changed, RARE))


def _reference_symmetric(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """VAT-style labelled probe on every voxel, written out from method.md 3.3."""
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(7))
    d0 = (XI * noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).requires_grad_(True)
    logits = model(images + d0)
    valid = labels != -1
    probs = logits.softmax(1).movedim(1, -1)[valid]  # (M, C)
    one_hot = F.one_hot(labels[valid], 3).float()
    tp = (probs * one_hot).sum(0)
    fp = (probs * (1 - one_hot)).sum(0)
    fn = ((1 - probs) * one_hot).sum(0)
    dice_loss = (1 - 2 * tp / (2 * tp + fp + fn + 1e-5))[1:].mean()
    loss = F.cross_entropy(logits, labels, ignore_index=-1) + dice_loss
    (gradient,) = torch.autograd.grad(loss, d0)
    return EPS * gradient / gradient.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def test_all_rare_is_the_symmetric_perturbation() -> None:
    images, labels = _batch()
    model = _model()
    expected = _reference_symmetric(model, images, labels)
    delta = _perturb(model, images, labels, [True, True, True])
    assert torch.allclose(delta, expected, atol=1e-5 * EPS)
    assert delta.flatten(1).norm(dim=1).tolist() == pytest.approx([EPS] * 3, rel=1e-4)


def test_model_state_and_gradients_are_left_alone() -> None:
    images, labels = _batch()
    model = _model()
    model(images)  # one ordinary step so the running statistics are not at their defaults
    first, batch_norm = model[0], model[1]
    first.weight.grad = torch.randn_like(first.weight)
    weight_grad = first.weight.grad.clone()
    running = {name: buffer.clone() for name, buffer in batch_norm.named_buffers()}
    _perturb(model, images, labels, RARE)
    assert model.training and batch_norm.training
    for name, buffer in batch_norm.named_buffers():
        assert torch.equal(buffer, running[name]), name
    assert torch.equal(first.weight.grad, weight_grad)
    assert first.bias.grad is None


def test_works_under_no_grad_and_in_eval_mode() -> None:
    images, labels = _batch()
    model = _model().eval()
    with torch.no_grad():
        delta = _perturb(model, images, labels, RARE)
    assert delta.flatten(1).norm(dim=1)[0].item() == pytest.approx(EPS, rel=1e-4)
    assert not model.training


def test_bad_arguments() -> None:
    images, labels = _batch()
    model = _model()
    with pytest.raises(ValueError, match="eps = -1.0"):
        adversarial_perturbation(model, images, labels, RARE, eps=-1.0)
    with pytest.raises(ValueError, match="xi = 0.0"):
        adversarial_perturbation(model, images, labels, RARE, eps=1.0, xi=0.0)
    with pytest.raises(ValueError, match=r"\(3, 8, 6\).*\(3, 2, 8, 7\)"):
        adversarial_perturbation(model, images, labels[:, :, :6], RARE, eps=1.0)


@pytest.mark.parametrize(
    ("rare", "message"),
    [
        (RARE[:2], "rare has 2 flags [False, False] but the model's logits have C = 3 classes"),  # was an IndexError
        ([*RARE, True], "rare has 4 flags [False, False, True, True] but the model's logits have C = 3 classes"),
    ],
)
def test_rare_of_the_wrong_length_is_refused(rare: list[bool], message: str) -> None:
    images, labels = _batch()
    model = _model()
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}
    with pytest.raises(ValueError, match=re.escape(message)):
        adversarial_perturbation(model, images, labels, rare, eps=1.0)
    for name, buffer in model.named_buffers():  # the probe still leaves the statistics alone
        assert torch.equal(buffer, before[name])

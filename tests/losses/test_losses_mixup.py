"""Asymmetric mixup label rule (method.md 3.4) case by case, and the symmetric soft control."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asymtune.losses import (
    MixupBatch,
    mixup_batch,
    mixup_labels,
    soft_ce,
    soft_mixup_batch,
)

IGNORE = -1
# Classes 0 and 1 frequent, 2 and 3 rare.
RARE = [False, False, True, True]


def _mix(pairs: list[tuple[int, int]], lam: float | torch.Tensor, mu: float) -> list[int]:
    label_a = torch.tensor([[a for a, _ in pairs]])
    label_b = torch.tensor([[b for _, b in pairs]])
    return mixup_labels(label_a, label_b, lam, RARE, mu, IGNORE)[0].tolist()


@pytest.mark.parametrize(
    ("a", "b", "lam", "mu", "expected"),
    [
        # a = b: a, whatever lam
        (0, 0, 0.1, 0.2, 0),
        (2, 2, 0.1, 0.2, 2),
        (1, 1, 0.9, 0.2, 1),
        # a rare, b frequent: a if lam > mu
        (2, 0, 0.5, 0.2, 2),
        (2, 0, 0.1, 0.2, IGNORE),
        (3, 1, 0.25, 0.25, IGNORE),  # lam exactly mu: not kept
        # b rare, a frequent: b if 1 - lam > mu
        (0, 3, 0.5, 0.2, 3),
        (0, 3, 0.9, 0.2, IGNORE),
        (1, 2, 0.75, 0.25, IGNORE),  # 1 - lam exactly mu: not kept
        (1, 2, 0.25, 0.25, 2),  # lam exactly mu, 1 - lam = 0.75 > mu
        (3, 1, 0.75, 0.25, 3),  # 1 - lam exactly mu, lam = 0.75 > mu
        # both rare, different: never mixed
        (2, 3, 0.5, 0.2, IGNORE),
        (3, 2, 0.99, 0.0, IGNORE),
        # both frequent, different
        (0, 1, 0.5, 0.2, IGNORE),
        (1, 0, 0.99, 0.0, IGNORE),
        # ignored inputs stay ignored
        (IGNORE, IGNORE, 0.5, 0.2, IGNORE),
        (IGNORE, 0, 0.5, 0.2, IGNORE),
        (0, IGNORE, 0.5, 0.2, IGNORE),
        (2, IGNORE, 0.9, 0.2, IGNORE),
        (IGNORE, 3, 0.1, 0.2, IGNORE),
    ],
)
def test_label_table(a: int, b: int, lam: float, mu: float, expected: int) -> None:
    assert _mix([(a, b)], lam, mu) == [expected]
    # The same with lam given as a per-sample tensor, float32 and float64.
    for dtype in (torch.float32, torch.float64):
        assert _mix([(a, b)], torch.tensor([lam], dtype=dtype), mu) == [expected]


def test_per_sample_lam() -> None:
    label_a = torch.tensor([[2, 0, 0], [2, 0, 0]])
    label_b = torch.tensor([[0, 3, 0], [0, 3, 0]])
    lam = torch.tensor([0.1, 0.9])  # sample 0 keeps b's rare voxel, sample 1 a's
    mixed = mixup_labels(label_a, label_b, lam, RARE, mu=0.2, ignore_index=IGNORE)
    assert mixed.tolist() == [[IGNORE, 3, 0], [2, IGNORE, 0]]
    # Broadcast over several spatial dimensions.
    mixed_3d = mixup_labels(label_a.view(2, 1, 3, 1), label_b.view(2, 1, 3, 1), lam, RARE, 0.2, IGNORE)
    assert mixed_3d.view(2, 3).tolist() == mixed.tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_voxel_is_dropped_by_rounding(dtype: torch.dtype) -> None:
    mu = 0.2
    # lam a few ulps around mu and around 1 - mu.
    steps = torch.arange(-40, 41)
    eps = torch.finfo(dtype).eps
    around_mu = torch.tensor(mu, dtype=dtype) * (1 + steps.to(dtype) * eps)
    around_one_minus_mu = torch.tensor(1 - mu, dtype=dtype) * (1 + steps.to(dtype) * eps)
    lam = torch.cat([around_mu, around_one_minus_mu])  # (B,)
    batch = lam.numel()
    # Every sample: voxel 0 a rare / b frequent, voxel 1 a frequent / b rare.
    label_a = torch.tensor([[2, 0]]).repeat(batch, 1)
    label_b = torch.tensor([[0, 3]]).repeat(batch, 1)
    mixed = mixup_labels(label_a, label_b, lam, RARE, mu, IGNORE)
    exact_mu = Fraction(mu)
    for index, value in enumerate(lam.tolist()):
        exact = Fraction(value)
        expected = [2 if exact > exact_mu else IGNORE, 3 if 1 - exact > exact_mu else IGNORE]
        assert mixed[index].tolist() == expected, f"lam = {value!r}"


def test_mixup_labels_rejects_bad_inputs() -> None:
    labels = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=re.escape("(2, 3)") + ".*" + re.escape("(2, 4)")):
        mixup_labels(labels, torch.zeros(2, 4, dtype=torch.long), 0.5, RARE, 0.2)
    with pytest.raises(ValueError, match="mu = 1.5"):
        mixup_labels(labels, labels, 0.5, RARE, 1.5)
    with pytest.raises(ValueError, match=re.escape("lam has shape (3,)")):
        mixup_labels(labels, labels, torch.ones(3), RARE, 0.2)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(4, 2, 5, 6, generator=generator)
    labels = torch.randint(0, 4, (4, 5, 6), generator=generator)
    labels[0, 0, 0] = IGNORE
    return images, labels


def test_mixup_batch_mixes_with_the_flipped_batch() -> None:
    images, labels = _batch()
    mu = 0.2
    batch = mixup_batch(images, labels, alpha=1.0, mu=mu, rare=RARE, generator=np.random.default_rng(3))
    assert isinstance(batch, MixupBatch)
    assert batch.lam.shape == (4,) and batch.lam.dtype == torch.float32
    assert torch.all(batch.lam >= 0) and torch.all(batch.lam <= 1 - mu)
    expected_lam = torch.from_numpy(np.random.default_rng(3).beta(1.0, 1.0, size=4)).float() * (1 - mu)
    assert torch.allclose(batch.lam, expected_lam)
    weight = batch.lam.view(4, 1, 1, 1)
    assert torch.allclose(batch.images, weight * images + (1 - weight) * images.flip(0))
    assert torch.equal(batch.labels, mixup_labels(labels, labels.flip(0), batch.lam, RARE, mu, IGNORE))
    again = mixup_batch(images, labels, alpha=1.0, mu=mu, rare=RARE, generator=np.random.default_rng(3))
    assert torch.equal(again.labels, batch.labels) and torch.equal(again.images, batch.images)


def test_mixup_batch_rejects_bad_inputs() -> None:
    images, labels = _batch()
    with pytest.raises(ValueError, match="alpha = 0.0"):
        mixup_batch(images, labels, alpha=0.0, mu=0.2, rare=RARE)
    with pytest.raises(ValueError, match=re.escape("(4, 5, 5)") + ".*" + re.escape("(4, 2, 5, 6)")):
        mixup_batch(images, labels[:, :, :5], alpha=1.0, mu=0.2, rare=RARE)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        generator = torch.Generator()
        mixup_batch(images, labels, 1.0, 0.2, RARE, generator=generator)  # type: ignore[arg-type]


def test_mixup_batch_with_torch_global_generator() -> None:
    images, labels = _batch()
    torch.manual_seed(0)
    first = mixup_batch(images, labels, alpha=0.2, mu=0.2, rare=RARE)
    torch.manual_seed(0)
    second = mixup_batch(images, labels, alpha=0.2, mu=0.2, rare=RARE)
    assert torch.equal(first.lam, second.lam)


def test_symmetric_mixup_gives_soft_labels() -> None:
    images, labels = _batch(seed=1)
    rng = np.random.default_rng(0)
    batch = soft_mixup_batch(images, labels, alpha=1.0, num_classes=4, generator=rng)
    lam = torch.from_numpy(np.random.default_rng(0).beta(1.0, 1.0, size=4)).float()
    assert torch.allclose(batch.lam, lam)  # no mixup margin
    assert batch.soft_labels.shape == (4, 4, 5, 6)
    weight = lam.view(4, 1, 1, 1)
    e_a = F.one_hot(labels.clamp_min(0), 4).movedim(-1, 1).float()
    e_b = e_a.flip(0)
    expected = weight * e_a + (1 - weight) * e_b
    ignored = (labels == IGNORE) | (labels.flip(0) == IGNORE)
    expected[ignored.unsqueeze(1).expand_as(expected)] = 0.0
    assert torch.allclose(batch.soft_labels, expected)
    sums = batch.soft_labels.sum(1)
    assert torch.allclose(sums[~ignored], torch.ones(()))
    assert torch.all(sums[ignored] == 0)
    # The soft cross-entropy is lam CE(a) + (1 - lam) CE(b) on the voxels neither input ignores.
    logits = torch.randn(4, 4, 5, 6)
    kept = ~ignored
    per_voxel_a = F.cross_entropy(logits, labels.clamp_min(0), reduction="none")
    per_voxel_b = F.cross_entropy(logits, labels.flip(0).clamp_min(0), reduction="none")
    mixed = weight[:, 0] * per_voxel_a + (1 - weight[:, 0]) * per_voxel_b
    expected_ce = mixed[kept].mean()
    assert soft_ce(logits, batch.soft_labels).item() == pytest.approx(expected_ce.item(), rel=1e-5)


LABELS_WITH_EVERY_CLASS = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])


@pytest.mark.parametrize(
    ("rare", "num_classes", "message"),
    [
        (RARE[:3], None, "labels contain class 3 but rare has 3 flags"),  # was an IndexError
        (RARE[:3], 4, "rare has 3 flags [False, False, True]; expected 4"),  # was an IndexError
        ([*RARE, True], 4, "rare has 5 flags [False, False, True, True, True]; expected 4"),  # was accepted
    ],
)
def test_rare_of_the_wrong_length_is_refused(rare: list[bool], num_classes: int | None, message: str) -> None:
    labels = LABELS_WITH_EVERY_CLASS
    options = {} if num_classes is None else {"num_classes": num_classes}
    with pytest.raises(ValueError, match=re.escape(message)):
        mixup_labels(labels, labels.flip(0), 0.5, rare, 0.2, **options)
    images = torch.randn(2, 1, 4)
    with pytest.raises(ValueError, match=re.escape(message)):
        mixup_batch(images, labels, alpha=1.0, mu=0.2, rare=rare, generator=np.random.default_rng(0), **options)


def test_rare_of_the_right_length_with_num_classes_is_accepted() -> None:
    labels = LABELS_WITH_EVERY_CLASS
    mixed = mixup_labels(labels, labels.flip(0), 0.5, RARE, 0.2, num_classes=4)
    assert torch.equal(mixed, mixup_labels(labels, labels.flip(0), 0.5, RARE, 0.2))

"""Per-class metrics against counts done by hand."""

from __future__ import annotations

import pytest
import torch

from asymtune.train.metrics import confusion_counts, metrics_dict, per_class_scores


def test_counts_and_scores_match_hand_computation() -> None:
    target = torch.tensor([[0, 0, 1, 1, 1, 2]])
    prediction = torch.tensor([[0, 1, 1, 1, 0, 0]])
    counts = confusion_counts(prediction, target, 3)
    assert counts.tp.tolist() == [1, 2, 0]
    assert counts.fp.tolist() == [2, 1, 0]
    assert counts.fn.tolist() == [1, 1, 1]
    scores = per_class_scores(counts)
    assert scores["dice"][1].item() == pytest.approx(4 / 6)  # 2*2 / (2*2 + 1 + 1)
    assert scores["sensitivity"][1].item() == pytest.approx(2 / 3)
    assert scores["precision"][1].item() == pytest.approx(2 / 3)
    # class 2: present in the label, never predicted -> Dice 0, sensitivity 0, precision 0
    assert [scores[m][2].item() for m in ("dice", "sensitivity", "precision")] == [0.0, 0.0, 0.0]


def test_class_absent_everywhere_scores_one() -> None:
    counts = confusion_counts(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long), 2)
    scores = per_class_scores(counts)
    assert [scores[m][1].item() for m in ("dice", "sensitivity", "precision")] == [1.0, 1.0, 1.0]


def test_metrics_dict_names_and_mean() -> None:
    target = torch.tensor([[1, 1, 2, 2]])
    prediction = torch.tensor([[1, 1, 2, 0]])
    flat = metrics_dict(confusion_counts(prediction, target, 3), ("background", "a", "b"), "val")
    assert flat["val/dice/a"] == 1.0
    assert flat["val/dice/b"] == pytest.approx(2 / 3)
    assert flat["val/mean_fg_dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert "val/dice/background" not in flat


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(1, 3\).*\(1, 4\)"):
        confusion_counts(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long), 2)

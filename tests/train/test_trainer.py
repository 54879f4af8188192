"""The trainer: learns, is reproducible, resumes bit-for-bit, stops on a non-finite loss."""

from __future__ import annotations

import pytest
import torch

from asymtune.data import create_dataset
from asymtune.method.settings import baseline, from_paper_form
from asymtune.train.config import TrainConfig
from asymtune.train.trainer import NonFiniteLossError, Trainer

MODEL = {"name": "unet", "base_channels": 4, "depth": 2}


@pytest.fixture(scope="module")
def dataset():
    return create_dataset("synth_lesions", image_size=32, n_train=8, n_val=4, n_test=4)


def _config(**kwargs: object) -> TrainConfig:
    values = {"epochs": 2, "iterations_per_epoch": 3, "batch_size": 4, **kwargs}
    return TrainConfig(**values)  # type: ignore[arg-type]


def test_same_seed_same_result_other_seed_other_result(dataset) -> None:
    settings = from_paper_form(2, [False, True], margin=1.0, gamma=2.0, mixup_alpha=0.2, mixup_margin=0.2)
    first = Trainer(dataset, MODEL, settings, _config()).fit()
    second = Trainer(dataset, MODEL, settings, _config()).fit()
    third = Trainer(dataset, MODEL, settings, _config(seed=1)).fit()
    assert [r.metrics for r in first] == [r.metrics for r in second]
    assert first[-1].metrics["train/loss"] != third[-1].metrics["train/loss"]
    assert "train/loss_mixup" in first[-1].metrics


def test_resume_from_state_equals_uninterrupted_training(dataset) -> None:
    settings = from_paper_form(2, [False, True], margin=1.0, mixup_alpha=0.5, mixup_margin=0.1)
    full = Trainer(dataset, MODEL, settings, _config(epochs=2)).fit()
    interrupted = Trainer(dataset, MODEL, settings, _config(epochs=2))
    interrupted.train_epoch()
    state = interrupted.state_dict()
    resumed = Trainer(dataset, MODEL, settings, _config(epochs=2))
    resumed.load_state_dict(state)
    records = resumed.fit()
    assert len(records) == 1 and records[0].metrics == full[-1].metrics


def test_summed_schedule_takes_one_step(dataset) -> None:
    settings = from_paper_form(2, [False, True], mixup_alpha=0.5, schedule="summed")
    record = Trainer(dataset, MODEL, settings, _config(epochs=1)).fit()[-1]
    assert "train/loss_mixup" not in record.metrics  # one summed step, one loss


def test_non_finite_loss_stops_with_a_clear_error(dataset) -> None:
    trainer = Trainer(dataset, MODEL, baseline(2), _config(epochs=1))
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="clean loss is nan at epoch 1"):
        trainer.train_epoch()


def test_training_improves_the_validation_dice() -> None:
    organs = create_dataset("synth_organs", image_size=32, n_train=8, n_val=4, n_test=4)
    trainer = Trainer(organs, {**MODEL, "base_channels": 8}, baseline(4), _config(epochs=4, iterations_per_epoch=8))
    before = trainer.evaluate(organs.val, "val")["val/dice/organ"]
    after = trainer.fit()[-1].metrics["val/dice/organ"]
    assert after > before + 0.2 and after > 0.6


def test_patches_have_the_configured_size_and_come_from_the_images(dataset) -> None:
    trainer = Trainer(dataset, MODEL, baseline(2), _config(patch_size=[16, 16]))
    images, labels = trainer._sample_batch()
    assert images.shape == (4, 1, 16, 16) and labels.shape == (4, 16, 16)
    full = torch.from_numpy(dataset.train.images)
    found = 0
    for patch in images:
        windows = full.unfold(2, 16, 1).unfold(3, 16, 1)  # (N, 1, H-15, W-15, 16, 16)
        found += bool((windows == patch[0]).flatten(-2).all(-1).any())
    assert found == 4


def test_patch_larger_than_the_image_is_refused(dataset) -> None:
    with pytest.raises(
        ValueError, match=r"train.patch_size=\[64, 64\] does not fit images of spatial shape \[32, 32\]"
    ):
        Trainer(dataset, MODEL, baseline(2), _config(patch_size=[64, 64]))


def test_augmented_patches_with_p_bg_zero_train(dataset) -> None:
    settings = from_paper_form(2, [False, True], gamma=2.0, aug_p_bg=0.0)
    records = Trainer(dataset, MODEL, settings, _config(patch_size=[16, 16], augment=True)).fit()
    assert all(r.metrics["train/loss"] == r.metrics["train/loss"] for r in records)  # finite, not NaN


def test_adversarial_schedule_takes_a_second_step(dataset) -> None:
    settings = from_paper_form(2, [False, True], margin=1.0, adv_eps=2.0)
    record = Trainer(dataset, MODEL, settings, _config(epochs=1)).fit()[-1]
    assert "train/loss_adversarial" in record.metrics


@pytest.mark.parametrize("loss", ["asymmetric", "ce_dice", "weighted_ce", "unified_focal"])
def test_every_registered_loss_can_be_named_by_the_config(dataset, loss: str) -> None:
    from asymtune.losses import list_losses

    assert loss in list_losses()
    record = Trainer(dataset, MODEL, baseline(2), _config(epochs=1, loss=loss)).fit()[-1]
    assert record.metrics["train/loss"] > 0


def test_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="train.loss='dice_only'"):
        _config(loss="dice_only")


def test_cpu_run_ignores_gpu_options_and_cuda_without_gpu_is_refused(dataset) -> None:
    trainer = Trainer(dataset, MODEL, baseline(2), _config(mixed_precision=True, channels_last=True))
    assert trainer.device.type == "cpu" and trainer.amp_dtype is None
    assert trainer.memory_format == torch.contiguous_format
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="train.device='cuda' but no GPU is visible"):
            Trainer(dataset, MODEL, baseline(2), _config(device="cuda"))


def test_evaluation_logits_are_computed_in_float32_under_autocast(dataset) -> None:
    # On CUDA the network runs under a bf16 autocast; logits rounded to bf16 tie at s = 0, so
    # the diagnostics' share of s < 0 would differ from 1 - sensitivity. An outer CPU autocast
    # stands in for it here: evaluation must still see the float32 forward pass.
    trainer = Trainer(dataset, MODEL, baseline(2), _config(epochs=1))
    trainer.model.eval()
    with torch.no_grad():
        reference = trainer.model(torch.from_numpy(dataset.val.images))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = trainer.predict_logits(dataset.val)
    assert isinstance(logits, torch.Tensor) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, reference, rtol=0.0, atol=1e-5)

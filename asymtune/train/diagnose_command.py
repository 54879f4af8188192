"""``asymtune diagnose``: the logit shift of a trained model, as JSON and histograms.

The model is described by a train config (``conf/train.yaml`` shape, e.g. an exported config)
and its weights: a ``state_dict`` saved by ``asymtune train save_model=...`` or a trial
checkpoint's ``state.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from asymtune.method import plot_logit_shift
from asymtune.train.diagnostics import SUMMARY_KEYS, shift_metrics, split_distances
from asymtune.train.factory import build_trainer
from asymtune.train.weights import check_weights_file, load_weights

SPLITS = ("val", "test")


def run_diagnose(
    cfg: Mapping[str, Any], weights: Path, split: str = "test", out_dir: Path | None = None
) -> dict[str, Any]:
    """Boundary-distance summaries per class, training split against ``split``."""
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: expected one of {SPLITS}")
    check_weights_file(weights)  # before the dataset loads
    trainer = build_trainer(cfg)
    dataset = trainer.dataset
    load_weights(trainer.model, weights)
    train = split_distances(trainer, dataset.train)
    held_out = split_distances(trainer, getattr(dataset, split))
    flat = shift_metrics(train, held_out, prefix="diag")
    result: dict[str, Any] = {"dataset": dataset.name, "held_out": split, "classes": {}}
    for name in dataset.class_names[1:]:
        result["classes"][name] = {
            key.replace("val", split): round(flat[f"diag/{key}/{name}"], 6) for key in SUMMARY_KEYS
        }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = plot_logit_shift({dataset.name: {"train": train, split: held_out}}, out_dir / "logit_shift.png")
        result["plot"] = str(path)
    return result

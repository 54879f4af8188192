"""``asymtune diagnose``: the logit shift of a trained model, as JSON and histograms.

The model is described by a train config (``conf/train.yaml`` shape, e.g. an exported config)
and its weights: a ``state_dict`` saved by ``asymtune train save_model=...`` or a trial
checkpoint's ``state.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from asymtune.method import plot_logit_shift
from asymtune.train.diagnostics import SUMMARY_KEYS, shift_metrics, split_distances
from asymtune.train.factory import build_trainer

SPLITS = ("val", "test")


def run_diagnose(
    cfg: Mapping[str, Any], weights: Path, split: str = "test", out_dir: Path | None = None
) -> dict[str, Any]:
    """Boundary-distance summaries per class, training split against ``split``."""
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: expected one of {SPLITS}")
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file: expected a .pt state_dict or a trial state.pt")
    trainer = build_trainer(cfg)
    dataset = trainer.dataset
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = state["model"] if isinstance(state, dict) and "model" in state and "optimizer" in state else state
    try:
        trainer.model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"--weights {weights} do not fit the model of the config: {str(error)[:300]}") from error
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

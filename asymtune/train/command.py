"""``asymtune train``: train one setting from scratch, print its test metrics as one JSON line.

Reads the same shape as ``conf/train.yaml``, which is also what a sweep exports
(``configs/<dataset>.yaml``), so an exported setting is retrained unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from asymtune.train.factory import build_trainer
from asymtune.train.trainer import EpochRecord


def run_train(cfg: Mapping[str, Any], source: str = "config", progress: bool = True) -> dict[str, Any]:
    """Train, evaluate on the test split, return ``{"dataset": ..., "test/...": ...}``.

    Raises:
        ValueError: prefixed with ``source`` when the config does not describe a valid run
            (:func:`~asymtune.train.factory.build_trainer`).
    """
    try:
        trainer = build_trainer(cfg)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from error
    dataset = trainer.dataset
    name = str(cfg["dataset_name"])
    start = time.perf_counter()

    def show(record: EpochRecord) -> None:
        if progress:
            print(
                f"epoch {record.epoch}/{trainer.config.epochs}: loss {record.metrics['train/loss']:.4f} "
                f"val mean fg Dice {record.metrics['val/mean_fg_dice']:.4f}",
                file=sys.stderr,
            )

    trainer.fit(show)
    result: dict[str, Any] = {"dataset": name, "epochs": trainer.epoch}
    result.update(trainer.evaluate(dataset.test, "test", per_case=True))
    result["train_seconds"] = round(time.perf_counter() - start, 2)
    if cfg.get("save_model"):
        path = Path(str(cfg["save_model"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in trainer.model.state_dict().items()}, path)
    return result


def format_result(result: Mapping[str, Any]) -> str:
    """One JSON line, metrics rounded to 6 digits."""
    return json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in result.items()}, sort_keys=False)

"""``asymtune train``: train one setting from scratch, print its test metrics as one JSON line.

Reads the same shape as ``conf/train.yaml``, which is also what a sweep exports
(``configs/<dataset>.yaml``), so an exported setting is retrained unchanged, on this machine or
another: the config names its data portably (``data.root`` relative to ``data.data_dir`` or
``$ASYMTUNE_DATA_DIR``, and ``data.fingerprint``), and data that hashes differently is refused
before training (:mod:`asymtune.data.locate`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from asymtune.data.locate import check_fingerprint, resolve_entry
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import EpochRecord


def run_train(cfg: Mapping[str, Any], source: str = "config", progress: bool = True) -> dict[str, Any]:
    """Train, evaluate on the test split, return ``{"dataset": ..., "test/...": ...}`` (and, with
    ``train.logit_offsets``, ``"logit_offsets": {class: offset}``, fitted on the validation split
    and added to the test logits).

    Raises:
        ValueError: prefixed with ``source`` when the config does not describe a valid run
            (:func:`~asymtune.train.factory.build_trainer`), or when ``data.fingerprint`` is set and
            the data found is not that data (:class:`~asymtune.data.locate.DataMismatchError`).
        FileNotFoundError: prefixed with ``source`` when ``data.root`` is not found.
    """
    try:
        trainer = build_trainer({**cfg, "data": locate_data(cfg["data"])} if "data" in cfg else cfg)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from error
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{source}: {error}") from error
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
    offsets = trainer.calibrate_logit_offsets()  # train.logit_offsets: fitted on validation, used on test
    if offsets is not None:
        result["logit_offsets"] = dict(zip(dataset.class_names[1:], offsets[1:]))
    result.update(trainer.evaluate(dataset.test, "test", per_case=True))
    result["train_seconds"] = round(time.perf_counter() - start, 2)
    if cfg.get("save_model"):
        path = Path(str(cfg["save_model"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in trainer.model.state_dict().items()}, path)
    return result


def locate_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``data`` entry of a train config found on this machine: ``{"source", "params"}`` with
    ``params.root`` absolute, after checking ``data.fingerprint`` when it is set.

    Raises:
        FileNotFoundError: ``data.root`` is not found (every folder looked in is named).
        DataMismatchError: the data found hashes to another fingerprint (both are named).
    """
    resolved = resolve_entry(data, "data")
    if data.get("fingerprint") not in (None, ""):
        check_fingerprint(str(data["fingerprint"]), resolved, "data")
    return resolved


def format_result(result: Mapping[str, Any]) -> str:
    """One JSON line, metrics rounded to 6 digits."""
    return json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in result.items()}, sort_keys=False)

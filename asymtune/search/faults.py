"""Fault injection for the fault-tolerance tests, switched on only by the tests.

Not part of the user's config: a test sets the environment variable :data:`FAULTS_ENV` to a JSON
object before it starts ``asymtune tune``; Ray's trial processes inherit it from the driver. Keys:
``raise_at_epoch`` (a trial raises :class:`InjectedFault` after reporting this epoch),
``nan_at_epoch`` (its training loss becomes NaN from this epoch on), ``only_baseline`` (inject
only into the baseline trial).

>>> Faults.from_environment({FAULTS_ENV: '{"raise_at_epoch": 2}'}).raise_at_epoch
2
>>> Faults.from_environment({}).active
False
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

FAULTS_ENV = "ASYMTUNE_TEST_FAULTS"


class InjectedFault(RuntimeError):
    """Raised by a trial when ``raise_at_epoch`` is injected."""


@dataclass(frozen=True)
class Faults:
    """The faults the tests asked for (none by default)."""

    raise_at_epoch: int | None = None
    nan_at_epoch: int | None = None
    only_baseline: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Faults:
        """Parse :data:`FAULTS_ENV`; unknown keys are refused with their names."""
        text = (os.environ if environ is None else environ).get(FAULTS_ENV)
        if not text:
            return cls()
        values: dict[str, Any] = json.loads(text)
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"{FAULTS_ENV}: unknown keys {unknown}: expected raise_at_epoch, nan_at_epoch, only_baseline"
            )
        return cls(**values)

    @property
    def active(self) -> bool:
        return self.raise_at_epoch is not None or self.nan_at_epoch is not None

    def for_trial(self, is_baseline: bool) -> Faults:
        """The faults that apply to one trial (none when ``only_baseline`` and it is not the baseline)."""
        return self if self.active and (is_baseline or not self.only_baseline) else Faults()

    def check_epoch(self, epoch: int) -> None:
        """Raise :class:`InjectedFault` once ``epoch`` reaches ``raise_at_epoch``."""
        if self.raise_at_epoch is not None and epoch >= self.raise_at_epoch:
            raise InjectedFault(f"fault injected at epoch {epoch} ({FAULTS_ENV} raise_at_epoch)")

    def poison_loss(self, loss: nn.Module, current_epoch: Any) -> None:
        """Make ``loss`` return NaN from ``nan_at_epoch`` on; ``current_epoch()`` gives the epoch
        being trained (1-based)."""
        if self.nan_at_epoch is None:
            return
        start = self.nan_at_epoch

        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
            return output * float("nan") if current_epoch() >= start else output

        loss.register_forward_hook(hook)

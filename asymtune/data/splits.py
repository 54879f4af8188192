"""Case-level splits: train / validation / test, optional k folds, and nested training fractions.

Every split is decided on case ids, never on slices or patches, so no case contributes to two
splits. One seeded permutation of the sorted ids fixes everything:

- the first ``round(test_fraction * n)`` cases (at least one) are the test split, whatever the
  fold, so every fold is scored on the same held-out cases;
- of the rest, either the next ``round(val_fraction * n)`` (at least one) are the validation split,
  or, with ``num_folds = k``, fold ``f`` of ``k`` interleaved folds is;
- the remaining cases, in permutation order, are the training pool; ``train_fraction`` keeps its
  first ``ceil(train_fraction * pool)`` cases (at least one), so a smaller fraction is always a
  subset of a larger one (the paper's limited-data setting).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaseSplit:
    """Case ids of each split, in the order of the seeded permutation."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def split_cases(
    case_ids: Sequence[str],
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    train_fraction: float = 1.0,
    num_folds: int | None = None,
    fold: int = 0,
) -> CaseSplit:
    """Split ``case_ids`` as the module docstring describes.

    Raises:
        ValueError: for fractions outside their range, a fold outside ``0..num_folds-1``, or too
            few cases for one test, one validation and one training case.
    """
    for name, value, low_open in (("val_fraction", val_fraction, False), ("test_fraction", test_fraction, False),
                                  ("train_fraction", train_fraction, True)):
        if not (0.0 < value <= 1.0 if low_open else 0.0 <= value < 1.0):
            expected = "(0, 1]" if low_open else "[0, 1)"
            raise ValueError(f"data.params.{name}={value}: expected a number in {expected}")
    if num_folds is not None and (num_folds < 2 or not 0 <= fold < num_folds):
        raise ValueError(
            f"data.params.num_folds={num_folds}, fold={fold}: expected num_folds >= 2 and 0 <= fold < num_folds"
        )
    ids = sorted(case_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("case ids are not unique: expected one entry per case")
    n = len(ids)
    n_test = max(1, round(test_fraction * n))
    if n < n_test + 2:
        raise ValueError(f"{n} cases: expected at least {n_test + 2} (one test, one validation and one training case)")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(n)]
    test, rest = order[:n_test], order[n_test:]
    if num_folds is None:
        n_val = min(max(1, round(val_fraction * n)), len(rest) - 1)
        val, pool = rest[:n_val], rest[n_val:]
    else:
        if len(rest) < num_folds:
            raise ValueError(f"{len(rest)} cases outside the test split: expected at least num_folds={num_folds}")
        val = rest[fold::num_folds]
        pool = [case for index, case in enumerate(rest) if index % num_folds != fold]
    train = pool[: max(1, math.ceil(train_fraction * len(pool) - 1e-9))]
    return CaseSplit(train=tuple(train), val=tuple(val), test=tuple(test))

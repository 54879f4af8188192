"""Small labelled cases for the tests of datasets on disk (layouts, check, prepared)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

Cases = list[tuple[str, np.ndarray, np.ndarray]]


def synthetic_cases(
    spatial: tuple[int, ...] = (6, 7, 5),
    channels: int = 1,
    count: int = 3,
    values: tuple[int, ...] = (0, 1, 2),
    seed: int = 0,
) -> Cases:
    """``count`` cases ``(case_id, image (channels, *spatial) float32, label (*spatial) uint8)``.

    Every case has every value of ``values`` in its label; images are seeded normal noise.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        image = rng.normal(10.0 * (index + 1), 3.0, size=(channels, *spatial)).astype(np.float32)
        label = rng.choice(np.asarray(values, dtype=np.uint8), size=spatial, p=_weights(len(values)))
        label.flat[: len(values)] = values  # every value present
        cases.append((f"case{index:02d}", image, label))
    return cases


def _weights(count: int) -> np.ndarray:
    weights = np.array([8.0] + [1.0] * (count - 1))
    return weights / weights.sum()


@pytest.fixture
def make_cases() -> Callable[..., Cases]:
    """``make_cases(spatial=(6, 7, 5), channels=1, count=3, values=(0, 1, 2), seed=0)``."""
    return synthetic_cases

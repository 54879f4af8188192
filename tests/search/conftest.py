"""Fixtures of the search-stage tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A one-CPU Ray runtime for the module's real Tuners."""
    # address="local": a runtime of its own, never a cluster another process started on this machine
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()

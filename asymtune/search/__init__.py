"""Searching asymmetry settings: spaces from ``search_spaces/``, sweeps with Ray Tune and Optuna."""

from asymtune.search.space import BoundSpace, SearchSpace, SearchSpaceError

__all__ = ["BoundSpace", "SearchSpace", "SearchSpaceError"]

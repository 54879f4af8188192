"""Searching asymmetry settings: spaces from ``search_spaces/``, sweeps with Ray Tune and Optuna.

The package imports nothing itself: a trial's actor imports :mod:`asymtune.search.trainable`,
and what that pulls in is what the actor pays before it starts (see there).
"""

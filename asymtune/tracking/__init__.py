"""Experiment tracking with MLflow."""

from asymtune.tracking.mlflow_tracker import MLflowSweepTracker, find_run, get_or_create_experiment

__all__ = ["MLflowSweepTracker", "find_run", "get_or_create_experiment"]

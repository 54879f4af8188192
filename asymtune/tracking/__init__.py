"""Experiment tracking with MLflow: a parent run per dataset sweep, a nested run per trial and per
confirmation training."""

from asymtune.tracking.datasets import DatasetRecord
from asymtune.tracking.mlflow_tracker import (
    MLflowSweepTracker,
    TrialParams,
    drop_lost_trials,
    find_run,
    get_or_create_experiment,
)

__all__ = [
    "DatasetRecord", "MLflowSweepTracker", "TrialParams", "drop_lost_trials", "find_run", "get_or_create_experiment",
]

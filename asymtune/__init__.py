"""asymtune: tune asymmetric losses for imbalanced segmentation with Ray Tune, Optuna and MLflow."""

__version__ = "0.1.0"

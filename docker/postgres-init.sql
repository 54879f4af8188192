-- The Optuna studies live in their own database next to MLflow's.
CREATE DATABASE optuna OWNER asymtune;

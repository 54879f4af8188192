"""The report: tables, plots and exported configs, built from the output folder and MLflow."""

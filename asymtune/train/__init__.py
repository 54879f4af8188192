"""One training run: the ``Trainer``, its configuration, metrics, inference and diagnostics."""

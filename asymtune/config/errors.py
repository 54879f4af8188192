"""The one error type for a wrong configuration value."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is wrong; raised before any trial starts, in one sentence that names
    the key, the value and what was expected."""

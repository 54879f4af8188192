"""Typed configuration: the schema of ``conf/``, its composition, and the checks run before any
stage starts.

- :mod:`asymtune.config.schema`: every key, its type, its one default and its meaning;
- :func:`compose`: ``conf/<name>.yaml`` with Hydra overrides (and a config file as an overlay);
- :func:`render_config`: the composed config as YAML with each key's meaning (``--cfg``);
- :func:`check_tune_config`, :func:`check_cluster_resources`: the cross-field checks.
"""

from asymtune.config.checks import check_cluster_resources, check_tune_config
from asymtune.config.compose import compose
from asymtune.config.errors import ConfigError
from asymtune.config.render import configuration_markdown, render_config

__all__ = [
    "ConfigError",
    "check_cluster_resources",
    "check_tune_config",
    "compose",
    "configuration_markdown",
    "render_config",
]

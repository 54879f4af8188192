"""The output folder's contract, below every stage: file names and the manifest, the trial
contract, trial records, stored boundary distances and where Ray Tune keeps a sweep."""

from asymtune.results.layout import (
    DIAGNOSTICS_FILE,
    DIAGNOSTICS_PLOT,
    FIXED_KEY,
    MANIFEST,
    REPORT_JSON,
    RESOLVED_CONFIG,
    SETTINGS_KEY,
    STATE_FILE,
    read_manifest,
    write_manifest,
)
from asymtune.results.spec import TrialSpec, trial_settings, trial_spec

__all__ = [
    "DIAGNOSTICS_FILE",
    "DIAGNOSTICS_PLOT",
    "FIXED_KEY",
    "MANIFEST",
    "REPORT_JSON",
    "RESOLVED_CONFIG",
    "SETTINGS_KEY",
    "STATE_FILE",
    "TrialSpec",
    "read_manifest",
    "trial_settings",
    "trial_spec",
    "write_manifest",
]

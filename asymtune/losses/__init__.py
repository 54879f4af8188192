"""The loss entry points of ``method.md`` section 7, re-exported from :mod:`asymtune.method`.

The method lives in :mod:`asymtune.method`; this package keeps the documented import path
(``from asymtune.losses import asymmetric_ce``) stable for users and other tools.
"""

from __future__ import annotations

from asymtune.method import *  # noqa: F403
from asymtune.method import __all__ as __all__

"""Import MONAI without the optional packages its ``__init__`` would load into every trial.

``import monai`` imports every MONAI submodule, and each submodule tries its optional dependencies
at import time (``monai.utils.optional_import``). In an environment that has asymtune's own
dependencies installed, that loads MLflow, Optuna, pandas, matplotlib, scikit-learn, boto3 and
more into each process that predicts whole cases: about 120 MB more private memory per trial than
importing MONAI this way (190 MB against 69 MB, ``bench/data_pipeline.py``), for packages MONAI's
sliding window, Hausdorff distance and DynUNet never use. While MONAI is first imported here,
those packages are hidden (a ``None`` entry in ``sys.modules`` makes ``import`` raise
``ImportError``, which MONAI records as "not installed"); the entries are removed right after, so
the process can still import them normally. Packages the process had already imported are left
alone.

Consequence: MONAI features that need a hidden package (its MLflow handler, its CSV or pandas
based readers, ...) are unavailable in a process that imported MONAI through this module. asymtune
uses none of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

# Optional MONAI dependencies asymtune's use of MONAI (inferers, metrics, networks) does not need.
HIDDEN_FROM_MONAI = (
    "boto3", "databricks", "einops", "fastapi", "itk", "jsonschema", "lmdb", "matplotlib", "mlflow",
    "opentelemetry", "optuna", "pandas", "PIL", "pyarrow", "pydantic", "requests", "skimage",
    "sklearn", "tensorboard", "tensorboardX", "tifffile", "tqdm", "transformers",
)


@contextmanager
def _hidden(names: tuple[str, ...]) -> Iterator[None]:
    """Make ``import name`` fail for each of ``names`` not yet imported, for the duration."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ModuleType(name)) is None:
                del sys.modules[name]


def monai_module(name: str) -> ModuleType:
    """``importlib.import_module(name)`` for a MONAI module (e.g. ``"monai.inferers"``).

    The first call imports MONAI with :data:`HIDDEN_FROM_MONAI` hidden; later calls are plain
    imports of modules MONAI has already loaded.
    """
    if name.split(".")[0] != "monai":
        raise ValueError(f"{name!r}: expected a MONAI module name (monai or monai.<submodule>)")
    if "monai" in sys.modules:
        return importlib.import_module(name)
    with _hidden(HIDDEN_FROM_MONAI):
        return importlib.import_module(name)

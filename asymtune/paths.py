"""Where the project's own files live: ``conf/`` and ``search_spaces/``.

From a source checkout (editable install) they are the top-level folders of the repository;
a wheel carries copies under ``asymtune/_resources``. ``ASYMTUNE_CONF_DIR`` and
``ASYMTUNE_SEARCH_SPACES_DIR`` override both.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _locate(folder: str, env: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser().resolve()
    for candidate in (_PACKAGE.parent / folder, _PACKAGE / "_resources" / folder):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {folder}/ folder of asymtune: set {env}")


def conf_dir() -> Path:
    """The Hydra configuration folder."""
    return _locate("conf", "ASYMTUNE_CONF_DIR")


def search_spaces_dir() -> Path:
    """The folder of search space files."""
    return _locate("search_spaces", "ASYMTUNE_SEARCH_SPACES_DIR")


def resolve_search_space(value: str) -> Path:
    """A search space given by name (``paper``) or by path (``my/space.yaml``)."""
    path = Path(value).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    candidate = search_spaces_dir() / f"{value}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in search_spaces_dir().glob("*.yaml"))
    raise FileNotFoundError(
        f"search.space={value!r}: no file {path} and no {candidate.name} in {search_spaces_dir()}: "
        f"expected a path to a YAML file or one of {known}"
    )

"""The examples in the docstrings of asymtune run, as doctests, and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import asymtune

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(asymtune.__path__, prefix="asymtune.")
    if not info.name.endswith("__main__")
)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [test for test in doctest.DocTestFinder().find(module, name) if test.examples]


WITH_EXAMPLES = [name for name in MODULES if _examples(name)]


def test_the_package_has_doctests() -> None:
    assert len(WITH_EXAMPLES) >= 10, WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _examples(name):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} failed (output above)"

"""The examples in tritonsym's docstrings run and print what they say (``ts`` is tritonsym)."""

import doctest
import importlib
import pkgutil

import pytest

import tritonsym

MODULES = sorted(m.name for m in pkgutil.walk_packages(tritonsym.__path__[:1], "tritonsym.")
                 if not m.name.startswith("tritonsym.ops") and m.name != "tritonsym.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"ts": tritonsym}, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run with -s to see)"

"""The Symbol API (also importable as ``tritonsym.sym``): ``Variable``, one function per
operator, arithmetic between symbols, ``Group``, composition, inference and JSON."""

from .. import operators as _operators
from . import fluent as _fluent
from . import random
from .attr_scope import AttrScope
from .init_functions import arange, eye, full, linspace, ones, zeros
from .math_functions import maximum, minimum, pow, power
from .naming import NameManager, Prefix
from .op_functions import make_function
from .split_v2 import split_v2
from .symbol import Group, Symbol, Variable, compose, create, load, load_json, var

__all__ = ["AttrScope", "Group", "NameManager", "Prefix", "Symbol", "Variable", "arange", "compose", "contrib",
           "create", "eye", "full", "linalg", "linspace", "load", "load_json", "maximum", "minimum", "ones", "pow",
           "power", "random", "split_v2", "var", "zeros"]


def _sync_function(name: str, op) -> None:
    """One function per registered operator, added and removed with it."""
    if op is not None:
        globals()[name] = make_function(op, name)
        __all__.append(name)
    elif name in __all__:
        globals().pop(name, None)
        __all__.remove(name)


_operators.registry.on_register(_sync_function)
_operators.registry.on_register(_fluent.sync_method)


class _Internal:
    """MXNet's ``mx.sym._internal``: the operators whose names start with an underscore
    (``_plus_scalar``, ``_hypot``, ``_logical_and`` ...), the same functions as this module's."""

    def __getattr__(self, name: str):
        if not (name.startswith("_") and not name.startswith("__") and name in __all__):
            raise AttributeError(f"tritonsym.sym._internal has no operator {name!r}")
        return globals()[name]

    def __dir__(self):
        return [n for n in __all__ if n.startswith("_")]


_internal = _Internal()


class _PrefixedOperators:
    """The operators named ``<prefix><name>`` as ``<namespace>.<name>``, as MXNet's
    ``mx.sym.contrib`` (``_contrib_``) and ``mx.sym.linalg`` (``_linalg_``) hold them: the
    node is named after the short name (``contrib.arange_like`` makes ``arange_like0``,
    ``linalg.gemm2`` makes ``gemm20``), as MXNet names it."""

    def __init__(self, namespace: str, prefix: str):
        self._namespace, self._prefix = namespace, prefix

    def __getattr__(self, name: str):
        op = _operators.REGISTRY.get(f"{self._prefix}{name}")
        if op is None or name.startswith("_"):
            raise AttributeError(f"tritonsym.sym.{self._namespace} has no operator {name!r}")
        return make_function(op, name)

    def __dir__(self):
        return [n.removeprefix(self._prefix) for n in _operators.REGISTRY if n.startswith(self._prefix)]


contrib = _PrefixedOperators("contrib", "_contrib_")
linalg = _PrefixedOperators("linalg", "_linalg_")

"""The Symbol API (also importable as ``tritonsym.sym``): ``Variable``, one function per
operator, arithmetic between symbols, ``Group``, composition, inference and JSON."""

from .. import operators as _operators
from .json_format import load, load_json
from .naming import NameManager, Prefix
from .op_functions import make_function
from .symbol import Group, Symbol, Variable, compose, create, var

for _name, _op in _operators.REGISTRY.items():
    globals()[_name] = make_function(_op, _name)
del _name, _op

__all__ = ["Group", "NameManager", "Prefix", "Symbol", "Variable", "compose", "create", "load", "load_json",
           "var", *sorted(_operators.REGISTRY)]

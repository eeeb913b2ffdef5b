"""Node attributes: ``AttrScope`` and the attribute keywords of operators (MXNet's).

Attributes are strings kept on a node and written to JSON: ``__lr_mult__`` /
``__wd_mult__`` (read by the optimizer for the variables they are on), ``__layout__``,
``__ctx_group__`` and any ``__name__``-style key of the user's. They come from three places,
later ones winning: the enclosing ``AttrScope``\\ s (innermost last), an ``attr={...}``
dict, and keywords. An operator takes a keyword that starts and ends with two
underscores, or one of MXNet's hidden keys (``ctx_group``, ``lr_mult``, ``wd_mult`` ...),
as an attribute: ``FullyConnected(x, num_hidden=8, __lr_mult__=0.1)``. The hidden keys are
stored as ``__key__``, and ``list_attr`` / ``attr`` show them under both names, as
MXNet 1.x does.

The variables an operator creates for its missing inputs (``fc_weight``, ``fc_bias``)
take the operator's attributes, so ``__lr_mult__`` given to a layer reaches its weights.

    >>> import tritonsym as ts
    >>> with ts.AttrScope(ctx_group="stage1", __lr_mult__="0.5"):
    ...     fc = ts.sym.FullyConnected(ts.sym.Variable("data"), num_hidden=3, name="fc")
    >>> fc.attr_dict()["fc_weight"]["__lr_mult__"], fc.attr("ctx_group")
    ('0.5', 'stage1')
"""

from __future__ import annotations

import threading

from ..base import ParamError

# MXNet's keys that are stored with double underscores around them (nnvm's kHiddenKeys).
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage", "profiler_scope")

_state = threading.local()


def is_attribute_key(key: str) -> bool:
    """Whether an operator keyword is an attribute rather than a parameter."""
    return (len(key) > 4 and key.startswith("__") and key.endswith("__")) or key in HIDDEN_KEYS


def stored_key(key: str) -> str:
    return f"__{key}__" if key in HIDDEN_KEYS else key


def normalized(attrs: dict) -> dict[str, str]:
    """Attributes as stored: string values, hidden keys with their underscores."""
    return {stored_key(k): str(v) for k, v in attrs.items()}


def with_aliases(attrs: dict[str, str]) -> dict[str, str]:
    """Stored attributes plus each hidden key under its bare name too, as MXNet lists them."""
    shown = dict(attrs)
    for key in HIDDEN_KEYS:
        if f"__{key}__" in attrs:
            shown.setdefault(key, attrs[f"__{key}__"])
    return shown


class AttrScope:
    """Attributes given to every symbol created inside ``with AttrScope(key="value"):``
    (Variables and operators); scopes nest, the inner one winning, and a symbol's own
    ``attr`` / keywords win over both. Values must be strings, as in MXNet."""

    def __init__(self, **attrs: str):
        for key, value in attrs.items():
            if not isinstance(value, str):
                raise ParamError(f"AttrScope: attribute {key}={value!r} must be a string (Attributes need to be "
                                 "string)")
        self._attrs = normalized(attrs)
        self._previous: AttrScope | None = None

    def get(self, attr: dict | None) -> dict[str, str]:
        """The scope's attributes updated with ``attr``."""
        return {**self._attrs, **normalized(attr or {})}

    def __enter__(self) -> "AttrScope":
        self._previous = current()
        self._attrs = {**self._previous._attrs, **self._attrs}
        _state.current = self
        return self

    def __exit__(self, *exc) -> bool:
        _state.current = self._previous
        return False

    def __repr__(self) -> str:
        return f"AttrScope({', '.join(f'{k}={v!r}' for k, v in self._attrs.items())})"


def current() -> AttrScope:
    scope = getattr(_state, "current", None)
    if scope is None:
        scope = _state.current = AttrScope()
    return scope

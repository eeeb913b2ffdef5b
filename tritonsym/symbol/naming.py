"""Automatic names: the lower-cased operator name plus a counter per operator (MXNet's
NameManager), e.g. ``fullyconnected0``, ``_plus1``."""

from __future__ import annotations

import threading

_state = threading.local()


class NameManager:
    """Hands out names for symbols created without ``name=``. Use as a context manager to
    start fresh counters::

        with tritonsym.sym.NameManager():
            a = tritonsym.sym.Variable("a") + 1   # _plusscalar0
    """

    def __init__(self):
        self._counter: dict[str, int] = {}
        self._previous: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self):
        self._previous = current()
        _state.current = self
        return self

    def __exit__(self, *exc):
        _state.current = self._previous
        return False


class Prefix(NameManager):
    """Prepends ``prefix`` to every name, given or automatic::

        with tritonsym.sym.Prefix("enc_"):
            fc = tritonsym.sym.FullyConnected(data, num_hidden=8, name="fc")   # enc_fc
    """

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


def current() -> NameManager:
    manager = getattr(_state, "current", None)
    if manager is None:
        manager = _state.current = NameManager()
    return manager

"""hypothesis for the property tests, and how many cases each draws.

Test files import ``given``, ``settings``, ``st`` and ``HealthCheck`` from here, never from
hypothesis itself: where hypothesis is not installed (a lent GPU machine's image, say),
each property test is reported as skipped and every other test of its file still runs,
instead of the whole file failing to import ("0 tests run").

``TRITONSYM_PROPERTY_SCALE=20`` multiplies every count (a longer bug hunt than CI's); the
default keeps the suite's time. The examples are the same every run (hypothesis's
``derandomize``: a seed from each test's name), so the suite passes or fails the same way on
every clone; ``TRITONSYM_PROPERTY_RANDOM=1`` draws new ones each run, for a bug hunt (a failure
prints the ``@reproduce_failure`` that replays it).
"""

import os

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:
    class _Stand:
        """Stands for any strategy, strategy module or health check: every attribute,
        call and ``|`` gives another stand-in, so module-level strategies still build."""

        def __getattr__(self, name):
            return _Stand()

        def __call__(self, *args, **kwargs):
            if len(args) == 1 and callable(args[0]) and not kwargs and not isinstance(args[0], _Stand):
                return lambda *a, **k: _Stand()  # @st.composite: the decorated function makes a strategy
            return _Stand()

        def __or__(self, other):
            return _Stand()

        __ror__ = __or__

    st = HealthCheck = _Stand()

    def given(*args, **kwargs):
        return pytest.mark.skip(reason="hypothesis is not installed (pip install hypothesis)")

    def settings(*args, **kwargs):
        return lambda test: test

SCALE = float(os.environ.get("TRITONSYM_PROPERTY_SCALE", "1"))
RANDOM = os.environ.get("TRITONSYM_PROPERTY_RANDOM", "") == "1"


def property_settings(max_examples: int, *health_checks) -> dict:
    """hypothesis ``settings`` keywords: ``max_examples`` times SCALE, no deadline (the
    interpreter is slow), the same examples every run unless RANDOM, and the too_slow health
    check (plus any given) off."""
    return dict(max_examples=max(1, round(max_examples * SCALE)), deadline=None, derandomize=not RANDOM,
                suppress_health_check=[HealthCheck.too_slow, *health_checks])

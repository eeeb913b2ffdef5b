"""How many cases each hypothesis test draws. ``TRITONSYM_PROPERTY_SCALE=20`` multiplies
every count (a longer bug hunt than CI's); the default keeps the suite's time."""

import os

from hypothesis import HealthCheck

SCALE = float(os.environ.get("TRITONSYM_PROPERTY_SCALE", "1"))


def property_settings(max_examples: int, *health_checks: HealthCheck) -> dict:
    """hypothesis ``settings`` keywords: ``max_examples`` times SCALE, no deadline (the
    interpreter is slow), and the too_slow health check (plus any given) off."""
    return dict(max_examples=max(1, round(max_examples * SCALE)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, *health_checks])

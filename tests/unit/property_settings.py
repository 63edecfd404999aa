"""Hypothesis settings for the property-based tests: modest in CI, more on demand.

``CIVIC_PROPERTY_EXAMPLES`` (default 40) sets the number of command sequences each
state machine runs; e.g. ``CIVIC_PROPERTY_EXAMPLES=2000 pytest tests/unit -k
properties`` for a long run. The sequences are reproducible: a failure prints the
seed and hypothesis replays it from its database on the next run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("CIVIC_PROPERTY_EXAMPLES", "40"))

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

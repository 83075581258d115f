"""Hypothesis profiles of the test suite.

``ci`` (the default): 25 examples per property, no deadline, derandomized, so a CI run is
deterministic and bounded. ``long``: 500 examples, randomized, for ``nox -s hypothesis``
(or any run with ``HYPOTHESIS_PROFILE=long``). Select a profile with the environment
variable ``HYPOTHESIS_PROFILE`` or hypothesis' own ``--hypothesis-profile`` option.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["DEFAULT_PROFILE", "PROFILES"]

#: Health checks that misfire on array-heavy strategies (slow data generation on a loaded
#: machine is not a bug of the property under test).
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "long",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)

#: Names of the registered profiles.
PROFILES = ("ci", "long")
#: The profile loaded when ``HYPOTHESIS_PROFILE`` is unset.
DEFAULT_PROFILE = "ci"

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", DEFAULT_PROFILE))

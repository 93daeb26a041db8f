"""Root test configuration: registers the shared fixtures (fake upstream, throwaway TLS) and
makes the property tests reproducible.

Hypothesis runs derandomized by default (the same examples on every run and machine), so a CI
run is a verdict on the code, not on the draw. ``HYPOTHESIS_PROFILE=explore`` draws fresh random
examples (and more of them) to hunt for new counterexamples; each one found becomes an explicit
regression test next to the property.
"""

import os

from hypothesis import settings

pytest_plugins = ["tests.fakes.fixtures"]

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

"""Hypothesis profiles. Locally every run draws new examples (that is how the
random differential tests keep finding things); CI loads the ``ci`` profile
(`.ci/run` sets HYPOTHESIS_PROFILE=ci), which draws the same examples every
run, so a landing is not decided by which examples a run happened to draw."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

"""The experiments (calibration, E1-E5, MITM, inspector), one module each.

Every experiment runs its arms side by side in rounds, rotating the arm order each round, and
keeps per-round values; the report shows the median of the round values with min–max, and
ratios computed within each round (so machine drift cancels) before taking their median.
An experiment that fails records ``not run: <reason>``; nothing is ever filled in by hand.
"""

from bench.experiments.calibration import calibrate
from bench.experiments.common import (
    Ctx,
    Plan,
    anthropic_target,
    compare_row,
    guarded,
    openai_target,
    value_row,
)
from bench.experiments.e1_single import e1_single
from bench.experiments.e2_rates import e2_rates
from bench.experiments.e3_frontier import e3_frontier
from bench.experiments.e4_streaming import e4_streaming
from bench.experiments.e5_memory import e5_memory
from bench.experiments.inspector import inspector
from bench.experiments.mitm import mitm
from bench.experiments.profiles import profile_misses

__all__ = [
    "Ctx",
    "Plan",
    "anthropic_target",
    "calibrate",
    "compare_row",
    "e1_single",
    "e2_rates",
    "e3_frontier",
    "e4_streaming",
    "e5_memory",
    "guarded",
    "inspector",
    "mitm",
    "openai_target",
    "profile_misses",
    "value_row",
]

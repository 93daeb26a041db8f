"""``llmtap up`` starts with the collector off and turns it back on, tuned, once serving: a
start-up that forgot to re-enable it would leak every reference cycle for the life of the
process."""

from __future__ import annotations

import gc

from addons.main import _freeze_startup_objects


def test_serving_turns_the_collector_back_on_with_the_start_up_objects_frozen() -> None:
    threshold = gc.get_threshold()
    gc.disable()
    try:
        _freeze_startup_objects()
        assert gc.isenabled()
        assert gc.get_threshold()[0] == 10_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.enable()

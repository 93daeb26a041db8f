"""``llmtap up`` starts with the collector off and turns it back on, tuned, once serving: a
start-up that forgot to re-enable it would leak every reference cycle for the life of the
process."""

from __future__ import annotations

import gc

import pytest

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


def test_a_serving_process_hands_freed_memory_back_on_glibc() -> None:
    """Where glibc has malloc_trim, serving starts the daemon thread that calls it."""
    import ctypes
    import threading

    from addons.main import _start_memory_trimmer

    try:
        ctypes.CDLL("libc.so.6").malloc_trim  # noqa: B018 - probing for the symbol
    except (OSError, AttributeError):
        pytest.skip("no glibc malloc_trim here")
    _start_memory_trimmer()
    trimmers = [t for t in threading.enumerate() if t.name == "llmtap-malloc-trim"]
    assert trimmers and all(t.daemon for t in trimmers)

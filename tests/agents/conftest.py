"""Fixtures for the agent CLI tests: one router + fake upstream per module (see harness.py)."""

from tests.web.harness import module_server, shared_server

__all__ = ["module_server", "shared_server"]

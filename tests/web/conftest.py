"""Fixtures for the web edge's tests: a real llmtap server on loopback."""

from tests.web.harness import server

__all__ = ["server"]

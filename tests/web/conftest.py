"""Fixtures for the web edge's tests: a real llmtap server on loopback."""

from tests.web.harness import module_server, server, shared_server

__all__ = ["module_server", "server", "shared_server"]

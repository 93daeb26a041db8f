"""Fixtures for the web edge's tests: a real llmtap server on loopback, and a browser on it."""

from tests.web.browser import browser_context, ui
from tests.web.harness import module_server, server, shared_server

__all__ = ["browser_context", "module_server", "server", "shared_server", "ui"]

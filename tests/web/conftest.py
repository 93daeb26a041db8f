"""Fixtures for the web edge's tests: a real llmtap server on loopback (and two upstreams), and
a browser on it."""

from tests.web.browser import browser_context, ui
from tests.web.duo import duo, duo_module
from tests.web.harness import module_server, server, shared_server

__all__ = ["browser_context", "duo", "duo_module", "module_server", "server", "shared_server", "ui"]

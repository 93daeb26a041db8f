"""The hosts-file lines of the AgentBridge follow the process: written when the listener is up
at start (autostart), removed at shutdown before the listeners close, so no agent resolves to
a port nobody listens on. The lines themselves are router.bridge.control's business."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from router.errors import LlmtapError

log = logging.getLogger("llmtap.hostsdns")


class HostsDns:
    def __init__(self, control: Any) -> None:
        self.control = control  # router.bridge.control.BridgeControl

    async def running(self) -> None:
        # Runs after the capture-modes addon, whose running() may have started the listener.
        if not self.control.listener_running:
            return
        try:
            await asyncio.to_thread(self.control.apply_dns)
        except LlmtapError as exc:
            log.error("could not write the AgentBridge hosts-file lines: %s", exc.message)

    async def done(self) -> None:
        # mitmproxy closes its listeners after every addon's done(): the lines go first.
        try:
            change = await asyncio.to_thread(self.control.remove_dns)
        except LlmtapError as exc:
            log.error("could not remove llmtap's hosts-file lines (run `llmtap repair`): %s",
                      exc.message)  # fmt: skip
            return
        if change.removed:
            log.info("removed %d hosts-file lines at shutdown", len(change.removed))

"""Tunnel recorder: with TLS intercept off, each CONNECT tunnel becomes one record (host,
bytes each way, duration), in-flight at start and updated in place at the end."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mitmproxy import tcp

from addons import meta
from router.traffic.record import InterceptedRequest

log = logging.getLogger("llmtap.tunnels")


class TunnelRecorder:
    def __init__(
        self,
        publish_new: Callable[[InterceptedRequest], Any],
        publish_update: Callable[[InterceptedRequest], Any],
        source: Callable[[], str],
    ) -> None:
        self.publish_new = publish_new
        self.publish_update = publish_update
        self.source = source

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        try:
            flow.metadata[meta.ID] = uuid.uuid4().hex
            flow.metadata[meta.SOURCE] = self.source()
            flow.metadata[meta.BYTES_UP] = flow.metadata[meta.BYTES_DOWN] = 0
            self.publish_new(self._record(flow, final=False))
        except Exception:
            log.exception("recording tunnel start failed")

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        # Count, then forget: the tunnel's bytes are never kept (memory stays bounded and the
        # contents are encrypted anyway).
        for message in flow.messages:
            key = meta.BYTES_UP if message.from_client else meta.BYTES_DOWN
            flow.metadata[key] = flow.metadata.get(key, 0) + len(message.content)
        flow.messages.clear()

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._final(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self._final(flow)

    def _final(self, flow: tcp.TCPFlow) -> None:
        if meta.ID not in flow.metadata:
            return
        try:
            self.publish_update(self._record(flow, final=True))
        except Exception:
            log.exception("recording tunnel end failed")

    def _record(self, flow: tcp.TCPFlow, *, final: bool) -> InterceptedRequest:
        host, port = _address(flow)
        started = flow.client_conn.timestamp_start or time.time()
        up, down = flow.metadata.get(meta.BYTES_UP, 0), flow.metadata.get(meta.BYTES_DOWN, 0)
        record = InterceptedRequest(
            id=flow.metadata[meta.ID],
            source=flow.metadata.get(meta.SOURCE, "http-proxy"),
            timestamp=datetime.fromtimestamp(started, UTC),
            method="CONNECT",
            scheme="https",
            host=host,
            port=port,
            path="",
            request_size=up,
            response_size=down,
            detected_kind="unknown",
            note="TLS not intercepted: tunnel relayed without decryption",
        )
        if final:
            duration = time.time() - started
            record.status = "error" if flow.error else 200
            record.error = flow.error.msg if flow.error else None
            record.total_latency_ms = round(duration * 1000, 2)
            record.note = (
                f"TLS not intercepted: {up} bytes sent, {down} bytes received, {duration:.2f} s"
            )
        return record


def _address(flow: tcp.TCPFlow) -> tuple[str, int]:
    sni = flow.client_conn.sni
    address = flow.server_conn.address
    port = address[1] if address else 443
    return (address[0] if address else (sni or "unknown")), port

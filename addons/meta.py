"""The ``flow.metadata`` keys llmtap's addons hand data over with (never by importing each
other): one place, so a producer and its consumers cannot drift apart."""

from __future__ import annotations

from collections.abc import Iterable

# set by the capture tagger
SOURCE = "llmtap.source"  # agent-bridge | http-proxy | system-proxy | custom-host
AGENT = "llmtap.agent"  # agent id from SNI/Host (or User-Agent where agents.json says so)
SKIP = "llmtap.skip"  # not recorded: the router's own upstream calls, refused self-proxying
CUSTOM_KIND = "llmtap.custom_kind"  # a custom host's kind (llm/app/custom)
SOURCE_MODEL = "llmtap.source_model"  # the model the agent asked for
MAPPED_MODEL = "llmtap.mapped_model"  # the mapping target, when the call is diverted
DIVERT = "llmtap.divert"  # router/bridge/divert.Hop-to-be: (format, router path, mapping)
CHAT_FORMAT = "llmtap.chat_format"  # the agent chat path's wire format, diverted or not
REQUEST_JSON = "llmtap.request_json"  # the request body parsed once (None: not JSON)

# set by the recorder
ID = "llmtap.id"  # the record id (also the router call's request id when diverted)
PROCESS = "llmtap.process"  # (pid, name) of the local client process
FINAL = "llmtap.final"  # the final record, re-published when the process is found later
RECORD = "llmtap.record"  # the request half of the record, built once at `request`

# set by the tunnel recorder
BYTES_UP = "llmtap.bytes_up"
BYTES_DOWN = "llmtap.bytes_down"


def header(fields: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """Header ``name`` (lower-case) from mitmproxy's raw ``Headers.fields``, repeated values
    joined with ", " and decoded, as ``Headers.get`` returns it: in one pass, where
    ``Headers.get`` costs a few Python calls per field of the message."""
    found = [value for key, value in fields if key.lower() == name]
    if not found:
        return None
    return ", ".join([value.decode("utf-8", "surrogateescape") for value in found])

"""What a captured call is: LLM/app/unknown, its wire format, provider and context key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import Any, cast

from router import formats, ir
from router.formats import Format
from router.netaddr import normalize_host
from router.traffic.record import DetectedKind

# host -> provider id; the order of inspector.md's list.
LLM_HOST_PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "api.mistral.ai": "mistral",
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.fireworks.ai": "fireworks",
    "api.cohere.com": "cohere",
    "api.perplexity.ai": "perplexity",
    "openrouter.ai": "openrouter",
    "api.x.ai": "xai",
    "api.moonshot.ai": "moonshot",
}
KNOWN_LLM_HOSTS = frozenset(LLM_HOST_PROVIDERS)
_AZURE_SUFFIX = ".openai.azure.com"

LLM_PATH_SUFFIXES = (
    "/chat/completions",
    "/completions",
    "/messages",
    "/responses",
    "/embeddings",
    ":generateContent",
    ":streamGenerateContent",
    "/generateAssistantResponse",
)
# Lower-case User-Agent fragments of the coding agents and their CLIs.
AGENT_UA_MARKERS = (
    "claude-cli",
    "claude-code",
    "codex",
    "copilot",
    "antigravity",
    "opencode",
    "zed/",
    "kiro",
    "cursor/",
    "trae/",
    "geminicli",
    "gemini-cli",
)
_PROMPT_FIELDS = ("messages", "contents", "input", "prompt")


def is_llm_host(host: str, extra_llm_hosts: Collection[str] = ()) -> bool:
    """A known provider host, an Azure OpenAI resource, or one of ``extra_llm_hosts`` (the
    agents' hosts, passed in by the caller)."""
    name = normalize_host(host, authority=True)
    return (
        name in KNOWN_LLM_HOSTS
        or name.endswith(_AZURE_SUFFIX)
        or name in {normalize_host(h, authority=True) for h in extra_llm_hosts}
    )


def is_llm_path(path: str) -> bool:
    bare = path.partition("?")[0].rstrip("/")
    return bare.endswith(LLM_PATH_SUFFIXES)


def detect_kind(
    host: str,
    path: str,
    *,
    user_agent: str | None = None,
    body: Any = None,
    body_is_json: bool = False,
    custom_kind: str | None = None,
    extra_llm_hosts: Collection[str] = (),
) -> DetectedKind:
    """``detectedKind`` in inspector.md's order: a custom host's kind (``llm``/``app``; its
    ``custom`` kind means "not classified" and falls through), known LLM host, LLM path,
    a JSON body with a prompt field and ``model``, an agent User-Agent; then ``app`` for any
    other JSON request or response, else ``unknown``. ``body`` is the parsed request JSON;
    ``body_is_json`` says the request or the response carried JSON."""
    if custom_kind in ("llm", "app"):
        return custom_kind  # type: ignore[return-value]  # narrowed by the test above
    if is_llm_host(host, extra_llm_hosts) or is_llm_path(path):
        return "llm"
    if isinstance(body, dict) and "model" in body and any(f in body for f in _PROMPT_FIELDS):
        return "llm"
    if user_agent and any(marker in user_agent.lower() for marker in AGENT_UA_MARKERS):
        return "llm"
    return "app" if body_is_json or body is not None else "unknown"


def provider_for_host(
    host: str, agent_for_host: Callable[[str], str | None] | None = None
) -> str | None:
    """The provider id of a known LLM host; else the agent that owns the host, if any."""
    name = normalize_host(host, authority=True)
    if name in LLM_HOST_PROVIDERS:
        return LLM_HOST_PROVIDERS[name]
    if name.endswith(_AZURE_SUFFIX):
        return "azure"
    if name.endswith("cloudcode-pa.googleapis.com") or name.endswith(
        "cloudcode-pa.sandbox.googleapis.com"
    ):
        return "cloudcode"
    return agent_for_host(name) if agent_for_host is not None else None


def call_format(path: str, body: Any = None) -> Format | None:
    """The wire format of a call, as the codecs detect it: from the path first (the body
    decides only where one path serves two formats); from the body when the path is not an
    LLM path; None for an LLM path with no codec (embeddings, legacy completions, Kiro, ...)."""
    fmt = formats.format_for_path(path, body)
    if fmt is None and not is_llm_path(path):
        fmt = formats.format_for_body(body)
    return cast(Format | None, fmt)


# --------------------------------------------------------------------------- context key


def parse_request(fmt: str | None, body: Any, *, model: str | None = None) -> ir.Request | None:
    """The IR of a captured request body in format ``fmt``, or None when its codec does not
    understand it. ``model`` fills in a model the body lacks (Gemini carries it in the URL
    path)."""
    if fmt not in formats.FORMATS or not isinstance(body, dict):
        return None
    if "model" not in body:
        body = {**body, "model": model or ""}
    try:
        return formats.get_codec(fmt).parse_request(body)
    except Exception:  # untrusted body: a codec that rejects it means "not understood"
        return None


def system_prompt(fmt: str | None, body: Any) -> str | None:
    """The system prompt of a request body, as its codec reads it into the IR (``fmt`` None:
    the codecs guess from the body)."""
    req = parse_request(fmt or formats.format_for_body(body), body)
    return (req.system_text() or None) if req is not None else None


def context_key(fmt: str | None, body: Any) -> str | None:
    """First 12 hex characters of the SHA-256 of the system prompt; None when there is none."""
    return request_key(parse_request(fmt or formats.format_for_body(body), body))


def request_key(req: ir.Request | None) -> str | None:
    """:func:`context_key` of a request already parsed."""
    prompt = req.system_text() if req is not None else ""
    if not prompt:
        return None
    return hashlib.sha256(prompt.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]

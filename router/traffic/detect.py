"""What a captured call is: LLM/app/unknown, its wire format, provider and context key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from router.traffic.record import DetectedKind

ApiKind = Literal["openai-chat", "anthropic", "responses", "gemini", "cloudcode"]

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
_GEMINI_FIELDS = frozenset({"contents", "systemInstruction", "system_instruction"})


def normalize_host(host: str) -> str:
    """Lower case, without a port, brackets or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_llm_host(host: str, extra_llm_hosts: Collection[str] = ()) -> bool:
    """A known provider host, an Azure OpenAI resource, or one of ``extra_llm_hosts`` (the
    agents' hosts, passed in by the caller)."""
    name = normalize_host(host)
    return (
        name in KNOWN_LLM_HOSTS
        or name.endswith(_AZURE_SUFFIX)
        or name in {normalize_host(h) for h in extra_llm_hosts}
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
    name = normalize_host(host)
    if name in LLM_HOST_PROVIDERS:
        return LLM_HOST_PROVIDERS[name]
    if name.endswith(_AZURE_SUFFIX):
        return "azure"
    if name.endswith("cloudcode-pa.googleapis.com") or name.endswith(
        "cloudcode-pa.sandbox.googleapis.com"
    ):
        return "cloudcode"
    return agent_for_host(name) if agent_for_host is not None else None


def api_kind(path: str, body: Any = None) -> ApiKind | None:
    """The wire format of a call, from the path first; the body decides only when the path is
    ambiguous (``input`` without ``messages`` on ``/chat/completions`` is Responses) or says
    nothing."""
    bare = path.partition("?")[0].rstrip("/")
    if bare.endswith((":generateContent", ":streamGenerateContent")):
        return "cloudcode" if "/v1internal" in bare else "gemini"
    if bare.endswith(("/messages", "/messages/count_tokens")):
        return "anthropic"
    if bare.endswith("/responses") or "/responses/" in bare:
        return "responses"
    if bare.endswith("/chat/completions"):
        if isinstance(body, dict) and "input" in body and "messages" not in body:
            return "responses"
        return "openai-chat"
    if is_llm_path(bare):
        return None  # an LLM path with no codec: embeddings, legacy completions, Kiro, ...
    return _kind_from_body(body)


def _kind_from_body(body: Any) -> ApiKind | None:
    if not isinstance(body, dict):
        return None
    request = body.get("request")
    if isinstance(request, dict) and _GEMINI_FIELDS.intersection(request):
        return "cloudcode"
    if _GEMINI_FIELDS.intersection(body):
        return "gemini"
    if "input" in body and "messages" not in body:
        return "responses"
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    if "system" in body or "anthropic_version" in body:
        return "anthropic"
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in content
        ):
            return "anthropic"
    return "openai-chat"


# --------------------------------------------------------------------------- context key


def system_prompt(kind: str | None, body: Any) -> str | None:
    """The system prompt of a request body in any of the five shapes (``kind`` None: guess)."""
    if not isinstance(body, dict):
        return None
    kind = kind or _kind_from_body(body)
    match kind:
        case "anthropic":
            return _join_text(body.get("system"))
        case "openai-chat":
            return _leading_system(body.get("messages"))
        case "responses":
            instructions = body.get("instructions")
            if isinstance(instructions, str) and instructions:
                return instructions
            return _leading_system(body.get("input"))
        case "gemini":
            return _gemini_system(body)
        case "cloudcode":
            request = body.get("request")
            return _gemini_system(request) if isinstance(request, dict) else None
    return None


def context_key(kind: str | None, body: Any) -> str | None:
    """First 12 hex characters of the SHA-256 of the system prompt; None when there is none."""
    prompt = system_prompt(kind, body)
    if not prompt:
        return None
    return hashlib.sha256(prompt.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]


def _join_text(value: Any) -> str | None:
    """A string, or the text of a list of ``{text}`` blocks/parts."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        texts = [
            part["text"]
            for part in value
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        ]
        joined = "\n".join(texts)
        return joined or None
    return None


def _leading_system(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return None
    first = messages[0]
    if isinstance(first, Mapping) and first.get("role") in ("system", "developer"):
        return _join_text(first.get("content"))
    return None


def _gemini_system(body: Mapping[str, Any]) -> str | None:
    instruction = body.get("systemInstruction", body.get("system_instruction"))
    if isinstance(instruction, Mapping):
        return _join_text(instruction.get("parts"))
    return _join_text(instruction)

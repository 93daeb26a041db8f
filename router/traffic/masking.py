"""Secret masking for everything the inspector stores, broadcasts or exports.

Every function here is idempotent (masking masked text changes nothing) and linear in its
input: the only regexes are a run of one character class, or a literal prefix followed by
disjoint character classes, so the engine never backtracks more than a bounded amount.

Masking happens once per record: what :func:`mask_record` and :func:`mask_llm` return carries
the ``masked`` provenance (see :class:`router.traffic.record._Wire`), and they return such an
object as it is. The live buffer masks every record that arrives without it (captured flows,
the ingest endpoint); the router builds its records masked (:mod:`router.traffic.calls`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from router import jsonfast
from router.traffic.record import InterceptedRequest, LlmInfo, UpstreamRequest, _Wire

REDACTED = "[REDACTED]"
ELLIPSIS = "…"

# Full redaction: cookies are bundles of secrets with no useful shape to keep.
_REDACT_HEADERS = frozenset({"cookie", "set-cookie"})
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"}
)
# Any header whose name says it carries a credential is treated like the named ones.
_SECRET_HEADER_WORDS = ("token", "secret", "api-key", "apikey", "password")
# RFC 9110 hop-by-hop headers; proxy-authorization is kept (masked) so the user sees that
# proxy credentials were sent.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
# JSON keys whose string value is a credential whatever its shape; compared with case, "-"
# and "_" ignored.
_SECRET_KEYS = frozenset(
    {"apikey", "xapikey", "xgoogapikey", "token", "accesstoken", "refreshtoken", "idtoken",
     "authtoken", "sessiontoken", "bearertoken", "password", "passwd", "secret",
     "clientsecret", "authorization", "proxyauthorization", "privatekey", "cookie"}
)  # fmt: skip
_SECRET_PARAMS = (
    "key|api_key|apikey|api-key|token|access_token|refresh_token|id_token|auth|auth_token"
    "|secret|client_secret|password|sig|signature|x-goog-api-key"
)

_KEY_PREFIXES = ("sk-ant-", "sk-", "ak-", "pk-")
# Only runs long enough for a rule (16+: keys; 40+: other tokens) reach the Python callback.
# A maximal run of 16+ is matched whole from its first character, and a shorter run matches
# nowhere, so this finds exactly the runs that "+" would have found and the callback changed.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-]{16,}")
_BEARER = re.compile(r"(?i)\b(bearer)[ \t]+[^\s\"',;]+")
# A literal name, "=", then a value class that cannot contain the separators: no backtracking.
_QUERY_SECRET = re.compile(rf"(?im)(^|[?&;])({_SECRET_PARAMS})=([^&#;\s\"'<>]*)")
# What _QUERY_SECRET needs, looked for anywhere (no anchor: also inside JSON text, where a
# string's start is a quote): conservative. An "=" alone (SSE comments, base64 padding,
# prose) does not send a document to the full walk. Looked for from each "=" backwards
# (:func:`_secret_param`): a case-insensitive regex of the alternatives tries every one at
# every position, ~75 us per KiB of text (0.75 ms for a 50-frame SSE reply with an "=").
_PARAM_EQ = tuple(name + "=" for name in _SECRET_PARAMS.split("|"))
_PARAM_EQ_B = tuple(name.encode() for name in _PARAM_EQ)
_PARAM_EQ_MAX = max(len(name) for name in _PARAM_EQ)


def _secret_param(low: Any) -> bool:
    """True when lower-cased ``low`` (str or bytes) holds a secret parameter's "name=":
    one ``find`` per "=" in it, and a suffix check of what precedes it."""
    names = _PARAM_EQ_B if isinstance(low, bytes) else _PARAM_EQ
    eq = "=" if isinstance(low, str) else b"="
    pos = low.find(eq)
    while pos >= 0:
        if low.endswith(names, max(0, pos + 1 - _PARAM_EQ_MAX), pos + 1):
            return True
        pos = low.find(eq, pos + 1)
    return False


# What any masking rule needs to fire: a maskable run of token characters (keys, long
# tokens), a bearer scheme, or a secret parameter's "name=". Most strings (prose, short values) have none of
# these and are returned as they are. Checked with C-speed string operations: a regex scan
# for a 16-character run tries a match at every position, about 15x slower on prose.
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TOKEN_TABLE = bytes(1 if i in _TOKEN_CHARS else 0 for i in range(256))
_RUN_OF_16 = b"\x01" * 16
# A run is masked only when it is 40+ long, or 16+ and starts with a key prefix (_mask_run):
# ids, hashes and UUIDs (16-39 characters, no prefix) need no walk. The prefix is looked for
# anywhere, not only at a run's start: conservative.
_RUN_OF_40 = b"\x01" * 40
_KEY_PREFIX_IN = re.compile(rb"[sap]k-")


def _maskable_runs(raw: bytes) -> bool:
    """True when ``raw`` (UTF-8) may hold a run of token characters the value rule masks."""
    # Token characters are ASCII, so a UTF-8 byte of anything else maps to 0: exact.
    if len(raw) < 16:
        return False
    runs = raw.translate(_TOKEN_TABLE)
    if _RUN_OF_16 not in runs:
        return False
    return _RUN_OF_40 in runs or (b"k-" in raw and _KEY_PREFIX_IN.search(raw) is not None)


def _candidate(text: str) -> bool:
    low = text.lower()
    if "=" in text and _secret_param(low):
        return True
    if len(text) >= 16 and _maskable_runs(text.encode("utf-8", "surrogatepass")):
        return True
    return "bearer" in low


def is_masked(value: str) -> bool:
    return ELLIPSIS in value or "***" in value or value == REDACTED


def mask_value(text: str) -> str:
    """``Bearer <token>`` -> ``Bearer ***``; ``sk-``/``ak-``/``pk-``/``sk-ant-`` keys of 16+
    characters -> first 6 + ``…`` + last 2; any other run of 40+ token characters -> first 4
    + ``…`` + last 2."""
    if not text or not _candidate(text):
        return text
    text = _BEARER.sub(r"\1 ***", text)
    return _TOKEN_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) >= 16 and run.startswith(_KEY_PREFIXES):
        return run[:6] + ELLIPSIS + run[-2:]
    if len(run) >= 40:
        return run[:4] + ELLIPSIS + run[-2:]
    return run


def mask_secret(value: str) -> str:
    """A value known to be a credential: masked whole whatever its length. ``scheme creds``
    keeps the scheme (``Basic ***``)."""
    if not value or is_masked(value):
        return value
    masked = mask_value(value)
    if masked != value:
        return masked
    scheme, sep, rest = value.partition(" ")
    if sep and rest.strip() and scheme.isalpha():
        return f"{scheme} ***"
    return value[:4] + ELLIPSIS + value[-2:] if len(value) >= 16 else "***"


def mask_query(text: str) -> str:
    """``key=``/``api_key=``/``token=``... parameter values in URLs, paths and form bodies."""
    if "=" not in text:
        return text
    return _QUERY_SECRET.sub(_mask_param, text)


def _mask_param(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}={mask_secret(match.group(3))}"


def mask_text(text: str) -> str:
    """Free text (a URL, an error message, a non-JSON body): query secrets then values."""
    if not _candidate(text):
        return text
    return mask_value(mask_query(text))


def mask_json(value: Any) -> Any:
    """A parsed JSON value with every string masked and credential-named keys masked whole.
    Iterative, so a deeply nested body cannot exhaust the stack. A value in which no rule can
    fire (see :func:`_clean`) is returned as it is, not copied."""
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    try:
        blob = jsonfast.dumps(value)
    except (TypeError, ValueError):  # not plain JSON data: walk it
        return _mask_json_walk(value)
    return value if _clean(blob) else _mask_json_walk(value)


def dumps_masked(value: Any) -> str:
    """``value`` (parsed JSON) masked and serialised: compact JSON text."""
    blob = jsonfast.dumps(value)
    if _clean(blob):
        return blob.decode("utf-8", "surrogatepass")
    return jsonfast.dumps_str(_mask_json_walk(value))


def clean_json(*blobs: bytes) -> bool:
    """True when no masking rule can fire anywhere in ``blobs`` (JSON texts, UTF-8): masking
    any value they hold (:func:`mask_json`, :func:`mask_text`, :func:`mask_body` of the text)
    changes nothing. One scan for all the documents of a record at once (the router's
    records, :mod:`router.traffic.calls`) instead of one masking pass per document."""
    return _clean(b"\n".join(blobs))


# Credential-named keys as they appear in JSON text once lower-cased and stripped of "-"/"_".
_SECRET_KEY_QUOTED = re.compile(
    b'"(?:' + b"|".join(re.escape(k.encode()) for k in sorted(_SECRET_KEYS)) + b')"'
)
# An object key in JSON text, with its colon. A value's closing quote is never followed by a
# colon, and a key holds no unescaped quote, so this matches keys only; what precedes a key
# ("{" or ",") is not a token character, so taking keys out joins no two runs.
_JSON_KEY = re.compile(rb'"[^"\\]*"\s*:')


def _clean(blob: bytes, *, is_json: bool = True) -> bool:
    """True when no masking rule can fire anywhere in ``blob`` (JSON text, UTF-8): no secret
    parameter's "name=", no run of token characters the value rule masks (40+, or 16+ with a
    key prefix), no "bearer", no credential-named key. Masking such text
    changes nothing, so it is not parsed and walked (the common case: prose, ids, numbers).
    Conservative: JSON escapes only stand for non-token characters, except ``\\u`` escapes,
    which send the text to the full walk."""
    if b"\\u" in blob:
        return False
    low = blob.lower()
    if b"=" in blob and _secret_param(low):
        return False
    if b"bearer" in low:
        return False
    if _SECRET_KEY_QUOTED.search(low.replace(b"-", b"").replace(b"_", b"")):
        return False
    # Keys are never masked (only credential-named keys' values are): runs are looked for in
    # the values alone, so long snake_case keys ("completion_tokens") do not force the walk.
    # Only in text known to be JSON: in free text a quoted run before a colon is masked.
    # Taking keys out only removes characters and joins no two runs, so text that is clean
    # with its keys is clean without them: the (costlier) key removal only when it may matter.
    if not _maskable_runs(blob):
        return True
    return is_json and b'":' in blob and not _maskable_runs(_JSON_KEY.sub(b"", blob))


def _mask_json_walk(value: Any) -> Any:
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, str):
            parent[key] = mask_text(item)
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            for k, v in item.items():
                if isinstance(v, str) and _is_secret_key(k):
                    copy[k] = mask_secret(v)
                else:
                    copy[k] = v
                    stack.append((copy, k))
            parent[key] = copy
        elif isinstance(item, list):
            items = list(item)
            parent[key] = items
            stack.extend((items, i) for i in range(len(items)))
    return root[0]


def _is_secret_key(key: str) -> bool:
    return key.lower().replace("-", "").replace("_", "") in _SECRET_KEYS


def mask_body(text: str | None, content_type: str | None = None) -> str | None:
    """A request or response body: JSON objects/arrays are parsed and masked value by value,
    SSE is masked line by line (JSON ``data:`` payloads as JSON), anything else as text."""
    if text is None or text == "":
        return text
    if _clean(text.encode("utf-8", "surrogatepass"), is_json=False):
        return text  # no rule can fire anywhere in it (JSON, SSE or plain text alike)
    ctype = (content_type or "").lower()
    if "text/event-stream" in ctype or _looks_like_sse(text):
        return "\n".join(_mask_sse_line(line) for line in text.split("\n"))
    parsed = _json_container(text.lstrip())
    if parsed is not None:
        masked = mask_json(parsed)
        # Nothing to mask: the body stays as it came, byte for byte.
        return text if masked is parsed else jsonfast.dumps_str(masked)
    return mask_text(text)


def _json_container(text: str) -> dict[str, Any] | list[Any] | None:
    """``text`` parsed when it is a JSON object or array, else None."""
    if text[:1] not in ("{", "["):
        return None
    try:
        parsed = jsonfast.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _looks_like_sse(text: str) -> bool:
    head = text.lstrip("\r\n")[:16]
    return head.startswith(("data:", "event:", ": ", "id:", "retry:"))


def _mask_sse_line(line: str) -> str:
    if line.startswith("data:"):
        parsed = _json_container(line[5:].strip())
        if parsed is not None:
            return "data: " + jsonfast.dumps_str(mask_json(parsed))
    return mask_text(line)


def mask_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A stored copy of headers: hop-by-hop (and those named by ``Connection``) dropped,
    cookies fully redacted, credential headers masked whole, every other value through the
    value masker. Repeated names are joined with ``, `` (``set-cookie`` is redacted anyway)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    kinds = [_header_kind(name) for name, _ in pairs]
    dropped: set[str] = set()
    if _CONNECTION in kinds:
        for (_, value), kind in zip(pairs, kinds, strict=True):
            if kind == _CONNECTION:
                dropped.update(token.strip().lower() for token in value.split(","))
    # The ordinary values are checked at once: usually no rule can fire in any of them.
    plain = "\n".join(
        [value for (_, value), kind in zip(pairs, kinds, strict=True) if kind == _PLAIN]
    )
    plain_clean = not _candidate(plain)
    out: dict[str, str] = {}
    for (name, value), kind in zip(pairs, kinds, strict=True):
        if kind >= _HOP or (dropped and name.lower() in dropped):
            continue
        if kind == _REDACT:
            masked = REDACTED
        elif kind == _SECRET:
            masked = mask_secret(value)
        else:
            masked = value if plain_clean else mask_text(value)
        out[name] = f"{out[name]}, {masked}" if name in out and masked != REDACTED else masked
    return out


# How a header name is stored (mask_headers), by name as sent.
_PLAIN, _SECRET, _REDACT, _HOP, _CONNECTION = 1, 2, 3, 4, 5


@lru_cache(maxsize=2048)  # per name as sent: every header of every record asks (bounded)
def _header_kind(name: str) -> int:
    lower = name.lower()
    if lower == "connection":
        return _CONNECTION
    if lower in _HOP_BY_HOP:
        return _HOP
    if lower in _REDACT_HEADERS:
        return _REDACT
    if lower in _SECRET_HEADERS or any(w in lower for w in _SECRET_HEADER_WORDS):
        return _SECRET
    return _PLAIN


def mask_record(
    record: InterceptedRequest, *, request_from: InterceptedRequest | None = None
) -> InterceptedRequest:
    """A copy of a record with every field that can carry a secret masked, marked ``masked``.
    A record that already carries the mark is returned as it is (masking is idempotent, so
    this only saves the second pass). ``request_from``: a masked record of the same call with
    the same request (the live buffer's final update of a call): its path, request headers
    and request body are taken as they are; only the rest is masked."""
    if record.masked:
        return record
    update: dict[str, Any] = {}
    request_masked = request_from is not None
    if request_from is not None:
        update["path"] = request_from.path
        update["request_headers"] = request_from.request_headers
        update["request_body"] = request_from.request_body
    if record.response_headers:  # an in-flight record has no response side yet
        update["response_headers"] = mask_headers(record.response_headers)
    if record.response_body:
        ctype = _header(record.response_headers, "content-type")
        update["response_body"] = mask_body(record.response_body, ctype)
    if not request_masked:
        update["path"] = mask_text(record.path)
        update["request_headers"] = mask_headers(record.request_headers)
        if record.request_body:
            ctype = _header(record.request_headers, "content-type")
            update["request_body"] = mask_body(record.request_body, ctype)
    for name in ("error", "note", "annotation", "source_model", "mapped_model"):
        value = getattr(record, name)
        if isinstance(value, str):
            update[name] = mask_text(value)
    if record.llm is not None:
        update["llm"] = mask_llm(record.llm)
    if record.upstream_request is not None:
        update["upstream_request"] = mask_upstream(record.upstream_request)
    return masked_copy(record, update)


def mask_upstream(upstream: UpstreamRequest) -> UpstreamRequest:
    """The request sent upstream with its URL, headers and body masked, marked ``masked``."""
    if upstream.masked:
        return upstream
    ctype = _header(upstream.headers, "content-type") or "application/json"
    return masked_copy(
        upstream,
        {
            "url": mask_text(upstream.url),
            "headers": mask_headers(upstream.headers),
            "body": mask_body(upstream.body, ctype),
        },
    )


def mask_llm(llm: LlmInfo) -> LlmInfo:
    """The ``llm`` object with its merged response and conversation masked, marked ``masked``."""
    if llm.masked:
        return llm
    return masked_copy(
        llm,
        {
            "model": mask_text(llm.model) if llm.model else llm.model,
            "response": mask_json(llm.response),
            "conversation": mask_json(llm.conversation),
        },
    )


def masked_copy[W: _Wire](base: W, update: Mapping[str, Any]) -> W:
    """``base`` with ``update`` applied, marked ``masked``. For this module and the record
    builders next to it: ``base`` must be masked (or be fully replaced) and every value in
    ``update`` must have been masked with the functions above."""
    return mark_masked(base.model_copy(update=dict(update)))


def mark_masked[W: _Wire](built: W) -> W:
    """``built`` marked ``masked`` in place, no copy. For the record builders next to this
    module only: ``built`` was just made by the caller from values masked with the functions
    above, and nobody else holds it yet."""
    object.__getattribute__(built, "__pydantic_private__")["_masked"] = True
    return built


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None

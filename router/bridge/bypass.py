"""Bypass patterns (hosts never decrypted): the defaults plus user globs, matched in linear time
by a small glob matcher, never by a regex built from user input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypedDict

from router.errors import BadRequest, FieldError
from router.netaddr import normalize_host

# A pattern with no '*' and no '.' is a label rule: it matches any host with that label, so
# "bank" covers mybank.bank.example and online.bank, not only the host named "bank".
DEFAULT_PATTERNS: tuple[str, ...] = (
    "bank",
    "gov",
    "*.okta.com",
    "*.auth0.com",
    "*.apple.com",
    "*.icloud.com",
    "login.microsoftonline.com",
)
MAX_PATTERN = 253


class BypassRow(TypedDict):
    pattern: str
    source: Literal["default", "user"]


def glob_match(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters (also none); everything else is literal.

    Linear time: the pieces between stars are found left to right with ``str.find``; taking
    the leftmost occurrence of each is always safe because a later star can absorb the rest."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == text
    head, *middle, tail = parts
    if len(head) + len(tail) > len(text) or not text.startswith(head) or not text.endswith(tail):
        return False
    pos, end = len(head), len(text) - len(tail)
    for piece in middle:
        if not piece:
            continue
        found = text.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def normalize_pattern(pattern: str) -> str:
    p = normalize_host(pattern)  # a glob normalises like the names it matches
    if not p or len(p) > MAX_PATTERN or any(c.isspace() for c in p) or p.strip("*") == "":
        # A lone "*" would bypass everything, which is "turn llmtap off", not a pattern.
        raise BadRequest(
            f"invalid bypass pattern '{pattern}'",
            [FieldError("patterns", "a host glob like *.example.com, or a single label")],
        )
    return p


def _is_label_rule(pattern: str) -> bool:
    return "*" not in pattern and "." not in pattern


class BypassMatcher:
    def __init__(
        self, user_patterns: Iterable[str] = (), *, defaults: Iterable[str] = DEFAULT_PATTERNS
    ) -> None:
        self.defaults = [normalize_pattern(p) for p in defaults]
        seen = set(self.defaults)
        self.user: list[str] = []
        for raw in user_patterns:
            p = normalize_pattern(raw)
            if p not in seen:
                seen.add(p)
                self.user.append(p)

    def matches(self, host: str) -> bool:
        h = normalize_host(host)
        if not h:
            return False
        labels: set[str] | None = None
        for p in (*self.defaults, *self.user):
            if _is_label_rule(p):
                labels = labels if labels is not None else set(h.split("."))
                if p in labels:
                    return True
            elif glob_match(p, h):
                return True
        return False

    def rows(self) -> list[BypassRow]:
        return [BypassRow(pattern=p, source="default") for p in self.defaults] + [
            BypassRow(pattern=p, source="user") for p in self.user
        ]

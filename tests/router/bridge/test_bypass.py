"""Bypass patterns: defaults, label rules, user globs, linear-time matcher."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.bridge.bypass import DEFAULT_PATTERNS, BypassMatcher, glob_match
from router.errors import BadRequest


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("www.bank", True),
        ("online.bank.example.com", True),
        ("mybank.com", False),  # "bank" must be a whole label
        ("secure.irs.gov", True),
        ("gov.uk", True),
        ("government.example", False),
        ("acme.okta.com", True),
        ("okta.com", False),
        ("a.b.auth0.com", True),
        ("gateway.icloud.com", True),
        ("swscan.apple.com", True),
        ("LOGIN.MicrosoftOnline.com.", True),
        ("api.anthropic.com", False),
        ("", False),
    ],
)
def test_defaults(host: str, expected: bool) -> None:
    assert BypassMatcher().matches(host) is expected


def test_user_globs_and_rows() -> None:
    m = BypassMatcher(["*.Corp.*", "intranet", "exact.example.org", "*.okta.com"])
    assert m.matches("git.corp.example.com")
    assert not m.matches("corp.example.com")
    assert m.matches("wiki.intranet.local")
    assert m.matches("exact.example.org")
    assert not m.matches("sub.exact.example.org")
    rows = m.rows()
    assert [r["pattern"] for r in rows if r["source"] == "default"] == list(DEFAULT_PATTERNS)
    # normalized, and a duplicate of a default is not listed twice
    assert [r for r in rows if r["source"] == "user"] == [
        {"pattern": "*.corp.*", "source": "user"},
        {"pattern": "intranet", "source": "user"},
        {"pattern": "exact.example.org", "source": "user"},
    ]


@pytest.mark.parametrize("bad", ["", "  ", "*", "**", "a b.com"])
def test_invalid_patterns(bad: str) -> None:
    with pytest.raises(BadRequest):
        BypassMatcher([bad])


def test_regex_metacharacters_are_literal() -> None:
    m = BypassMatcher(["a.b(c)+[d]?.com"])
    assert m.matches("a.b(c)+[d]?.com")
    assert not m.matches("axb(c)+[d]?.com")
    assert not m.matches("a.bcc[d]?.com")


def test_pathological_pattern_is_answered() -> None:
    # Exponential for a backtracking matcher; the piecewise find answers at once.
    pattern = "*a" * 40 + "*b"
    assert not glob_match(pattern, "a" * 20000)
    assert glob_match(pattern, "a" * 20000 + "b")


@given(
    st.text(alphabet="ab.*", max_size=12),
    st.text(alphabet="ab.", max_size=16),
)
def test_glob_agrees_with_fnmatch(pattern: str, text: str) -> None:
    # fnmatch is the reference for '*'-only patterns (no '?' or '[' in the alphabet).
    assert glob_match(pattern, text) == fnmatch.fnmatchcase(text, pattern)

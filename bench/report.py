"""The result model every experiment fills and its Markdown rendering (docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Spread


@dataclass
class Headline:
    """One row of the side-by-side table. ``cells`` maps an arm (or a ratio column) to text;
    ``verdict`` is ``met``, ``MISSED`` or ``not run``/``n/a``."""

    metric: str
    cells: dict[str, str]
    target: str = ""
    verdict: str = ""


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        self.lines.append("")

    def para(self, text: str) -> None:
        self.lines.append(text)
        self.lines.append("")


HEAD_COLUMNS = [
    "direct",
    "floor",
    "llmtap",
    "litellm",
    "llmtap/direct",
    "llmtap/floor",
    "llmtap/LiteLLM",
]


def fmt(s: Spread, digits: int = 2, unit: str = "") -> str:
    return s.fmt(digits, unit)


def verdict(value: Spread, *, at_most: float | None = None, at_least: float | None = None) -> str:
    """``met``/``MISSED`` on the median; ``n/a`` when nothing was measured."""
    if not value.ok:
        return "n/a"
    if at_most is not None and value.median > at_most:
        return "MISSED"
    if at_least is not None and value.median < at_least:
        return "MISSED"
    return "met"


def render_headline(rows: list[Headline]) -> list[str]:
    cols = ["metric", *HEAD_COLUMNS, "target", "verdict"]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = [r.metric, *(r.cells.get(c, "") for c in HEAD_COLUMNS), r.target, r.verdict]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out

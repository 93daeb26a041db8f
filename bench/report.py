"""The result model every experiment fills and its Markdown rendering (docs/benchmarks.md)."""

from __future__ import annotations

import re
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


# A hand-kept or separately generated block of the report: `<!-- NAME ... -->` on its own line
# up to `<!-- /NAME ... -->` (NAME is the first word; the rest of either line is free text).
_BLOCK = re.compile(
    r"^<!-- (?P<name>[\w.-]+)(?:[ \t][^\n]*?)? -->\n.*?^<!-- /(?P=name)(?:[ \t][^\n]*?)? -->\n?",
    re.M | re.S,
)


def marked_blocks(text: str) -> dict[str, str]:
    """The marked blocks of ``text`` by name, each with its two marker lines."""
    return {m.group("name"): m.group(0).rstrip("\n") + "\n" for m in _BLOCK.finditer(text)}


ANALYSIS_BLOCK = "analysis"


def analysis_block(text: str) -> str:
    """The hand-written analysis (bench/analysis.md) as the report's marked block, which
    ``python -m bench --analysis`` can replace without measuring again."""
    return (
        f"<!-- {ANALYSIS_BLOCK} from bench/analysis.md (python -m bench --analysis) -->\n"
        f"{text.rstrip()}\n<!-- /{ANALYSIS_BLOCK} -->\n"
    )


def replace_block(doc: str, block: str) -> str:
    """``doc`` with its marked block of ``block``'s name replaced by ``block``. Raises
    ValueError when ``doc`` has no such block (a report written before it was marked)."""
    ((name, _),) = marked_blocks(block).items()
    for match in _BLOCK.finditer(doc):
        if match.group("name") == name:
            return doc[: match.start()] + block + doc[match.end() :]
    raise ValueError(f"the report has no '{name}' block: run the bench to write one")


def keep_marked(old: str, new: str) -> str:
    """``new`` plus every marked block of ``old`` that ``new`` does not itself regenerate
    (a block of the same name in ``new`` wins), appended in ``old``'s order. A regenerated
    report rewrites what the suite measures and keeps what others own (the gateway
    experiment's section, hand-written notes)."""
    have = marked_blocks(new)
    kept = [block for name, block in marked_blocks(old).items() if name not in have]
    if not kept:
        return new
    return new.rstrip("\n") + "\n\n" + "\n".join(kept)

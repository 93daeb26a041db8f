"""Side-by-side rows: added latency per round, ratios per round, verdicts, Markdown table."""

import pytest

from bench.experiments import compare_row, value_row
from bench.report import (
    Headline,
    analysis_block,
    keep_marked,
    marked_blocks,
    render_headline,
    replace_block,
    verdict,
)
from bench.stats import spread


def test_compare_row_adds_over_direct_and_ratios_added_latency():
    per_round = {
        "direct": [10.0, 20.0],
        "floor": [11.0, 22.0],  # adds 1, 2
        "llmtap": [12.0, 24.0],  # adds 2, 4
        "litellm": [30.0, 60.0],  # adds 20, 40
    }
    row = compare_row("p50", per_round, check=lambda sp: verdict(sp["llmtap/LiteLLM"], at_most=0.2))
    assert row.cells["direct"].endswith("abs")
    assert row.cells["llmtap"] == "+3.00 ms (2.00–4.00)"
    assert row.cells["llmtap/floor"] == "2.00x"  # 2/1 and 4/2 in each round
    assert row.cells["llmtap/LiteLLM"] == "0.10x"
    assert row.cells["llmtap/direct"] == "1.20x"
    assert row.verdict == "met"


def test_value_row_ratios_throughput():
    row = value_row("rps", {"llmtap": [1000.0, 1200.0], "litellm": [100.0, 100.0]}, digits=0)
    assert row.cells["llmtap/LiteLLM"] == "11.00x (10.00–12.00)"
    assert verdict(spread([11.0]), at_least=10) == "met"
    assert verdict(spread([9.0]), at_least=10) == "MISSED"
    assert verdict(spread([]), at_least=10) == "n/a"


def test_render_headline_escapes_pipes_and_keeps_columns():
    lines = render_headline([Headline("a|b", {"llmtap": "1"}, "t", "met")])
    assert lines[0].count("|") == lines[2].count("|") - 1  # the escaped pipe is extra
    assert "a\\|b" in lines[2]
    assert lines[2].rstrip().endswith("| t | met |")


GATEWAY = (
    "<!-- gateway experiment: bench/experiments/gateway.py -->\n"
    "## Team gateway\n\n| a | b |\n|---|---|\n\n"
    "<!-- /gateway experiment -->\n"
)


def test_a_regenerated_report_keeps_the_marked_blocks_it_does_not_write():
    old = "# old\n\nold table\n\n" + GATEWAY + "\n<!-- note -->\nhand-written\n<!-- /note -->\n"
    new = "# new\n\nnew table\n"
    merged = keep_marked(old, new)
    assert merged.startswith("# new\n\nnew table\n")
    assert "old table" not in merged
    assert GATEWAY in merged and "<!-- note -->\nhand-written\n<!-- /note -->\n" in merged
    assert merged.index("Team gateway") < merged.index("hand-written")  # old's order
    assert keep_marked(merged, new) == merged  # idempotent: nothing doubles on the next run


def test_a_block_the_run_regenerates_replaces_the_old_one():
    old = "# old\n\n" + GATEWAY
    fresh = GATEWAY.replace("| a | b |", "| c | d |")
    merged = keep_marked(old, "# new\n\n" + fresh)
    assert merged == "# new\n\n" + fresh
    assert marked_blocks(merged) == {"gateway": fresh}


def test_unclosed_or_mismatched_markers_are_not_blocks():
    assert marked_blocks("<!-- a -->\nx\n<!-- /b -->\n<!-- c -->\ny\n") == {}
    assert keep_marked("<!-- a -->\nx\n", "# new\n") == "# new\n"


def test_the_analysis_block_is_replaced_in_place_and_nothing_else_moves(tmp_path):
    """``python -m bench --analysis`` swaps the report's analysis for bench/analysis.md's
    current text; the tables around it and the other blocks stay as they were."""
    from bench.__main__ import main

    doc = "# report\n\n| t |\n\n" + analysis_block("## What is left\n\nold words") + GATEWAY
    assert "old words" in marked_blocks(doc)["analysis"]
    new = replace_block(doc, analysis_block("## What is left\n\nnew words\n"))
    assert new == doc.replace("old words", "new words")
    assert marked_blocks(new)["gateway"] == marked_blocks(doc)["gateway"]
    with pytest.raises(ValueError, match="no 'analysis' block"):
        replace_block("# an old report\n", analysis_block("x"))

    out = tmp_path / "benchmarks.md"
    out.write_text(doc)
    main(["--analysis", "--out", str(out)])  # the repo's own bench/analysis.md
    from bench.__main__ import ANALYSIS

    assert marked_blocks(out.read_text())["analysis"] == analysis_block(ANALYSIS.read_text())
    assert out.read_text().startswith("# report\n\n| t |\n\n")
    out.write_text("# an old report\n")
    with pytest.raises(SystemExit, match="no 'analysis' block"):
        main(["--analysis", "--out", str(out)])
    assert out.read_text() == "# an old report\n"  # nothing written

"""Reproducible side-by-side benchmark suite for llmtap (run ./scripts/bench)."""

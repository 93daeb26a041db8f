"""llmtap's core: IR, wire-format codecs, providers, routing, traffic records, store."""

__version__ = "0.1.0"

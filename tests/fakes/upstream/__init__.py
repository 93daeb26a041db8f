"""A scriptable fake LLM upstream speaking the OpenAI, Anthropic and Gemini wire formats.

Every wire shape here is hand-written from the vendors' API references and SDK types and never
imports our codecs, so a bug in a codec cannot hide itself by agreeing with the fake.

Routing is by path suffix, so any prefix works (``{url}/v1/chat/completions``,
``{url}/openai/v1/chat/completions``):

* ``.../chat/completions``                 OpenAI chat (JSON or SSE + ``data: [DONE]``)
* ``.../responses``                        OpenAI Responses (JSON or typed SSE events)
* ``.../messages``                         Anthropic messages (JSON or SSE)
* ``.../messages/count_tokens``            Anthropic token count
* ``.../models/{m}:generateContent``       Gemini (``:streamGenerateContent?alt=sse`` streams)
* ``GET .../models``                       model list; the Gemini shape under ``/v1beta``, the
  Anthropic shape when the request carries ``x-api-key``/``anthropic-version``, else OpenAI's.

Scripting: ``upstream.script(Reply.text("hi"), Reply.error(429, "slow down"))``. Generation
endpoints consume the queue in order; model lists and token counts consume the head only when
it is an error reply (so a test can make them fail without eating a generation reply).
An empty queue answers ``upstream.default_reply``: ``Reply.text("Hello from fake upstream")``
with usage (10, 5) unless a test sets another (agents make several calls per prompt).
``reset()`` forgets the queue, the recorded requests and the counters (for a fake shared by
the tests of a module).

Usage tuples are ``(input, output, cache_read, cache_write, reasoning)`` with OpenAI semantics:
``input`` is the whole prompt including cache reads and writes, ``output`` includes reasoning.
Each format renders them in its own semantics.
"""

from tests.fakes.upstream.reply import (
    DEFAULT_TEXT,
    DEFAULT_USAGE,
    RecordedRequest,
    Reply,
    ToolCall,
    Usage,
    split_args,
)
from tests.fakes.upstream.server import FakeUpstream

__all__ = [
    "DEFAULT_TEXT",
    "DEFAULT_USAGE",
    "FakeUpstream",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Usage",
    "split_args",
]

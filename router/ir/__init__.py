"""The canonical model of one LLM exchange: request, response, usage and stream events
(:mod:`.model`), folding and replaying streams (:mod:`.stream`) and the shared tables
(:mod:`.tables`). Callers use ``from router import ir`` and ``ir.<name>``.

Every wire format is parsed into these types and rendered from them (N codecs, not N*N
translators). Conventions that every codec relies on:

* Token semantics are OpenAI's: ``Usage.input_tokens`` is the whole prompt *including* cache
  reads and cache writes; ``output_tokens`` includes reasoning tokens. Codecs convert at the
  boundary (Anthropic's input excludes cache tokens).
* Stop reasons use Anthropic's vocabulary (``end_turn``, ``max_tokens``, ``tool_use``, ...).
* Stream block indices count every content block (text, thinking and tool_use alike), in the
  order blocks start, as Anthropic does. Codecs whose own numbering differs (OpenAI
  ``tool_calls[].index``, Responses ``output_index``) keep their own map.
* Tool-use ids are kept verbatim in the IR; a codec whose format restricts ids maps them with
  :func:`safe_tool_id`, which is deterministic so the same id maps the same way every turn.
* ``extra`` holds fields of the source format that the IR has no slot for; a renderer for the
  same format writes them back, a renderer for another format lists them in ``dropped``.
"""

from router.ir.model import (
    EFFORTS,
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    Effort,
    ErrorEvent,
    ImageBlock,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    Request,
    Response,
    Role,
    StopReason,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    safe_tool_id,
    set_tool_arguments,
)
from router.ir.stream import StreamAccumulator, response_events
from router.ir.tables import (
    EFFORT_BUDGET,
    EFFORT_LEVEL,
    LEVEL_EFFORT,
    budget_for_effort,
    claude_output_limits,
    effort_for_budget,
    is_openai_reasoning_model,
)

__all__ = [
    "EFFORTS",
    "EFFORT_BUDGET",
    "EFFORT_LEVEL",
    "LEVEL_EFFORT",
    "Block",
    "BlockDelta",
    "BlockStart",
    "BlockStop",
    "Effort",
    "ErrorEvent",
    "ImageBlock",
    "Message",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "Request",
    "Response",
    "Role",
    "StopReason",
    "StreamAccumulator",
    "StreamEvent",
    "TextBlock",
    "ThinkingBlock",
    "Tool",
    "ToolChoice",
    "ToolResultBlock",
    "ToolUseBlock",
    "Usage",
    "budget_for_effort",
    "claude_output_limits",
    "effort_for_budget",
    "is_openai_reasoning_model",
    "response_events",
    "safe_tool_id",
    "set_tool_arguments",
]

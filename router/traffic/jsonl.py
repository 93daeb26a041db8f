"""JSON Lines export of inspector records: one camelCase InterceptedRequest per line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from router.traffic.masking import mask_record
from router.traffic.record import InterceptedRequest


def iter_jsonl(records: Iterable[InterceptedRequest]) -> Iterator[str]:
    """Each record as one line of JSON ending in ``\\n`` (so the lines can be streamed as
    they are produced). Records are masked again on the way out (idempotent)."""
    for record in records:
        yield mask_record(record).model_dump_json(by_alias=True) + "\n"


def parse_jsonl(text: str) -> list[InterceptedRequest]:
    """Records back from JSONL text (blank lines skipped)."""
    return [
        InterceptedRequest.model_validate_json(line) for line in text.splitlines() if line.strip()
    ]

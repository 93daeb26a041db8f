"""JSON Lines export of inspector records: one camelCase InterceptedRequest per line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from router.traffic.masking import mask_record
from router.traffic.record import InterceptedRequest


def iter_jsonl(records: Iterable[InterceptedRequest]) -> Iterator[str]:
    """Each record as one line of JSON ending in ``\\n`` (so the lines can be streamed as
    they are produced). Each record is masked unless it already is."""
    for record in records:
        yield mask_record(record).model_dump_json(by_alias=True) + "\n"


def iter_jsonl_bytes(
    records: Iterable[InterceptedRequest], *, chunk_bytes: int = 256 * 1024
) -> Iterator[bytes]:
    """:func:`iter_jsonl` as UTF-8 chunks of about ``chunk_bytes`` (whole lines each)."""
    parts: list[bytes] = []
    size = 0
    for line in iter_jsonl(records):
        data = line.encode("utf-8", "surrogatepass")
        parts.append(data)
        size += len(data)
        if size >= chunk_bytes:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def parse_jsonl(text: str) -> list[InterceptedRequest]:
    """Records back from JSONL text (blank lines skipped)."""
    return [
        InterceptedRequest.model_validate_json(line) for line in text.splitlines() if line.strip()
    ]

"""Shared gemini wire samples and helpers for the codec tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from router import ir
from router.formats import Codec
from router.formats.gemini.codec import CODEC
from tests.router.formats.shared import cut, parse_pieces, render_bytes


def full_request() -> dict[str, Any]:
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Need the tool.", "thought": True, "thoughtSignature": "sigA"},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "sigB",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}}
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/doc.pdf"}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                            "required": ["city"],
                        },
                        "behavior": "BLOCKING",
                    }
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}
        },
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 1024,
            "stopSequences": ["END"],
            "seed": 7,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
            "candidateCount": 1,
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/abc",
    }


def full_response() -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it", "thought": True},
                        {"text": "It is sunny.", "thoughtSignature": "sig1"},
                        {"functionCall": {"name": "get_time", "args": {"tz": "CET"}, "id": "fc_9"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
                ],
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "cachedContentTokenCount": 60,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 150,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 100}],
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-1",
    }


def sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def stream_chunks() -> list[dict[str, Any]]:
    usage_early = {"promptTokenCount": 50, "totalTokenCount": 50}
    return [
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Let me ", "thought": True}]},
                    "index": 0,
                }
            ],
            "usageMetadata": usage_early,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r-42",
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "think ☃", "thought": True, "thoughtSignature": "tsig"}],
                    },
                    "index": 0,
                }
            ],
            "usageMetadata": usage_early,
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Hello, "}]}, "index": 0}
            ]
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "wörld ✓"}]}, "index": 0}
            ]
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}},
                                "thoughtSignature": "csig",
                            },
                            {"functionCall": {"name": "get_weather", "args": {"city": "Bern"}}},
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 50,
                "candidatesTokenCount": 12,
                "cachedContentTokenCount": 10,
                "thoughtsTokenCount": 8,
                "totalTokenCount": 70,
            },
        },
    ]


def merged_body() -> dict[str, Any]:
    """The non-streamed response equivalent to :func:`stream_chunks`."""
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me think ☃", "thought": True, "thoughtSignature": "tsig"},
                        {"text": "Hello, wörld ✓"},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}},
                            "thoughtSignature": "csig",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Bern"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": stream_chunks()[-1]["usageMetadata"],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r-42",
    }


def parse_in_pieces(data: bytes, sizes: list[int], codec: Codec = CODEC) -> list[ir.StreamEvent]:
    return parse_pieces(codec, cut(data, sizes))


def with_model(body: dict[str, Any], model: str = "gemini-2.5-pro") -> dict[str, Any]:
    return {**copy.deepcopy(body), "model": model}


render_all = render_bytes

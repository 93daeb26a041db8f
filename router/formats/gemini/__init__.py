"""Gemini ``generateContent`` wire format and the Cloud Code ``v1internal`` envelope around it.

``request.py``, ``response.py`` and ``stream.py`` parse and render their part of the format,
``parts.py`` maps Gemini parts to IR blocks for all three; ``codec.py`` holds the two facades
(``gemini`` and ``cloudcode``, which differ only by the envelope).

The model is not in a Gemini body (it is in the URL path): the router injects it as
``body["model"]`` before ``parse_request`` (and ``body["stream"]`` for
``:streamGenerateContent``); ``render_request`` never writes either back. Keys are accepted
in camelCase and snake_case (the REST API takes both) and rendered camelCase.

Mapping choices worth knowing:

* A ``thoughtSignature`` on a part that is not a thought becomes a signature-only
  :class:`ir.ThinkingBlock` placed just before the block of that part; rendering attaches it to
  the next part again. Thinking from other providers is never sent to Gemini.
* ``functionCall`` ids are optional in Gemini. Missing ones get ``call_{name}_{n}`` (``n`` counts
  calls in order: per response, or across the whole conversation in a request, which keeps
  them unique and stable as the conversation grows). Such generated ids are not written back.
* ``functionResponse.response`` must be an object: text results travel as ``{"result": text}``
  (``{"error": text}`` when ``is_error``); a result that is itself a JSON object is sent as is.
"""

NAME = "gemini"
CLOUDCODE = "cloudcode"
SOURCES = (NAME, CLOUDCODE)

"""The OpenAI Chat Completions wire format (``openai-chat``, ``/v1/chat/completions``).

``request.py``, ``response.py`` and ``stream.py`` parse and render their part of the format;
``codec.py`` is the facade the router uses.
"""

NAME = "openai-chat"

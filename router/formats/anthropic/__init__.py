"""The Anthropic Messages wire format (``/v1/messages``).

``request.py``, ``response.py`` and ``stream.py`` parse and render their part of the format;
``codec.py`` is the facade the router uses.
"""

NAME = "anthropic"

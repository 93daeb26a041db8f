"""The OpenAI Responses wire format (``responses``, ``/v1/responses``).

``request.py``, ``response.py`` and ``stream.py`` parse and render their part of the format;
``codec.py`` is the facade the router uses.
"""

NAME = "responses"

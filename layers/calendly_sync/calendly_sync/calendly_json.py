"""Calendly's JSON, read so that every value in it can be stored in DynamoDB and put on the bus.

JSON sets no limit on numbers, and Python's ``json`` even reads ``NaN`` and ``Infinity``,
which are not JSON; what this stack hands on has limits. ``1e400`` read as a float is ``inf``,
which ``json.dumps`` writes back as ``Infinity``: not JSON, and an event detail that is not
JSON is an entry PutEvents refuses (``MalformedDetail``). Integers are carried within int64
(the downstream contract). So a number outside those limits, and each of the literals
``NaN``, ``Infinity`` and ``-Infinity``, is kept as a string holding its text as Calendly wrote
it: nothing is lost, and everything read here writes back as valid JSON. The raw delivery
body is stored as received; this shapes only what is parsed from it.

The same reader serves the webhook envelope, the Calendly API's answers and the stored
``raw`` objects the publisher reads back, so a body reads the same wherever it came from.

Before Python's reader, pydantic-core's (the parser the webhook envelope used alone until
now) judges the text: it refuses what must not be stored even though Python's reader would
take it, a lone surrogate escape (``"\\ud800"``: no UTF-8 can carry it to DynamoDB or the
bus) and nesting deeper than pydantic-core's limit. It is C-fast: a few microseconds for
a Calendly body.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic_core import from_json

__all__ = ["INT64_MAX", "INT64_MIN", "loads"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: ``-9223372036854775808`` is 20 characters: a longer integer is out of range without reading it
#: (and Python refuses to read one of more than 4,300 digits at all).
_INT64_MAX_CHARS = 20


def loads(text: str | bytes) -> Any:
    """The value ``text`` holds, numbers out of range as their own text; ``ValueError`` if it is not JSON."""
    from_json(text)  # raises ValueError: not JSON, a lone surrogate, nested too deep
    try:
        return json.loads(text, parse_int=_integer, parse_float=_finite_float, parse_constant=_literal)
    except RecursionError:  # not reached past the check above; kept so no caller ever sees one
        raise ValueError("JSON nested too deeply") from None


def _integer(text: str) -> int | str:
    if len(text) > _INT64_MAX_CHARS:
        return text
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else text


def _finite_float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _literal(name: str) -> str:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's extensions to JSON, kept as their text."""
    return name

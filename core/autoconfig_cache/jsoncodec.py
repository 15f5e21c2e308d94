"""Fast JSON with the standard library's behaviour, minus what no store can hold.

Start-up from a cache of 10,000 environments, and a 10 MB stream ``put``, are dominated by JSON
parsing; orjson parses about five times faster than :mod:`json`. Where orjson refuses input the
standard library accepts (integers too large for a double, ``NaN``, ``Infinity``), the standard
library decides, so what is accepted never depends on the accelerator — with two exceptions,
refused whichever parser runs, because a value holding them cannot be written back as UTF-8 JSON
or walked without exhausting the stack:

* a lone surrogate escape (``"\\ud800"``): not a Unicode character, it cannot be encoded as UTF-8;
* nesting deeper than :data:`MAX_DEPTH` (orjson's own limit), which would otherwise end in a
  :class:`RecursionError` in the standard library or in any code walking the result.

Both, and integers over the standard library's digit limit, raise :class:`JSONDecodeError`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

JSONDecodeError = json.JSONDecodeError
#: The deepest nesting of arrays and objects accepted (orjson refuses anything deeper).
MAX_DEPTH = 1024


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises :class:`json.JSONDecodeError` (or ``UnicodeDecodeError``) on bad input."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        refused = exc  # orjson's error says what and where; it is a json.JSONDecodeError
    try:
        value = json.loads(data)
    except RecursionError:
        raise refused from None
    except (JSONDecodeError, UnicodeDecodeError):  # both ValueErrors, the standard library's own
        raise
    except ValueError:  # an integer over sys.get_int_max_str_digits() digits
        raise refused from None
    if not _storable(value):
        raise refused
    return value


def _storable(value: Any) -> bool:
    """No lone surrogate in any string or key, nesting within :data:`MAX_DEPTH`.

    Iterative, so that it cannot itself hit the recursion limit. Only the fallback path (input
    orjson refused) pays for it.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return False
        elif isinstance(item, dict):
            if depth >= MAX_DEPTH:
                return False
            for key, child in item.items():
                if not _encodable(key):
                    return False
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in item)
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON (no spaces, non-ASCII kept as UTF-8)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

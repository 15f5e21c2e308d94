"""Fast JSON with the standard library's behaviour, minus what no store can hold.

Start-up from a cache of 10,000 environments, and a 10 MB stream ``put``, are dominated by JSON
parsing. msgspec parses faster than :mod:`json` (and than orjson) and, like :mod:`json`, keeps
integers of any size exact (orjson silently turns integers beyond 64 bits into floats, which would
change an item's unknown fields on their way through the cache). Where msgspec refuses input the
standard library accepts (``NaN``, ``Infinity``, lone surrogates), the standard library decides,
so what is accepted never depends on the accelerator — with two exceptions,
refused whichever parser runs, because a value holding them cannot be written back as UTF-8 JSON
or walked without exhausting the stack:

* a lone surrogate escape (``"\\ud800"``): not a Unicode character, it cannot be encoded as UTF-8;
* nesting deeper than :data:`MAX_DEPTH` (or than the interpreter's recursion limit allows), which would otherwise end in a
  :class:`RecursionError` in the standard library or in any code walking the result.

Both, and integers over the standard library's digit limit, raise :class:`JSONDecodeError`.

:func:`loads_lenient` is for data made of many independent items (a stream ``put`` or ``patch``,
a ``cache import`` file): it lets lone surrogates through and says whether the value may hold
one, so that only the item holding it is refused (by
:func:`autoconfig_cache.validation.check_strings`), not the whole document. Nesting deeper than
:data:`MAX_DEPTH` and over-long integers still refuse the whole document there: no walk over
such a value is safe, and no item is known before it is parsed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from .validation import unencodable_string

JSONDecodeError = json.JSONDecodeError
#: The deepest nesting of arrays and objects accepted.
MAX_DEPTH = 1024

# One decoder, reused: building it per call costs more than parsing a small event.
_decoder = msgspec.json.Decoder()


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON; raises :class:`json.JSONDecodeError` (or ``UnicodeDecodeError``) on bad input,
    a lone surrogate anywhere included."""
    try:
        return _within_depth(_decoder.decode(data), data)
    except msgspec.DecodeError as exc:
        refused = _refusal(data, exc)
    except RecursionError:
        return _deep(data)
    value = _fallback(data, refused)
    if unencodable_string(value) is not None:
        raise refused
    return value


def loads_lenient(data: bytes | bytearray | str) -> tuple[Any, bool]:
    """Parse JSON, letting lone surrogates through: ``(value, clean)``.

    ``clean`` is ``True`` when msgspec parsed the input, which then holds no lone surrogate; when
    ``False`` the standard library did, and the value may hold some: check each item with
    :func:`autoconfig_cache.validation.check_strings` before keeping it.

    :raises json.JSONDecodeError: not JSON, nesting deeper than :data:`MAX_DEPTH`, or an integer
        over the standard library's digit limit (the whole document is refused).
    :raises UnicodeDecodeError: ``data`` is bytes that are not UTF-8.
    """
    try:
        return _within_depth(_decoder.decode(data), data), True
    except msgspec.DecodeError as exc:
        refused = _refusal(data, exc)
    except RecursionError:
        return _deep(data), True
    return _fallback(data, refused), False


def _within_depth(value: Any, data: bytes | bytearray | str) -> Any:
    """``value`` if it nests no deeper than :data:`MAX_DEPTH`, else a :class:`JSONDecodeError`.

    msgspec recurses under the interpreter's recursion limit: with the default limit (1,000) it
    cannot return anything nested deeper than :data:`MAX_DEPTH`, so the common case costs one
    comparison. Only a process that raised the limit (a test runner such as Hypothesis does)
    pays for the walk, which keeps the rule exact whatever the limit.
    """
    if sys.getrecursionlimit() > MAX_DEPTH and _deeper_than_max(value):
        raise _too_deep(_refusal(data, ValueError("too deep")))
    return value


def _deep(data: bytes | bytearray | str) -> Any:
    """Input nested deeper than msgspec's share of the interpreter's recursion limit.

    orjson parses nesting up to :data:`MAX_DEPTH` without recursing in Python, and refuses lone
    surrogates as msgspec does (so its value is clean). Its one difference, integers beyond 64
    bits read as floats, is accepted for such documents only: no AutoConfig item nests anywhere
    near this deep, and the alternative is refusing every item of the document.
    """
    import orjson  # rare input: not worth importing orjson for at start (see _orjson_dumps)

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep(exc) from None
        raise


def _refusal(data: bytes | bytearray | str, exc: Exception) -> JSONDecodeError:
    """msgspec's refusal as the :class:`JSONDecodeError` this module raises."""
    doc = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return JSONDecodeError(str(exc), doc, 0)


def _fallback(data: bytes | bytearray | str, refused: JSONDecodeError) -> Any:
    """What the standard library makes of input msgspec refused, within :data:`MAX_DEPTH` and
    the digit limit; else a :class:`JSONDecodeError` saying which limit."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise _too_deep(refused) from None
    except (JSONDecodeError, UnicodeDecodeError):  # both ValueErrors, the standard library's own
        raise
    except ValueError:  # an integer over sys.get_int_max_str_digits() digits
        raise JSONDecodeError(
            f"a number has more than {sys.get_int_max_str_digits()} digits",
            refused.doc,
            refused.pos,
        ) from None
    if _deeper_than_max(value):
        raise _too_deep(refused)
    return value


def _too_deep(refused: JSONDecodeError) -> JSONDecodeError:
    return JSONDecodeError(
        f"nesting deeper than {MAX_DEPTH} levels of arrays and objects", refused.doc, refused.pos
    )


def _deeper_than_max(value: Any) -> bool:
    """Whether arrays and objects nest deeper than :data:`MAX_DEPTH` in ``value``.

    Iterative, so that it cannot itself hit the recursion limit. Only the fallback path (input
    msgspec refused) pays for it.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def dumps_exact(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON that :func:`loads` turns back into ``value`` exactly.

    Unlike :func:`dumps` (orjson), ``NaN`` and ``Infinity`` stay what the standard library
    parsed them from instead of becoming ``null``, and integers of any size are written whole.
    A lone surrogate, which UTF-8 cannot encode, is written as a ``\\u`` escape (the whole text
    then escapes every non-ASCII character), which :func:`loads_lenient` reads back. For an item
    built from a value (an item's JSON is then held as text, see
    :class:`autoconfig_cache.models.Environment`), where the value must survive unchanged.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=True).encode("ascii")


def msgspec_depth_exact() -> bool:
    """Whether msgspec's own refusal of deep nesting is enough for the :data:`MAX_DEPTH` rule.

    True with the interpreter's default recursion limit: msgspec then raises
    :class:`RecursionError` (which callers take as "use the general path") before
    :data:`MAX_DEPTH`. A process that raised the limit must use :func:`loads` or
    :func:`loads_lenient`, which walk the value.
    """
    return sys.getrecursionlimit() <= MAX_DEPTH


def _import_orjson_dumps(value: Any) -> bytes:
    """``orjson.dumps``, imported by the first call: a start from the cache serialises nothing
    before it serves, and importing orjson costs it a few milliseconds. The first call puts
    ``orjson.dumps`` itself in :data:`_orjson_dumps`, so later calls cost nothing more."""
    global _orjson_dumps
    import orjson

    _orjson_dumps = orjson.dumps
    return orjson.dumps(value)


_orjson_dumps: Callable[[Any], bytes] = _import_orjson_dumps


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON (no spaces, non-ASCII kept as UTF-8)."""
    try:
        return _orjson_dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

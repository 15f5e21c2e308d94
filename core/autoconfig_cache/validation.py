"""The one definition of a valid item: what every built-in store, and the encoding around it,
can hold.

An item that breaks one of these rules would be accepted into memory and then make every write
of the store that holds it fail. So the rules are checked where items enter (the stream's
``put``/``patch``/``delete``, ``cache import``, store reads through
:meth:`Environment.from_json <autoconfig_cache.models.Environment.from_json>` and
:meth:`Filter.from_json <autoconfig_cache.models.Filter.from_json>`), and an item that breaks
one is refused on its own, with a :class:`~autoconfig_cache.errors.MalformedItemError` naming it.

**Ids** (an environment's ``envID``, a filter's id, the map keys of a ``put`` and the ids in
``patch``/``delete`` paths):

* not empty;
* at most :data:`MAX_ID_BYTES` bytes of UTF-8;
* only printable characters (:meth:`str.isprintable`): no control character, no newline that
  could start a forged log line, no lone surrogate (which is not printable either, so an id that
  passes is always encodable as UTF-8).

**Versions** (an item's ``version``, a ``delete``'s version): integers, not booleans and not
floats, from :data:`MIN_VERSION` to :data:`MAX_VERSION`.

**Strings**: every string and every object key of an item encodable as UTF-8, i.e. no lone
surrogate (``"\\ud800"``). JSON parsed by msgspec cannot hold one (it refuses them), so only
values parsed by the standard library's fallback are walked (see
:func:`autoconfig_cache.jsoncodec.loads_lenient`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import MalformedItemError

__all__ = [
    "MAX_ID_BYTES",
    "MAX_VERSION",
    "MIN_VERSION",
    "SHORT_ID_CHARS",
    "check_item_id",
    "check_strings",
    "check_version",
    "encodable",
    "item_id_problem",
    "shown_id",
    "unencodable_string",
    "version_problem",
]

#: The longest id accepted, in bytes of UTF-8.
#:
#: The tightest store is DynamoDB: its sort key, ``env:<envID>`` or ``filter:<filterID>`` (see
#: ``autoconfig_cache_dynamodb.store``), may be at most 1,024 bytes ("Partition keys and sort
#: keys" in https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html).
#: 256 leaves room for the longest prefix (``filter:``, 7 bytes) four times over, for any
#: prefix a future layout or a plugin adds, and for the id in log lines and the ``/status``
#: page. LaunchDarkly's ids are 24 hexadecimal characters, so no real id comes near it.
MAX_ID_BYTES = 256

#: The lowest version accepted. LaunchDarkly's versions start at 1; 0 is Go's zero value, which
#: a Relay Proxy writes for an item without one. Negative numbers are refused: the Redis store
#: compares versions as canonical decimal digit strings (``autoconfig_cache_redis.scripts``).
MIN_VERSION = 0

#: The highest version accepted: 2**53 - 1, the largest integer every consumer holds exactly.
#:
#: * Stores compare ``2 * version + 1`` for a tombstone (:func:`autoconfig_cache.records.
#:   store_version`), and the encrypted blob's header holds that number as a signed 64-bit
#:   integer (``autoconfig_cache.codec.aesgcm``), as does SQLite's ``INTEGER`` and Go's
#:   ``int`` in a Relay Proxy reading the cache: the version itself must stay below 2**62.
#: * A double holds integers exactly only up to 2**53: Lua numbers in Redis scripts (this
#:   project's scripts compare digit strings for that reason, a plugin's may not), JavaScript
#:   and any JSON reader that decodes numbers as doubles. DynamoDB numbers hold 38 digits.
#:
#: 2**53 - 1 satisfies all of them, and the tombstone encoding of it (2**54 - 1) stays far
#: within 64 bits. LaunchDarkly's versions are small counters.
MAX_VERSION = 2**53 - 1

#: Ids of at most this many characters are within :data:`MAX_ID_BYTES` whatever the characters
#: (UTF-8 takes at most 4 bytes per character): a printable id this short is valid without
#: being encoded, the fast path for code that checks thousands of ids.
SHORT_ID_CHARS = MAX_ID_BYTES // 4
# Longer ids are shown cut to this many characters in messages.
_SHOWN_ID_CHARS = 40


def shown_id(item_id: object) -> str:
    """``item_id`` as it may appear in a message or a log line: quoted and escaped
    (:func:`repr`, so control characters and lone surrogates are written as escapes), and cut to
    a readable length, with its size, when it is long."""
    if isinstance(item_id, str) and len(item_id) > _SHOWN_ID_CHARS:
        size = len(item_id.encode("utf-8", "surrogatepass"))
        return f"{item_id[:_SHOWN_ID_CHARS]!r}... ({size} bytes)"
    return repr(item_id)


def item_id_problem(item_id: object) -> str | None:
    """Why ``item_id`` is not a valid id, or ``None`` when it is (see the module docstring)."""
    if type(item_id) is not str:
        return f"the id must be a string, got {type(item_id).__name__}"
    if not item_id:
        return "the id is empty"
    if not item_id.isprintable():
        # Named escaped: a control character, a lone surrogate, a format character ...
        char = next(char for char in item_id if not char.isprintable())
        return f"the id holds the unprintable character {char!r} (U+{ord(char):04X})"
    if len(item_id) > SHORT_ID_CHARS and len(item_id.encode("utf-8")) > MAX_ID_BYTES:
        return f"the id is longer than {MAX_ID_BYTES} bytes"
    return None


def check_item_id(kind: str, item_id: object) -> str:
    """Return ``item_id`` if it is a valid id of an item of ``kind`` (``environment``,
    ``filter``); else raise.

    :raises MalformedItemError: naming the item (its id escaped) and the rule it breaks.
    """
    problem = item_id_problem(item_id)
    if problem is not None:
        raise MalformedItemError(f"{kind} {shown_id(item_id)}: {problem}")
    assert isinstance(item_id, str)  # item_id_problem said so
    return item_id


def _shown_number(value: int) -> str:
    # A huge number is named by its size: its digits would flood the log line (and converting
    # one over sys.get_int_max_str_digits() digits to text raises ValueError).
    if value.bit_length() > 100:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    return str(value)


def version_problem(value: object) -> str | None:
    """Why ``value`` is not a valid version, or ``None`` when it is (see the module docstring)."""
    # bool is an int subclass: a version of `true` is malformed, not 1.
    if type(value) is not int:
        return f"must be an integer, got {type(value).__name__}"
    if not MIN_VERSION <= value <= MAX_VERSION:
        return (
            f"is out of range: {_shown_number(value)} (accepted: {MIN_VERSION} to "
            f"{MAX_VERSION}, the integers every store holds exactly)"
        )
    return None


def check_version(what: str, value: object) -> int:
    """Return ``value`` if it is a valid version; else raise.

    :param what: names the item and the field, e.g. ``"environment 'e1': field 'version'"``.
    :raises MalformedItemError: saying what the version is and the accepted range.
    """
    problem = version_problem(value)
    if problem is not None:
        raise MalformedItemError(f"{what} {problem}")
    assert type(value) is int  # version_problem said so
    return value


def encodable(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _children(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key, path  # the key itself, found at the object's path
            yield child, f"{path}.{key}" if isinstance(key, str) else path
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield child, f"{path}[{index}]"


def unencodable_string(value: Any) -> str | None:
    """Where in ``value`` (a decoded JSON value) the first string or object key that UTF-8
    cannot encode is, as a path such as ``$.sdkKeys[0].key``; ``None`` when there is none.

    Iterative, so that deep nesting cannot hit the recursion limit.
    """
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not encodable(item):
                return path
        elif isinstance(item, dict | list):
            stack.extend(_children(item, path))
    return None


def check_strings(what: str, value: Any) -> None:
    """Raise unless every string and object key in ``value`` is encodable as UTF-8.

    :param what: names the item, e.g. ``"environment 'e1'"``.
    :raises MalformedItemError: naming the item and where the string is (escaped).
    """
    path = unencodable_string(value)
    if path is not None:
        raise MalformedItemError(
            f"{what}: a string at {path!r} holds a lone surrogate, which UTF-8 cannot encode"
        )

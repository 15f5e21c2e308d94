"""JSON values of every type, and the event text they become on the wire.

Some hostile inputs cannot be produced by :func:`json.dumps` (a 5,000-digit integer, nesting past
the standard library's recursion limit, a lone surrogate written as a ``\\uXXXX`` escape next to
raw UTF-8). They go into the Python value as :class:`Raw` placeholders, written as marker strings
and replaced by their text after encoding.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
from hypothesis import strategies as st

#: Scalars that are hard on a JSON codec or a store but are valid JSON values: integers beyond
#: 64 bits (orjson refuses them, the standard library decides), the extremes of a double.
AWKWARD_NUMBERS = (2**62, 2**63, 2**64, 2**70, -(2**63) - 1, -1, 10**300, 1e308, -1e308, 5e-324)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(AWKWARD_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),  # NaN and Infinity are not JSON
    st.text(max_size=12),  # any code point but surrogates: controls, NUL, U+2028 ...
)

#: Any JSON value (small): what an unknown or loosely typed field may hold.
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
    ),
    max_leaves=8,
)

#: JSON values that are not strings (for a field that must be one).
non_strings = json_values.filter(lambda value: not isinstance(value, str))

#: A lone surrogate: not a character, so no store can hold it as UTF-8 text.
lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)


@attrs.frozen
class Raw:
    """A piece of JSON text put in as it is (the generator's own marker is replaced by it)."""

    text: str

    @property
    def marker(self) -> str:
        """The string that stands for it until the event is encoded."""
        return f"\ue000raw{id(self)}\ue000"


def deep_nesting(depth: int) -> Raw:
    """An array nested ``depth`` levels deep, holding ``0``."""
    return Raw("[" * depth + "0" + "]" * depth)


def many_digits(digits: int) -> Raw:
    """An integer of ``digits`` digits (past 4,300 the standard library refuses to parse it)."""
    return Raw("9" * digits)


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep ``value`` is (iterative: deep values are the point)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
            deepest = max(deepest, depth + 1)
    return deepest


def nested(depth: int) -> Any:
    """The Python value of :func:`deep_nesting` (built iteratively)."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def encode(value: Any, *, ascii_only: bool, indent: int | None) -> str:
    """JSON text of ``value``: lone surrogates as ``\\uXXXX`` escapes, :class:`Raw` pieces in
    place, other non-ASCII characters raw unless ``ascii_only``; ``indent`` spreads the text over
    several lines (so over several ``data:`` lines)."""
    raws: dict[str, str] = {}

    def substitute(item: Any) -> Any:
        if isinstance(item, Raw):
            raws[item.marker] = item.text
            return item.marker
        if isinstance(item, dict):
            return {key: substitute(child) for key, child in item.items()}
        if isinstance(item, list):
            return [substitute(child) for child in item]
        return item

    text = json.dumps(substitute(value), ensure_ascii=ascii_only, indent=indent)
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker, ensure_ascii=ascii_only), raw)
    return text


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (with its full length): for labels, where a
    1,100-byte id or a 5,000-digit number would drown the report."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "<big int>"
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"

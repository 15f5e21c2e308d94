"""The secrets the test suite hands to the code under test, in one registry, and the search for
them in text.

Two kinds of secret are known:

* **Fixed values** (AutoConfig keys, encryption keys, passwords, AWS credentials of the fixtures):
  each is registered where it is defined, in one line — ``KEY = known_secret("...")`` — and
  searched for verbatim.
* **Item keys** (the SDK and mobile keys of generated environments; thousands per run): all are
  shaped like LaunchDarkly's (``sdk-``/``mob-`` and hex digits) — :func:`new_item_key` makes the
  random ones of ``tests/items.py``, ``autoconfig_cache.demo.data`` makes the rest — so any text
  of that shape is a key in clear. One regular expression instead of a search per key, and no
  key has to be remembered. A masked key (``****1a2b``) never has the shape.

The session-wide log check (``tests/conftest.py``) runs :func:`find_secrets` on every log line.
"""

from __future__ import annotations

import re
import secrets

from autoconfig_cache.secrets import mask

__all__ = [
    "ITEM_KEY_SHAPE",
    "MIN_SECRET_LENGTH",
    "find_secrets",
    "item_keys_made",
    "known_secret",
    "known_secrets",
    "mask_found",
    "new_item_key",
    "shows_masked_secret",
]

#: Shorter fixed values are refused: a search for ``"testing"`` or ``"key"`` would find logger
#: names and ordinary words, and a check that cries wolf gets switched off. Fixtures that need a
#: secret use a distinctive one.
MIN_SECRET_LENGTH = 10

#: An SDK or mobile key in clear: the prefix, then at least eight hex digits (the first group of
#: ``sdk-<uuid>`` or of ``sdk-<24 hex digits>``); the whole token is taken so it can be masked.
ITEM_KEY_SHAPE = re.compile(r"\b(?:sdk|mob)-[0-9a-f]{8}[0-9a-f-]*")

_fixed: set[str] = set()
_masked_forms: set[str] = set()
_item_keys_made = 0


def known_secret(value: str) -> str:
    """Register a fixture's secret (searched for verbatim in every log line) and return it.

    Surrounding whitespace is not part of the secret (settings are stripped), so the stripped
    value is searched for.

    :raises ValueError: if the value is shorter than :data:`MIN_SECRET_LENGTH` characters.
    """
    searched = value.strip()
    if len(searched) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"a known secret needs at least {MIN_SECRET_LENGTH} characters to be searched for "
            f"without false alarms; got {len(searched)}: use a more distinctive test value"
        )
    _fixed.add(searched)
    _masked_forms.add(mask(searched))
    return value


def new_item_key(prefix: str) -> str:
    """A random SDK (``"sdk"``) or mobile (``"mob"``) key of the shape :func:`find_secrets`
    looks for."""
    global _item_keys_made
    key = f"{prefix}-{secrets.token_hex(12)}"
    if ITEM_KEY_SHAPE.fullmatch(key) is None:
        raise ValueError(f"prefix {prefix!r} does not make a key-shaped value; use sdk or mob")
    _item_keys_made += 1
    return key


def known_secrets() -> frozenset[str]:
    """The fixed secrets registered so far."""
    return frozenset(_fixed)


def item_keys_made() -> int:
    """How many item keys :func:`new_item_key` has made in this process."""
    return _item_keys_made


def find_secrets(text: str, fixed: frozenset[str] | None = None) -> list[str]:
    """Every secret in ``text`` in clear, each described masked (never the secret itself).

    :param fixed: the fixed secrets to look for (default: every registered one); item keys are
        found by their shape either way.
    """
    found = [mask(value) for value in (_fixed if fixed is None else fixed) if value in text]
    found.extend(f"key-shaped {mask(m.group())}" for m in ITEM_KEY_SHAPE.finditer(text))
    return found


def mask_found(text: str, fixed: frozenset[str] | None = None) -> str:
    """``text`` with every secret :func:`find_secrets` finds replaced by its masked form, for a
    report that must not repeat the leak."""
    for value in _fixed if fixed is None else fixed:
        text = text.replace(value, mask(value))
    return ITEM_KEY_SHAPE.sub(lambda m: mask(m.group()), text)


def shows_masked_secret(text: str) -> bool:
    """Whether ``text`` shows a registered fixed secret masked (``****`` and its last four
    characters): evidence that a secret reached the logged data and was masked there."""
    return "****" in text and any(form in text for form in _masked_forms)

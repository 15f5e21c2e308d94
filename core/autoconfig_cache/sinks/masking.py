"""Masking every known credential in free text (hook output, error messages).

Hook output and a sink's exception messages are text this project did not write: they may hold
any SDK or mobile key of the configuration. :class:`SecretMasker` learns the credentials of
every environment it is shown and replaces each one found in a text by its masked form
(:func:`autoconfig_cache.secrets.mask`, last four characters).

A configuration may hold tens of thousands of keys, so the search does not try each key at
each position: keys are indexed by their first :data:`_HEAD` characters, and a text is scanned
once, one dictionary lookup per position.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..models import Environment
from ..secrets import mask

#: Length of the prefix keys are indexed by.
_HEAD = 8
#: Shorter values are not searched for: masking every "abc" in a text would hide the text, and
#: no credential is that short.
_MIN_SECRET = 4


def environment_secrets(env: Environment) -> Iterable[str]:
    """Every credential of ``env``: SDK keys (current, expiring, concurrent) and mobile keys."""
    yield env.sdk_key
    yield env.mob_key
    expiring = env.expiring_sdk_key
    if expiring is not None:
        yield expiring.value
    for key in (*env.sdk_keys, *env.mobile_keys):
        yield key.value


class SecretMasker:
    """Masks, in any text, every secret it has learned. Never forgets one: a rotated-away key
    is still a key."""

    def __init__(self) -> None:
        self._by_head: dict[str, set[str]] = {}
        self._short: set[str] = set()

    def add(self, secret: str) -> None:
        """Learn one secret (values shorter than four characters are ignored)."""
        if len(secret) < _MIN_SECRET:
            return
        if len(secret) < _HEAD:
            self._short.add(secret)
        else:
            self._by_head.setdefault(secret[:_HEAD], set()).add(secret)

    def learn(self, envs: Iterable[Environment]) -> None:
        """Learn every credential of each environment."""
        for env in envs:
            for secret in environment_secrets(env):
                self.add(secret)

    def mask(self, text: str) -> str:
        """``text`` with every learned secret in it masked."""
        found = {secret for secret in self._short if secret in text}
        by_head = self._by_head
        if by_head:
            for start in range(len(text) - _HEAD + 1):
                candidates = by_head.get(text[start : start + _HEAD])
                if candidates:
                    found.update(s for s in candidates if text.startswith(s, start))
        # Longest first: a secret that contains another is masked whole.
        for secret in sorted(found, key=len, reverse=True):
            text = text.replace(secret, mask(secret))
        return text

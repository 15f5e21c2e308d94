"""The library side of the operator tools: key rotation, masked export and validated import.

``autoconfig-cache cache rotate-key``, ``export`` and ``import`` are thin over these, so that a
program can do the same without the command line:

* :func:`rotate_keys` (also :meth:`AutoConfigCache.rotate_keys`) re-encrypts every record under
  the current key. The store's full-replace operation is the only one that rewrites a record
  whose version has not changed, and it deletes whatever it is not given; so everything is
  decrypted first, and if any record cannot be, nothing is changed
  (:class:`~autoconfig_cache.errors.UndecryptableRecordsError`) unless ``drop_undecryptable``
  (those records are then deleted; the next stream ``put`` writes them again). Records a newer
  release wrote are never deleted: they stop a rotation
  (:class:`~autoconfig_cache.errors.NewerRecordsError`), and with ``drop_undecryptable`` are
  kept byte for byte.
* :meth:`Snapshot.to_put_data(masked=True) <autoconfig_cache.models.Snapshot.to_put_data>` is the
  masked export.
* :func:`validate_put_data` checks a whole export before anything is written, every item against
  the one definition of a valid item (:mod:`autoconfig_cache.validation`): the valid items, and
  one error per invalid item; :func:`parse_put_data` is the all-or-nothing form, for which any
  problem raises a :class:`~autoconfig_cache.errors.PutDataError`. JSON that cannot be walked
  safely (nesting deeper than :data:`~autoconfig_cache.jsoncodec.MAX_DEPTH`, a number over the
  standard library's digit limit) is refused as a whole, as not JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from . import jsoncodec
from .errors import (
    MalformedItemError,
    MalformedPutDataError,
    MaskedCredentialsError,
    NewerRecordsError,
    NotJSONError,
    NotPutDataError,
    UndecryptableRecordsError,
)
from .models import Environment, Filter, Snapshot, Tombstone
from .records import StoredRecord

if TYPE_CHECKING:
    from .cache import AutoConfigCache, InspectedRecord

__all__ = [
    "KeyRotation",
    "ValidatedPutData",
    "holds_masked_key",
    "on_previous_key",
    "parse_put_data",
    "rotate_keys",
    "validate_put_data",
]


_SHAPE = 'not put data {"environments": {...}, "filters": {...}}'


@attrs.frozen
class KeyRotation:
    """What :func:`rotate_keys` did."""

    reencrypted: int
    """Items (environments and filters) written again under the current key."""
    were_on_previous_key: int
    """Records that were under a previous key before the rotation."""
    dropped: tuple[str, ...]
    """Fields of the undecryptable records deleted (only with ``drop_undecryptable``)."""
    kept_newer: tuple[str, ...]
    """Fields of the records a newer release wrote, kept as they were."""
    key_id: str
    """The id of the current key, which now encrypts every re-encrypted record."""

    def to_json(self) -> dict[str, Any]:
        """The JSON ``cache rotate-key --json`` prints."""
        return {
            "reencrypted": self.reencrypted,
            "wereOnPreviousKey": self.were_on_previous_key,
            "dropped": list(self.dropped),
            "keptNewer": list(self.kept_newer),
            "keyId": self.key_id,
        }


def on_previous_key(cache: AutoConfigCache, entry: InspectedRecord) -> bool:
    """Whether ``entry`` loads and is encrypted under a previous (not the current) key."""
    current = cache.codec.keys.current.key_id_hex
    return entry.problem is None and entry.key_id is not None and entry.key_id != current


async def rotate_keys(
    cache: AutoConfigCache,
    *,
    drop_undecryptable: bool = False,
    records: list[StoredRecord] | None = None,
) -> KeyRotation:
    """Re-encrypt every record of ``cache`` under its current key (see the module docstring).

    :param drop_undecryptable: delete records no configured key decrypts instead of refusing;
        records a newer release wrote are then kept as they are.
    :param records: the stored records, when the caller has read them already.
    :raises UndecryptableRecordsError: records no configured key decrypts (nothing changed).
    :raises NewerRecordsError: records a newer release wrote (nothing changed).
    :raises StoreError: the store failed.
    """
    if records is None:
        records = await cache.get_records()
    inspected = cache.inspect_records(records)
    failed = [entry for entry in inspected if entry.problem is not None]
    # A record a newer release wrote is not this release's to re-encrypt or delete: it is kept
    # as it is, even with drop_undecryptable (which drops only the others).
    newer = [entry for entry in failed if entry.written_by_newer_release]
    problems = [entry for entry in failed if not entry.written_by_newer_release]
    if problems and not drop_undecryptable:
        raise UndecryptableRecordsError(
            f"{len(problems)} item(s) cannot be decrypted with the configured keys",
            [entry.record.field for entry in problems],
        )
    if newer and not drop_undecryptable:
        raise NewerRecordsError(
            f"{len(newer)} item(s) were written by a newer release of autoconfig-cache, which "
            "this one cannot re-encrypt",
            [entry.record.field for entry in newer],
        )
    environments = {e.item.env_id: e.item for e in inspected if isinstance(e.item, Environment)}
    filters = {e.item.filter_id: e.item for e in inspected if isinstance(e.item, Filter)}
    tombstones = tuple(e.item for e in inspected if isinstance(e.item, Tombstone))
    snapshot = Snapshot(environments=environments, filters=filters, tombstones=tombstones)
    previous = sum(1 for entry in inspected if on_previous_key(cache, entry))
    await cache.set_all(snapshot, rewrite_unchanged=True, keep=[entry.record for entry in newer])
    return KeyRotation(
        reencrypted=len(snapshot),
        were_on_previous_key=previous,
        dropped=tuple(entry.record.field for entry in problems),
        kept_newer=tuple(entry.record.field for entry in newer),
        key_id=cache.codec.keys.current.key_id_hex,
    )


def holds_masked_key(env: Environment) -> bool:
    """Whether any credential of ``env`` is masked as a masked export masks it: ``sdkKey``, its
    expiring key, ``mobKey`` or a ``value`` in ``sdkKeys``/``mobileKeys``. (Without the arrays
    the accepted sets are synthesised from the first three.)"""
    expiring = env.expiring_sdk_key
    values = [
        env.sdk_key,
        env.mob_key,
        expiring.value if expiring is not None else "",
        *(key.value for key in env.sdk_keys),
        *(key.value for key in env.mobile_keys),
    ]
    return any(value.startswith("****") for value in values)


@attrs.frozen
class ValidatedPutData:
    """What :func:`validate_put_data` found in put data."""

    snapshot: Snapshot
    """The valid items."""
    invalid: tuple[MalformedItemError, ...]
    """One error per malformed or invalid item, naming it (ids escaped) and saying why."""


def validate_put_data(data: str | bytes | Any) -> ValidatedPutData:
    """Check put data meant for import, every item of it, before anything is written.

    :param data: the JSON text of an export, or the value it decodes to.
    :raises NotPutDataError: not JSON (:class:`NotJSONError`, also for nesting deeper than
        :data:`~autoconfig_cache.jsoncodec.MAX_DEPTH` or a number over the digit limit), or not
        ``{"environments": {...}, "filters": {...}}``.
    :raises MaskedCredentialsError: the data was exported with its keys masked.
    """
    # Values given in code may hold anything; JSON text msgspec parsed cannot hold a lone
    # surrogate, so only the fallback parser's output is walked for one.
    check_strings = True
    if isinstance(data, str | bytes):
        try:
            data, clean = jsoncodec.loads_lenient(data)
        except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bytes
            raise NotJSONError("not JSON", detail=str(exc)) from None
        check_strings = not clean
    if (
        not isinstance(data, dict)
        or not set(data) <= {"environments", "filters"}
        or not set(data) & {"environments", "filters"}
    ):
        raise NotPutDataError(_SHAPE)
    try:
        snapshot, problems = Snapshot.from_put_data(data, check_strings=check_strings)
    except MalformedItemError as exc:
        raise NotPutDataError(_SHAPE, detail=str(exc)) from exc
    masked = [env.env_id for env in snapshot.environments.values() if holds_masked_key(env)]
    if masked:
        raise MaskedCredentialsError(masked)
    return ValidatedPutData(snapshot=snapshot, invalid=tuple(problems))


def parse_put_data(data: str | bytes | Any) -> Snapshot:
    """Validate put data meant for import: all of it or nothing (see :func:`validate_put_data`).

    :param data: the JSON text of an export, or the value it decodes to.
    :raises NotPutDataError: not JSON, or not ``{"environments": {...}, "filters": {...}}``.
    :raises MalformedPutDataError: some items are malformed or invalid (``problems`` lists them).
    :raises MaskedCredentialsError: the data was exported with its keys masked.
    """
    validated = validate_put_data(data)
    if validated.invalid:
        raise MalformedPutDataError(list(validated.invalid))
    return validated.snapshot

"""The Relay Proxy's side of a shared AutoConfig cache, written independently for interop tests.

Nothing here imports ``autoconfig_cache``: it is plain ``cryptography`` + ``json`` + redis-py /
boto3, written from ld-relay's source (``launchdarkly/ld-relay``), so that a test comparing the
two implementations can catch a mistake in either. Where this file says "Relay", it means:

``internal/autoconfigcache/crypto.go``
    blob = 12-byte random nonce || AES-256-GCM ciphertext || 16-byte tag, no associated data,
    raw bytes. Key material = ``TrimSpace(CacheEncryptionKey)``, or the AutoConfig key as it is
    when that is empty. The earlier v8 code (e.g. commit 1bebdad4) derives the AES key as
    SHA-256(material); later v8 and v9 use HKDF-SHA256(ikm=material, no salt,
    info="ld-relay autoconfig cache", 32 bytes).
``internal/autoconfigcache/model.go``
    envelope ``{"kind": "environment"|"filter", "modelVersion": 2, "data": <item JSON>}``;
    Relay writes model 2. v8 accepts only 2 ("unsupported model version %d (expected %d)"); v9
    accepts 1..2 and marks the filter kind obsolete (nothing writes it any more).
``internal/autoconfigcache/redis_store.go``
    one hash whose key is the cache key; fields ``env:<envID>`` / ``filter:<filterID>``; GetAll
    is HGETALL then, per field: decrypt (warn and skip on failure), decode the envelope (warn and
    skip), dispatch on the envelope's *kind* (not the field prefix), ``json.Unmarshal`` into the
    rep (warn and skip), unknown kind (warn and skip). SetAll is ``MULTI; DEL; HSET all; EXEC``;
    Upsert is HSET, Delete is HDEL.
``internal/autoconfigcache/dynamodb_store.go``
    partition key ``namespace`` = cache key, sort key ``key`` = field, binary attribute ``item`` =
    blob; GetAll is a consistent Query; a row without a binary ``item`` is skipped silently
    (``if !ok || itemAttr == nil { continue }``). SetAll queries the existing sort keys, then
    BatchWriteItem (25 a batch) puts every item and deletes every stale row of the partition.
    In the latest v9 version a ``filter`` row is skipped quietly (an earlier stored v9
    redis_store.go still decoded filter rows; :data:`V9` follows the later code: no filters, no
    log line).
``internal/autoconfigcache/store.go``
    the cache key is ``TrimSpace``-ed.
``internal/autoconfig/stream_manager.go`` (``handlePut``, also used for cached content) and
``internal/autoconfig/errors_and_messages.go``
    an environment whose ``envID`` differs from its map key is skipped with "Ignoring environment
    data whose envId %q did not match key %q"; releases with concurrent keys also reject a
    malformed credential set (``envfactory.BuildAcceptedSet``) with an error log.
``internal/envfactory/env_rep.go``
    ``EnvironmentRep`` / ``FilterRep`` / ``ConcurrentKeyRep``: the fields a Relay decodes and
    re-encodes (``json.Marshal`` of the struct: every field, zero values included, unknown fields
    dropped). The v8 ``SDKKeyRep.Expiring`` has no JSON tag, so v8 writes it as ``"Expiring"``;
    v9 tags it ``"expiring"``. v9 adds ``sdkKeys`` / ``mobileKeys`` (omitempty); v8 writes
    neither.

Go's ``encoding/json`` decoding ignores unknown fields and matches field names
case-insensitively; :func:`go_decode` does the same, so an extra envelope field of ours is
judged exactly as a Relay would judge it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENV_PREFIX = "env:"
FILTER_PREFIX = "filter:"
KIND_ENVIRONMENT = "environment"
KIND_FILTER = "filter"
NONCE_SIZE = 12
HKDF_INFO = b"ld-relay autoconfig cache"
RELAY_WRITTEN_MODEL_VERSION = 2
DYNAMODB_MAX_ITEM_SIZE = 400_000
DYNAMODB_MAX_BATCH = 25


# -- Go's encoding/json, as far as the reps need it ------------------------------------------


class GoDecodeError(ValueError):
    """What ``json.Unmarshal`` would return for a value of the wrong type."""


@dataclass(frozen=True)
class GoStruct:
    """A Go struct: its JSON field names in declaration order, their types, and the omitempty
    ones. A type is ``"string"``, ``"int"``, ``"uint"``, ``"bool"``, ``"*int"`` (a pointer:
    nil → omitted when omitempty), ``"raw"`` (``json.RawMessage``), a :class:`GoStruct` or a
    :class:`GoSlice`."""

    name: str
    fields: tuple[tuple[str, GoType], ...]
    omitempty: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GoSlice:
    """A Go slice of ``element``."""

    element: GoType


GoType = str | GoStruct | GoSlice

_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
#: A field absent from the JSON (distinct from JSON null).
MISSING: Any = object()


def _assign_fields(struct: GoStruct, value: Mapping[str, Any]) -> dict[str, Any]:
    """Which JSON value lands in which struct field: Go takes the input keys in order, matches
    each against the field names exactly or else case-insensitively, and a later key overwrites
    an earlier one. Keys that match no field are ignored."""
    names = [name for name, _ in struct.fields]
    assigned: dict[str, Any] = {}
    for key, item in value.items():
        if key in names:
            assigned[key] = item
            continue
        folded = [name for name in names if name.casefold() == key.casefold()]
        if folded:
            assigned[folded[0]] = item
    return assigned


def go_decode(value: Any, go_type: GoType, where: str = "value") -> Any:
    """Check ``value`` as ``json.Unmarshal`` into ``go_type`` would; return the decoded value in
    its canonical JSON shape (struct fields by their declared names, zero values filled in).

    :raises GoDecodeError: where Go would report an error.
    """
    if isinstance(go_type, GoStruct):
        if value is None:
            return go_zero(go_type)
        if not isinstance(value, dict):
            raise GoDecodeError(
                f"cannot unmarshal {_json_kind(value)} into {where} ({go_type.name})"
            )
        assigned = _assign_fields(go_type, value)
        decoded: dict[str, Any] = {}
        for name, field_type in go_type.fields:
            if name in assigned:
                decoded[name] = go_decode(assigned[name], field_type, f"{go_type.name}.{name}")
            else:
                decoded[name] = go_zero(field_type)
        return decoded
    if isinstance(go_type, GoSlice):
        if value is None:
            return []
        if not isinstance(value, list):
            raise GoDecodeError(f"cannot unmarshal {_json_kind(value)} into {where} (a slice)")
        return [go_decode(item, go_type.element, where) for item in value]
    if go_type == "raw":
        return value
    if value is None:
        return go_zero(go_type)
    if go_type == "string":
        if not isinstance(value, str):
            raise GoDecodeError(f"cannot unmarshal {_json_kind(value)} into {where} (string)")
        return value
    if go_type == "bool":
        if not isinstance(value, bool):
            raise GoDecodeError(f"cannot unmarshal {_json_kind(value)} into {where} (bool)")
        return value
    if go_type in ("int", "uint", "*int"):
        # Go parses the number literal itself: 1.0 or 1e3 is not an integer.
        if isinstance(value, bool) or not isinstance(value, int):
            raise GoDecodeError(f"cannot unmarshal {_json_kind(value)} into {where} ({go_type})")
        low, high = _UINT64 if go_type == "uint" else _INT64
        if not low <= value <= high:
            raise GoDecodeError(f"number {value} overflows {where} ({go_type})")
        return value
    raise AssertionError(f"unknown Go type {go_type!r}")


def go_zero(go_type: GoType) -> Any:
    """The zero value of ``go_type`` as ``json.Marshal`` writes it."""
    if isinstance(go_type, GoStruct):
        return {name: go_zero(field_type) for name, field_type in go_type.fields}
    if isinstance(go_type, GoSlice):
        return []
    return {"string": "", "int": 0, "uint": 0, "bool": False, "*int": None, "raw": None}[go_type]


def go_marshal_value(decoded: Any, go_type: GoType) -> Any:
    """``json.Marshal`` of a decoded struct: every field in declaration order, omitempty ones
    left out when empty. (A nil slice without omitempty would be ``null``; no rep has one.)"""
    if isinstance(go_type, GoStruct):
        out: dict[str, Any] = {}
        for name, field_type in go_type.fields:
            item = decoded[name]
            if name in go_type.omitempty and _is_empty(item, field_type):
                continue
            out[name] = go_marshal_value(item, field_type)
        return out
    if isinstance(go_type, GoSlice):
        return [go_marshal_value(item, go_type.element) for item in decoded]
    return decoded


def _is_empty(value: Any, go_type: GoType) -> bool:
    """omitempty's test: nil pointer, empty slice, or the zero of a scalar (never a struct)."""
    if isinstance(go_type, GoStruct):
        return False
    if isinstance(go_type, GoSlice):
        return not value
    if go_type in ("*int", "raw"):
        return value is None
    return bool(value == go_zero(go_type) and type(value) is type(go_zero(go_type)))


def go_json_bytes(value: Any) -> bytes:
    """JSON text as Go's encoder writes it: compact, UTF-8, ``<``, ``>``, ``&`` and U+2028/9
    escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode()


def go_json_loads(raw: bytes) -> Any:
    """Parse JSON as Go would accept it (no NaN / Infinity literals)."""

    def reject(literal: str) -> Any:
        raise ValueError(f"invalid character in JSON: {literal}")

    value = json.loads(raw, parse_constant=reject)
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number" if not (isinstance(value, float) and math.isnan(value)) else "NaN"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


# -- the reps (internal/envfactory/env_rep.go) -----------------------------------------------

_EXPIRING_KEY_REP = GoStruct("ExpiringKeyRep", (("value", "string"), ("timestamp", "uint")))
#: v8: ``Expiring ExpiringKeyRep`` has no JSON tag, so its JSON name is the Go field name.
_SDK_KEY_REP_V8 = GoStruct("SDKKeyRep", (("value", "string"), ("Expiring", _EXPIRING_KEY_REP)))
_SDK_KEY_REP_V9 = GoStruct("SDKKeyRep", (("value", "string"), ("expiring", _EXPIRING_KEY_REP)))
_CONCURRENT_KEY_REP = GoStruct(
    "ConcurrentKeyRep",
    (("key", "string"), ("value", "string"), ("expiry", "*int"), ("hasViews", "bool")),
    omitempty=frozenset({"expiry"}),
)
_ENV_HEAD: tuple[tuple[str, GoType], ...] = (
    ("envID", "string"),
    ("envKey", "string"),
    ("envName", "string"),
    ("mobKey", "string"),
    ("projKey", "string"),
    ("projName", "string"),
)
_ENV_TAIL: tuple[tuple[str, GoType], ...] = (
    ("defaultTtl", "int"),
    ("secureMode", "bool"),
    ("version", "int"),
)
ENVIRONMENT_REP_V8 = GoStruct(
    "EnvironmentRep", (*_ENV_HEAD, ("sdkKey", _SDK_KEY_REP_V8), *_ENV_TAIL)
)
ENVIRONMENT_REP_V9 = GoStruct(
    "EnvironmentRep",
    (
        *_ENV_HEAD,
        ("sdkKey", _SDK_KEY_REP_V9),
        ("sdkKeys", GoSlice(_CONCURRENT_KEY_REP)),
        ("mobileKeys", GoSlice(_CONCURRENT_KEY_REP)),
        *_ENV_TAIL,
    ),
    omitempty=frozenset({"sdkKeys", "mobileKeys"}),
)
FILTER_REP = GoStruct("FilterRep", (("projKey", "string"), ("key", "string"), ("version", "int")))
CACHED_ITEM = GoStruct("CachedItem", (("kind", "string"), ("modelVersion", "int"), ("data", "raw")))


# -- dialects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """One Relay Proxy release line, as far as its AutoConfig cache goes.

    :param derivation: how it derives the AES key, spelt as this project's
        ``AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION`` setting spells it (``sha256`` / ``hkdf``).
    :param readable_models: the envelope model versions it accepts.
    :param filters: it reads and writes ``filter`` items (v8); else it writes none and skips
        ``filter`` rows quietly (v9).
    :param environment_rep: the ``EnvironmentRep`` it decodes and re-encodes.
    :param validates_credentials: it rejects a malformed credential set at load (v9).
    """

    name: str
    derivation: str
    readable_models: range
    filters: bool
    environment_rep: GoStruct
    validates_credentials: bool

    def __str__(self) -> str:
        return self.name


V8_SHA256 = Dialect("v8-sha256", "sha256", range(2, 3), True, ENVIRONMENT_REP_V8, False)
V8_HKDF = Dialect("v8-hkdf", "hkdf", range(2, 3), True, ENVIRONMENT_REP_V8, False)
V9 = Dialect("v9", "hkdf", range(1, 3), False, ENVIRONMENT_REP_V9, True)
DIALECTS = (V8_SHA256, V8_HKDF, V9)


def key_material(encryption_key: str | None, autoconfig_key: str | None) -> bytes:
    """``TrimSpace(CacheEncryptionKey)``, or the AutoConfig key as it is when that is empty."""
    trimmed = (encryption_key or "").strip()
    material = trimmed if trimmed else (autoconfig_key or "")
    return material.encode()


def derive_key(derivation: str, material: bytes) -> bytes:
    """The 32-byte AES key of ``derivation`` (``sha256`` or ``hkdf``)."""
    if derivation == "sha256":
        digest = hashes.Hash(hashes.SHA256())
        digest.update(material)
        return digest.finalize()
    if derivation == "hkdf":
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
            material
        )
    raise ValueError(f"unknown key derivation {derivation!r}")


def seal(key: bytes, plaintext: bytes) -> bytes:
    """nonce || ciphertext || tag, no associated data."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, None)


def open_blob(key: bytes, blob: bytes) -> bytes:
    """Inverse of :func:`seal`.

    :raises ValueError: too short, or the tag does not authenticate.
    """
    if len(blob) < NONCE_SIZE:
        raise ValueError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], None)
    except InvalidTag:
        raise ValueError("cipher: message authentication failed") from None


def relay_environment(dialect: Dialect, data: Mapping[str, Any]) -> dict[str, Any]:
    """The environment JSON a Relay of ``dialect`` writes for stream item ``data``."""
    rep = dialect.environment_rep
    return dict(go_marshal_value(go_decode(dict(data), rep, "EnvironmentRep"), rep))


def relay_filter(data: Mapping[str, Any]) -> dict[str, Any]:
    """The filter JSON a v8 Relay writes for stream item ``data``."""
    return dict(go_marshal_value(go_decode(dict(data), FILTER_REP, "FilterRep"), FILTER_REP))


def relay_put_data(dialect: Dialect, put_data: Mapping[str, Any]) -> dict[str, Any]:
    """What a Relay of ``dialect`` keeps of put data: its reps, environments whose ``envID``
    matches their key, filters only if it has them."""
    environments = {
        env_id: relay_environment(dialect, data)
        for env_id, data in (put_data.get("environments") or {}).items()
        if data.get("envID") == env_id
    }
    filters = (
        {fid: relay_filter(data) for fid, data in (put_data.get("filters") or {}).items()}
        if dialect.filters
        else {}
    )
    return {"environments": environments, "filters": filters}


# -- where the rows live ----------------------------------------------------------------------


class RelayBackend(Protocol):
    """The store operations a Relay performs, on raw rows (field → blob)."""

    def read_rows(self) -> list[tuple[str, bytes]]:
        """Every row a Relay's GetAll decrypts, in store order (rows it skips silently are
        left out)."""

    def replace_all(self, rows: Mapping[str, bytes]) -> None:
        """SetAll: the store holds exactly ``rows`` afterwards."""

    def put_row(self, field_name: str, blob: bytes) -> None:
        """Upsert one row (no version check: a Relay has none)."""

    def delete_row(self, field_name: str) -> None:
        """Delete one row."""


class RedisRelayBackend:
    """``redis_store.go``: one hash at the cache key."""

    def __init__(self, client: redis.Redis, cache_key: str) -> None:
        self.client = client
        self.hash_key = cache_key.strip()

    def read_rows(self) -> list[tuple[str, bytes]]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.hash_key)  # type: ignore[assignment]
        return [(name.decode(), blob) for name, blob in raw.items()]

    def replace_all(self, rows: Mapping[str, bytes]) -> None:
        # go-redis TxPipelined: MULTI; DEL; HSET (only when there is something); EXEC.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.hash_key)
            if rows:
                mapping: dict[Any, Any] = dict(rows)  # redis-py's Mapping type is invariant
                pipe.hset(self.hash_key, mapping=mapping)
            pipe.execute()

    def put_row(self, field_name: str, blob: bytes) -> None:
        self.client.hset(self.hash_key, field_name, blob)

    def delete_row(self, field_name: str) -> None:
        self.client.hdel(self.hash_key, field_name)


class DynamoDBRelayBackend:
    """``dynamodb_store.go``: rows of partition ``namespace`` = cache key in ``table``."""

    def __init__(self, client: Any, table: str, cache_key: str) -> None:
        self.client = client
        self.table = table
        self.namespace = cache_key.strip()
        #: Rows left out by the last :meth:`replace_all` for being over the size guard.
        self.dropped_for_size: list[str] = []

    def _query(self, **extra: Any) -> Iterable[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "#ns = :ns",
            "ExpressionAttributeNames": {"#ns": "namespace"},
            "ExpressionAttributeValues": {":ns": {"S": self.namespace}},
            **extra,
        }
        if "ProjectionExpression" in extra:
            kwargs["ExpressionAttributeNames"] = {"#ns": "namespace", "#k": "key"}
        while True:
            page = self.client.query(**kwargs)
            yield from page["Items"]
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_rows(self) -> list[tuple[str, bytes]]:
        rows: list[tuple[str, bytes]] = []
        for item in self._query():
            sort_key = item.get("key", {}).get("S", "")
            blob = item.get("item", {}).get("B")
            if blob is None:  # no binary `item`: skipped without a word
                continue
            rows.append((sort_key, bytes(blob)))
        return rows

    def _row(self, field_name: str, blob: bytes) -> dict[str, Any]:
        return {
            "namespace": {"S": self.namespace},
            "key": {"S": field_name},
            "item": {"B": blob},
        }

    def _fits(self, field_name: str, blob: bytes) -> bool:
        # checkSizeLimit: 100 bytes of overhead + attribute names + string/binary values.
        size = 100 + len("namespace") + len(self.namespace) + len("key") + len(field_name)
        size += len("item") + len(blob)
        return size <= DYNAMODB_MAX_ITEM_SIZE

    def replace_all(self, rows: Mapping[str, bytes]) -> None:
        existing = {
            item["key"]["S"]
            for item in self._query(ProjectionExpression="#k")
            if "S" in item.get("key", {})
        }
        requests: list[dict[str, Any]] = []
        self.dropped_for_size = []
        for field_name, blob in rows.items():
            if not self._fits(field_name, blob):
                self.dropped_for_size.append(field_name)
                continue
            requests.append({"PutRequest": {"Item": self._row(field_name, blob)}})
        # Stale rows: every existing sort key the new content does not name, whatever it holds.
        for stale in sorted(existing - set(rows)):
            key = {"namespace": {"S": self.namespace}, "key": {"S": stale}}
            requests.append({"DeleteRequest": {"Key": key}})
        for start in range(0, len(requests), DYNAMODB_MAX_BATCH):
            batch = requests[start : start + DYNAMODB_MAX_BATCH]
            response = self.client.batch_write_item(RequestItems={self.table: batch})
            # The Relay does not retry UnprocessedItems; a test against moto never gets any, and
            # one would make the test's picture of the store wrong, so say so loudly.
            assert not response.get("UnprocessedItems"), response["UnprocessedItems"]

    def put_row(self, field_name: str, blob: bytes) -> None:
        if self._fits(field_name, blob):
            self.client.put_item(TableName=self.table, Item=self._row(field_name, blob))

    def delete_row(self, field_name: str) -> None:
        self.client.delete_item(
            TableName=self.table,
            Key={"namespace": {"S": self.namespace}, "key": {"S": field_name}},
        )


# -- the Relay Proxy --------------------------------------------------------------------------


@dataclass
class RelayLoad:
    """What a Relay's start-up from the cache ends with.

    :param environments: the environments it would serve, by id: the ``data`` JSON as stored.
    :param filters: the filters it would apply, by id (always empty for v9).
    :param warnings: everything it would log about a row, one line each (no secrets).
    """

    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    filters: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def versions(self) -> dict[str, int]:
        """``{id: version}`` of every environment and filter, for short failure messages."""
        items = {**self.environments, **{f"filter:{k}": v for k, v in self.filters.items()}}
        return {item_id: data.get("version", -1) for item_id, data in items.items()}


class RelayProxy:
    """A Relay Proxy of ``dialect`` sharing ``backend``, keyed as a Relay configured with
    ``encryption_key`` (its ``AUTO_CONFIG_CACHE_ENCRYPTION_KEY``) and ``autoconfig_key``."""

    def __init__(
        self,
        dialect: Dialect,
        backend: RelayBackend,
        *,
        encryption_key: str | None = None,
        autoconfig_key: str | None = None,
    ) -> None:
        self.dialect = dialect
        self.backend = backend
        self.key = derive_key(dialect.derivation, key_material(encryption_key, autoconfig_key))

    def __repr__(self) -> str:
        return f"RelayProxy({self.dialect.name})"

    # -- writing, as SetAll / Upsert / Delete do ----------------------------------------------

    def _blob(self, kind: str, data: Mapping[str, Any]) -> bytes:
        envelope = {"kind": kind, "modelVersion": RELAY_WRITTEN_MODEL_VERSION, "data": data}
        return seal(self.key, go_json_bytes(envelope))

    def write_put(self, put_data: Mapping[str, Any]) -> dict[str, Any]:
        """Persist put data as the Relay does after a stream ``put``; returns what it wrote
        (its reps), in put-data shape."""
        kept = relay_put_data(self.dialect, put_data)
        rows = {
            f"{ENV_PREFIX}{env_id}": self._blob(KIND_ENVIRONMENT, data)
            for env_id, data in kept["environments"].items()
        }
        rows.update(
            {
                f"{FILTER_PREFIX}{fid}": self._blob(KIND_FILTER, data)
                for fid, data in kept["filters"].items()
            }
        )
        self.backend.replace_all(rows)
        return kept

    def upsert_environment(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stream ``patch`` of an environment; returns the rep written."""
        rep = relay_environment(self.dialect, data)
        self.backend.put_row(f"{ENV_PREFIX}{rep['envID']}", self._blob(KIND_ENVIRONMENT, rep))
        return rep

    def upsert_filter(self, filter_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stream ``patch`` of a filter (v8 only); returns the rep written."""
        assert self.dialect.filters, f"{self.dialect} has no filters"
        rep = relay_filter(data)
        self.backend.put_row(f"{FILTER_PREFIX}{filter_id}", self._blob(KIND_FILTER, rep))
        return rep

    def delete(self, kind: str, item_id: str) -> None:
        """A stream ``delete``: the row goes (a Relay keeps no tombstone)."""
        prefix = ENV_PREFIX if kind == KIND_ENVIRONMENT else FILTER_PREFIX
        self.backend.delete_row(f"{prefix}{item_id}")

    # -- reading, as GetAll + handlePut do ----------------------------------------------------

    def load(self) -> RelayLoad:
        """Read the store as the Relay does at start-up."""
        result = RelayLoad()
        for field_name, blob in self.backend.read_rows():
            try:
                plaintext = open_blob(self.key, blob)
            except ValueError as exc:
                result.warnings.append(f"failed to decrypt {field_name!r}: {exc}")
                continue
            try:
                envelope = self._envelope(plaintext)
            except ValueError as exc:
                result.warnings.append(f"skipping {field_name!r}: {exc}")
                continue
            kind, data = envelope["kind"], envelope["data"]
            if kind == KIND_ENVIRONMENT:
                env_id = field_name.removeprefix(ENV_PREFIX)
                try:
                    if data is MISSING:
                        raise GoDecodeError("unexpected end of JSON input")
                    go_decode(data, self.dialect.environment_rep, "EnvironmentRep")
                except ValueError as exc:
                    result.warnings.append(f"failed to unmarshal env {env_id!r}: {exc}")
                    continue
                result.environments[env_id] = data if isinstance(data, dict) else {}
            elif kind == KIND_FILTER:
                if not self.dialect.filters:
                    continue  # v9: obsolete kind, skipped without a word
                filter_id = field_name.removeprefix(FILTER_PREFIX)
                try:
                    if data is MISSING:
                        raise GoDecodeError("unexpected end of JSON input")
                    go_decode(data, FILTER_REP, "FilterRep")
                except ValueError as exc:
                    result.warnings.append(f"failed to unmarshal filter {filter_id!r}: {exc}")
                    continue
                result.filters[filter_id] = data if isinstance(data, dict) else {}
            else:
                result.warnings.append(f"skipping {field_name!r} with unknown kind {kind!r}")
        self._apply_put_checks(result)
        return result

    def _envelope(self, plaintext: bytes) -> dict[str, Any]:
        """unmarshalCachedItem: decode, then check the model version."""
        try:
            parsed = go_json_loads(plaintext)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid cached item envelope: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError(
                f"invalid cached item envelope: cannot unmarshal {_json_kind(parsed)} into "
                "CachedItem"
            )
        assigned = _assign_fields(CACHED_ITEM, parsed)
        try:
            kind = go_decode(assigned.get("kind"), "string", "CachedItem.kind")
            model = go_decode(assigned.get("modelVersion"), "int", "CachedItem.modelVersion")
        except GoDecodeError as exc:
            raise ValueError(f"invalid cached item envelope: {exc}") from None
        readable = self.dialect.readable_models
        if model not in readable:
            expected = (
                f"expected {readable.start}"
                if len(readable) == 1
                else f"expected {readable.start} to {readable.stop - 1}"
            )
            raise ValueError(f"unsupported model version {model} ({expected})")
        # json.RawMessage: an absent "data" stays nil, and unmarshalling nil fails later.
        return {"kind": kind, "data": assigned.get("data", MISSING)}

    def _apply_put_checks(self, result: RelayLoad) -> None:
        """handlePut on cached content: envID must match the key; v9 checks the credentials."""
        for env_id in list(result.environments):
            data = result.environments[env_id]
            decoded = go_decode(data, self.dialect.environment_rep, "EnvironmentRep")
            if decoded["envID"] != env_id:
                result.warnings.append(
                    f"Ignoring environment data whose envId {decoded['envID']!r} did not match "
                    f"key {env_id!r}"
                )
                del result.environments[env_id]
                continue
            if self.dialect.validates_credentials:
                problem = credential_problem(decoded)
                if problem is not None:
                    result.warnings.append(
                        f"malformed credential payload for environment {env_id!r} ({problem})"
                    )
                    del result.environments[env_id]


def credential_problem(decoded: Mapping[str, Any]) -> str | None:
    """BuildAcceptedSet's structural checks (the strictest stored version): an anchor SDK key,
    present in ``sdkKeys`` when that is given; no array entry with an empty value; a ``mobKey``
    present in ``mobileKeys`` when that is given."""
    anchor = decoded["sdkKey"]["value"]
    if not anchor:
        return "the anchor SDK key is missing"
    sdk_keys = decoded.get("sdkKeys") or []
    mobile_keys = decoded.get("mobileKeys") or []
    for name, entries in (("sdkKeys", sdk_keys), ("mobileKeys", mobile_keys)):
        for entry in entries:
            if not entry["value"]:
                return f"an entry of {name} ({entry['key']!r}) has an empty value"
    if sdk_keys and anchor not in {entry["value"] for entry in sdk_keys}:
        return "the anchor SDK key is not in sdkKeys"
    if mobile_keys and decoded["mobKey"] not in {entry["value"] for entry in mobile_keys}:
        return "the primary mobile key is not in mobileKeys"
    return None


# -- test data ---------------------------------------------------------------------------------


def concurrent_environment(
    env_id: str, version: int = 1, *, tag: str = "", **extra: Any
) -> dict[str, Any]:
    """An environment as the AutoConfig stream sends it with concurrent keys: an anchor SDK key
    and an expiring one, a mobile key, all random (``tag`` makes them recognisable)."""
    token = os.urandom(12).hex()
    sdk = f"sdk-{tag}{token}-anchor"
    old_sdk = f"sdk-{tag}{token}-old"
    mob = f"mob-{tag}{token}-primary"
    data: dict[str, Any] = {
        "envID": env_id,
        "envKey": f"key-{env_id}",
        "envName": f"Env {env_id}",
        "mobKey": mob,
        "projKey": "proj",
        "projName": "Project",
        "sdkKey": {"value": sdk, "expiring": {"value": old_sdk, "timestamp": 4102444800000}},
        "sdkKeys": [
            {"key": "default", "value": sdk, "hasViews": False},
            {"key": "rotated", "value": old_sdk, "expiry": 4102444800000, "hasViews": False},
        ],
        "mobileKeys": [{"key": "default", "value": mob, "hasViews": False}],
        "defaultTtl": 5,
        "secureMode": False,
        "version": version,
    }
    data.update(extra)
    return data


def secrets_in(put_data: Mapping[str, Any]) -> set[str]:
    """Every credential value in put data (``sdkKey``, its expiring key, ``mobKey`` and every
    ``value`` of ``sdkKeys`` / ``mobileKeys``), for "never in clear" checks."""
    found: set[str] = set()
    for env in (put_data.get("environments") or {}).values():
        sdk = env.get("sdkKey") or {}
        found.add(sdk.get("value", ""))
        for expiring_name in ("expiring", "Expiring"):
            found.add((sdk.get(expiring_name) or {}).get("value", ""))
        found.add(env.get("mobKey", ""))
        for array in ("sdkKeys", "mobileKeys"):
            found.update(entry.get("value", "") for entry in env.get(array) or [])
    found.discard("")
    return found

"""The Redis/Valkey store: one hash per cache key, Relay Proxy compatible, version-guarded.

Live items sit in the hash a Relay Proxy reads; tombstones (``StoredRecord.deleted``) sit in a
companion hash it never reads (the store declares ``keeps_tombstones_apart``). See
:mod:`autoconfig_cache_redis.layout` for the keys and :mod:`autoconfig_cache_redis.scripts` for
the atomic Lua scripts. The client is created lazily, on the first operation, so that an
unreachable server never blocks start-up; each operation is bounded by the ``timeout`` option.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence, Set
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from autoconfig_cache.plugin import (
    MAX_STORED_VERSION,
    RefusedRecord,
    Store,
    StoreBase,
    StoredRecord,
    StoreError,
    StoreSchemaError,
    StoreSpec,
    StoreTimeoutError,
    StoreUnavailableError,
    foreign_record,
    gc_paused,
    hookimpl,
)

from . import scripts
from .layout import tombstones_key, versions_key
from .settings import Mode, RedisSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: redis.asyncio.Redis or RedisCluster (they share the command API we use).
Client = Any

#: How many times set_all retries its optimistic diff before sending the full snapshot.
_DIFF_ATTEMPTS = 3

_GENERATION = scripts.GENERATION_FIELD.encode()

#: RESP2, explicitly (standalone and Sentinel; Cluster: see ``_make_client``). redis-py 8 made
#: RESP3 its default (redis/redis-py PR #4031, ``DEFAULT_RESP_VERSION = 3`` in
#: ``redis/utils.py``), which opens every connection with a ``HELLO 3`` round trip. This store
#: uses nothing RESP3 adds (push messages, client-side caching, typed replies), so with RESP2 a
#: cold ``cache_get_all`` is one round trip after the TCP handshake (two with a password: AUTH
#: first, where RESP3 would send ``HELLO 3 AUTH``). With hiredis, RESP2 also parses a
#: 10,000-field HGETALL faster than RESP3's map (measured: ~24 vs ~29 ms for 10,000 1 KB
#: fields), and servers or proxies without HELLO (Redis < 6) keep working (redis/redis-py
#: issue #4089).
_PROTOCOL = 2


def _encode(field: str) -> bytes:
    # surrogateescape round-trips field names that are not valid UTF-8 (written by someone
    # else), so that set_all can still delete them.
    return field.encode("utf-8", "surrogateescape")


def _decode(field: bytes) -> str:
    return field.decode("utf-8", "surrogateescape")


def _version_arg(version: int) -> str:
    """A version as the canonical decimal string the Lua scripts compare."""
    if version < 0:
        raise StoreError(f"item versions are never negative; got {version}")
    return str(version)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _record_args(field: bytes, record: StoredRecord) -> tuple[bytes, str, bytes, str]:
    """The four script arguments of one record: field, version, blob, deleted flag."""
    return field, _version_arg(record.version), record.blob, _flag(record.deleted)


def _refused(record: StoredRecord, reason: str) -> RefusedRecord:
    return RefusedRecord(record.field, record.version, reason, record.deleted)


def _digits(raw: bytes) -> int | None:
    """A versions-hash value as an int (of any size), or ``None`` when it is not decimal digits
    (the scripts' rule: ``int()`` would also take ``-5``, `` 7 `` or ``1_000``)."""
    return int(raw) if raw.isdigit() else None


def _stored_record(
    field: bytes, raw_version: bytes | None, blob: bytes, *, deleted: bool
) -> StoredRecord:
    """One field of the data or tombstones hash as a record.

    No versions entry (a Relay Proxy wrote the field): version 0. An entry that is not decimal
    digits, or a field name that is not UTF-8: a foreign record, reported by the core. A number
    of any size is returned as it is: the core reports one above the valid range.
    """
    name = _decode(field)
    if not field.isascii():
        try:
            field.decode("utf-8")
        except UnicodeDecodeError:
            return foreign_record(name, "the field name is not UTF-8", deleted=deleted)
    if raw_version is None:
        return StoredRecord(name, 0, blob, deleted=deleted)
    version = _digits(raw_version)
    if version is None:
        return foreign_record(
            name,
            f"its entry in the versions hash, {raw_version[:40]!r}, is not a decimal integer",
            deleted=deleted,
        )
    return StoredRecord(name, version, blob, deleted=deleted)


def _records(
    data: dict[bytes, bytes], versions: dict[bytes, bytes], tombstones: dict[bytes, bytes]
) -> list[StoredRecord]:
    """The records of the three hashes as one ``MULTI; HGETALL x3; EXEC`` read them.

    A field in both the data and the tombstones hash was written back by a Relay Proxy after
    our tombstone (the scripts never leave one in both): its item is live, of unknown version.
    """
    records: list[StoredRecord] = []
    append = records.append
    version_of = versions.get
    for field, blob in data.items():
        raw = None if field in tombstones else version_of(field)
        # What this store writes, inlined because a load runs it 10,000 times: a decimal
        # version and an ASCII field name (``_stored_record`` decides every other case).
        if raw is not None and raw.isdigit() and field.isascii():
            append(StoredRecord(field.decode("ascii"), int(raw), blob))
        else:
            append(_stored_record(field, raw, blob, deleted=False))
    for field, blob in tombstones.items():
        if field not in data:
            append(_stored_record(field, version_of(field), blob, deleted=True))
    return records


def _held_versions(
    versions: dict[bytes, bytes], live: list[bytes], tombstoned: set[bytes]
) -> tuple[dict[bytes, int], Set[bytes]]:
    """From what ``set_all`` read (the versions hash, the fields of the data hash and of the
    tombstones hash): the stored versions a diff may skip a record against, and every field
    the three hashes name (those absent from the snapshot are deleted).

    A record may be skipped only against the version of a field held in exactly one of the
    data and tombstones hashes (a field in both, or in neither, is of unknown version), when
    it is decimal digits (as the scripts' ``stored_state`` reads it; ``int()`` would also take
    ``-5``, `` 7`` or ``1_0``).

    Usually the versions hash names exactly the fields of the two hashes, each in one, and
    every entry is digits: checks that loop in C confirm it and the entries are converted all
    at once. Done per record in Python, the same checks took most of the time of a diff of
    100,000 records.
    """
    fields: Set[bytes] = versions.keys()
    if not (
        len(versions) == len(live) + len(tombstoned)
        and all(map(versions.__contains__, live))
        and all(map(versions.__contains__, tombstoned))
        and (not tombstoned or tombstoned.isdisjoint(live))
    ):
        live_set = set(live)
        one = live_set ^ tombstoned
        fields = fields | live_set | tombstoned
        versions = {field: versions[field] for field in versions.keys() & one}
    raws = versions.values()
    if not all(map(bytes.isdigit, raws)):
        versions = {field: raw for field, raw in versions.items() if raw.isdigit()}
        raws = versions.values()
    try:
        return dict(zip(versions, map(int, raws), strict=True)), fields
    except ValueError:  # past Python's 4,300 digits: far above the valid range, so unknown
        return {field: int(raw) for field, raw in versions.items() if len(raw) < 4300}, fields


class RedisStore(StoreBase):
    """A store plugin object keeping one cache key in a Redis/Valkey hash.

    Build it with :meth:`from_spec` (the registered factory); it connects on first use.
    :class:`~autoconfig_cache.plugin.StoreBase` tracks the operations and cancels them on close.
    """

    store_name = "redis store"

    #: Tombstones live in the tombstones hash, which a Relay Proxy never reads (it reads the
    #: data hash only, with HGETALL), and come back from ``cache_get_all`` with ``deleted=True``.
    keeps_tombstones_apart = True

    def __init__(self, settings: RedisSettings, cache_key: str) -> None:
        self.settings = settings
        self.cache_key = cache_key
        # data hash, versions hash, tombstones hash: the KEYS of every script, in this order.
        self._keys = (
            cache_key.encode(),
            versions_key(cache_key).encode(),
            tombstones_key(cache_key).encode(),
        )
        self._client: Client | None = None
        self._sentinel: Sentinel | None = None
        self._scripts: dict[str, Any] = {}

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> RedisStore:
        """The store factory: parse and validate ``spec`` without connecting."""
        return cls(RedisSettings.from_spec(spec), spec.cache_key)

    def __repr__(self) -> str:
        return f"RedisStore({self.settings.redacted_url!r}, cache_key={self.cache_key!r})"

    # -----------------------------------------------------------------------------------------
    # Store hooks
    # -----------------------------------------------------------------------------------------

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        """Live items of the data hash and tombstones of the tombstones hash, with their versions.

        A version is 0 when unknown (a field a Relay Proxy wrote).
        """
        return await self._run("get_all", self._get_all)

    @hookimpl
    async def cache_get_versions(self) -> dict[str, int]:
        """Every field of the data and tombstones hashes with its version, read from the
        versions hash and the two hashes' field names (no blob): the store audit's cheap read.

        Agrees with :meth:`cache_get_all`: a version is 0 when unknown (a field a Relay Proxy
        wrote), and a field that is not UTF-8 is named as ``cache_get_all`` names it.
        """
        return await self._run("get_versions", self._get_versions)

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """Make the hashes hold exactly ``records``: one atomic script sending only what changed.

        :raises PartialWriteError: naming the records refused (a version outside the valid
            range, ...), once the others are written; their fields keep what they held.
        """
        await self._run("set_all", lambda client: self._set_all(client, records, rewrite_unchanged))

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        """Write ``record`` unless a same or newer version is stored (atomic, server side).

        A tombstone (``record.deleted``) replaces the item in the data hash by an entry of the
        tombstones hash; a live record does the reverse.

        :raises PartialWriteError: when the record is refused (see ``StoreBase._refusal``);
            nothing is sent.
        """
        _, refused = self._split_refused([record])
        self._raise_refused("upsert", refused)
        token = secrets.token_hex(8)

        async def upsert(client: Client) -> bool:
            result = await self._script(client, "upsert")(
                keys=self._keys,
                args=[*_record_args(_encode(record.field), record), token],
            )
            self.records_written += 1 if result else 0
            return bool(result)

        return await self._run("upsert", upsert)

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        """Delete ``field``'s item or tombstone if stored at a lower version (atomic)."""
        token = secrets.token_hex(8)

        async def delete(client: Client) -> bool:
            result = await self._script(client, "delete")(
                keys=self._keys, args=[_encode(field), _version_arg(version), token]
            )
            self.records_written += 1 if result else 0
            return bool(result)

        return await self._run("delete", delete)

    @hookimpl
    async def cache_clear(self) -> None:
        """Delete the data, versions and tombstones hashes."""

        async def clear(client: Client) -> None:
            data, _versions, tombstones = self._keys
            async with client.pipeline(transaction=True) as pipe:
                pipe.hlen(data)
                pipe.hlen(tombstones)
                for key in self._keys:
                    pipe.delete(key)
                live, tombstoned, *_ = await pipe.execute()
            self.records_written += int(live) + int(tombstoned)

        await self._run("clear", clear)

    async def _release(self) -> None:
        """Close the connections (operations in flight were cancelled by StoreBase)."""
        client, self._client = self._client, None
        sentinel, self._sentinel = self._sentinel, None
        # The sentinels' own connections are separate from the primary's pool.
        clients = [client, *(sentinel.sentinels if sentinel is not None else [])]
        for each in clients:
            if each is None:
                continue
            try:
                await each.aclose()
            except Exception as exc:  # closing must not fail the caller
                logger.debug("redis store %s: error while closing: %r", self._where, exc)

    # -----------------------------------------------------------------------------------------
    # Operations
    # -----------------------------------------------------------------------------------------

    async def _get_all(self, client: Client) -> list[StoredRecord]:
        async with client.pipeline(transaction=True) as pipe:
            for key in self._keys:
                pipe.hgetall(key)
            data, versions, tombstones = await pipe.execute()
        # 100,000 records and none of them garbage: collections while they are built would walk
        # the whole heap again and again (a load of 100,000 took ~100 ms more; see gc_paused).
        with gc_paused():
            return _records(data, versions, tombstones)

    async def _get_versions(self, client: Client) -> dict[str, int]:
        data, versions_hash, tombstones_hash = self._keys
        async with client.pipeline(transaction=True) as pipe:
            pipe.hkeys(data)
            pipe.hgetall(versions_hash)
            pipe.hkeys(tombstones_hash)
            live, versions, tombstoned = await pipe.execute()
        tombstones = set(tombstoned)
        result: dict[str, int] = {}
        # The records _get_all would build, with an empty blob: the same fields and versions.
        for field in live:
            raw = None if field in tombstones else versions.get(field)
            record = _stored_record(field, raw, b"", deleted=False)
            result[record.field] = record.version
        for field in tombstones.difference(live):
            record = _stored_record(field, versions.get(field), b"", deleted=True)
            result[record.field] = record.version
        return result

    async def _set_all(
        self, client: Client, records: Sequence[StoredRecord], rewrite_unchanged: bool
    ) -> None:
        token = secrets.token_hex(8)
        snapshot, unsendable, kept = self._by_field(records)
        set_all = self._script(client, "set_all")
        for _attempt in range(_DIFF_ATTEMPTS):
            # One round trip for the state (MULTI ... EXEC), one for the script.
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._keys[1])
                pipe.hkeys(self._keys[0])
                pipe.hkeys(self._keys[2])
                versions, live_list, tombstone_list = await pipe.execute()
            # The diff below is computed from this read; the script refuses it if another
            # writer changed anything since (the generation check). The kit holds us here.
            await self._between_read_and_write(None)
            generation = versions.pop(_GENERATION, b"")
            tombstoned = set(tombstone_list)
            held, fields = _held_versions(versions, live_list, tombstoned)
            writes, refused = self._diff(snapshot, held, tombstoned, rewrite_unchanged)
            refused = [*unsendable, *refused]
            # Fields to drop: items and tombstones absent from the snapshot, and stale versions.
            # Refused records stay in ``snapshot``, so their fields keep what they hold.
            deletes = fields - snapshot.keys()
            deletes -= kept
            if not writes and not deletes:
                self._raise_refused("set_all", refused)
                return
            result = await set_all(
                keys=self._keys,
                args=[
                    "diff",
                    _flag(rewrite_unchanged),
                    token,
                    generation,
                    len(live_list) + len(tombstone_list),
                    len(writes) // 4,
                    *writes,
                    len(deletes),
                    *deletes,
                ],
            )
            if result != scripts.STALE:
                self.records_written += int(result[0]) + int(result[1])
                logger.debug(
                    "redis store %s: set_all wrote %s and deleted %s field(s)",
                    self._where,
                    result[0],
                    result[1],
                )
                self._raise_refused("set_all", refused)
                return
            logger.debug("redis store %s: set_all raced another writer; retrying", self._where)
        # Under sustained contention send the whole snapshot: the script diffs it server side.
        accepted, refused = self._split_refused(snapshot.values())
        kept.update(_encode(entry.field) for entry in refused)
        args: list[Any] = ["full", _flag(rewrite_unchanged), token, "", 0, len(accepted)]
        for record in accepted:
            args.extend(_record_args(_encode(record.field), record))
        args.extend([len(kept), *kept])
        result = await set_all(keys=self._keys, args=args)
        self.records_written += int(result[0]) + int(result[1])
        self._raise_refused("set_all", [*unsendable, *refused])

    def _by_field(
        self, records: Sequence[StoredRecord]
    ) -> tuple[dict[bytes, StoredRecord], list[RefusedRecord], set[bytes]]:
        """``records`` by field name as sent (the last of a field wins), those whose field is
        not UTF-8 text (refused), and the names under which the hashes may hold the latter
        (kept: a refused record's field keeps what it holds).

        Only the field is checked here; the other refusals (:meth:`_refusal`) are checked by
        :meth:`_diff` on the records it writes, the only ones that reach Redis.
        """
        unsendable: list[RefusedRecord] = []
        kept: set[bytes] = set()
        snapshot: dict[bytes, StoredRecord] = {}
        for record in records:
            field = record.field
            try:
                snapshot[field.encode()] = record  # strict UTF-8, as record_refusal requires
            except (AttributeError, UnicodeEncodeError):
                reason = self._refusal(record) or "its field is not UTF-8 text"
                unsendable.append(_refused(record, reason))
                # A name a Relay Proxy may have written (surrogateescape: see _encode); one
                # that cannot be encoded cannot be in a hash.
                with contextlib.suppress(AttributeError, UnicodeEncodeError):
                    kept.add(_encode(field))
        return snapshot, unsendable, kept

    def _diff(
        self,
        snapshot: dict[bytes, StoredRecord],
        held: dict[bytes, int],
        tombstoned: set[bytes],
        rewrite_unchanged: bool,
    ) -> tuple[list[Any], list[RefusedRecord]]:
        """The script arguments of the records of ``snapshot`` to write, and the records among
        them the store refuses (not written), given the state read: ``held``, the versions a
        record may be skipped against (:func:`_held_versions`), and the tombstones hash's fields.

        A record is skipped under the rules of the scripts' ``stored_state`` and
        ``should_write``: when its field is in exactly one of the two hashes with a valid
        version that is newer, or the same without ``rewrite_unchanged`` (a field in both is
        of unknown version, and an invalid or damaged version is unknown: both are replaced).
        A tombstone at the version of a field held in the data hash is the same deletion
        written there by 0.1: it is rewritten, which moves it out of the Relay Proxy's view.
        A skipped record is not checked (:meth:`_refusal`) nor its blob read: a put in which
        one record of 10,000 changed checks and reads one.
        """
        writes: list[Any] = []
        refused: list[RefusedRecord] = []
        stored_version = held.get
        refusal = self._refusal
        for field, record in snapshot.items():
            stored = stored_version(field)
            if stored is not None:
                version = record.version
                if (
                    type(version) is int
                    and 0 <= version <= stored <= MAX_STORED_VERSION
                    and (
                        stored > version
                        or not (rewrite_unchanged or (record.deleted and field not in tombstoned))
                    )
                ):
                    continue
            reason = refusal(record)
            if reason is None:
                writes.extend(_record_args(field, record))
            else:
                refused.append(_refused(record, reason))
        return writes, refused

    # -----------------------------------------------------------------------------------------
    # Plumbing: lazy client, task tracking, error mapping
    # -----------------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return self.settings.redacted_url

    def _script(self, client: Client, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            source = {
                "upsert": scripts.UPSERT,
                "delete": scripts.DELETE,
                "set_all": scripts.SET_ALL,
            }
            script = client.register_script(source[name])
            self._scripts[name] = script
        return script

    async def _run(self, operation: str, func: Callable[[Client], Awaitable[T]]) -> T:
        """Run ``func`` as a tracked task (so close() can cancel it), mapping errors.

        redis-py sometimes swallows a cancellation (while it acquires a connection) and
        completes anyway; ``_track`` still raises StoreClosedError then.
        """
        return await self._track(self._guarded(operation, func))

    async def _guarded(self, operation: str, func: Callable[[Client], Awaitable[T]]) -> T:
        settings = self.settings
        what = f"redis store {self._where} (cache key {self.cache_key!r}): {operation}"
        try:
            async with asyncio.timeout(settings.timeout):
                return await func(self._get_client())
        except TimeoutError:
            raise StoreTimeoutError(
                f"{what} did not complete within {settings.timeout:g} s (option timeout); "
                f"is the server overloaded or hung?"
            ) from None
        except redis_errors.TimeoutError as exc:
            raise StoreTimeoutError(
                f"{what} timed out ({exc}); socket_timeout={settings.socket_timeout:g} s, "
                f"connect_timeout={settings.connect_timeout:g} s"
            ) from None
        except redis_errors.AuthenticationError as exc:
            raise StoreUnavailableError(
                f"{what} failed: authentication refused ({exc}); check username/password"
            ) from None
        except (
            redis_errors.ConnectionError,
            redis_errors.ClusterError,
            redis_errors.RedisClusterException,
            redis_errors.TryAgainError,
        ) as exc:
            raise StoreUnavailableError(
                f"{what} failed: cannot reach the server ({type(exc).__name__}: {exc}); "
                f"check the URL, TLS settings and that the server is up"
            ) from None
        except redis_errors.ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise StoreSchemaError(
                    f"{what} failed: key {self.cache_key!r} (or its versions or tombstones "
                    f"hash) holds a value that is not a hash; use another cache key or delete "
                    f"that key"
                ) from None
            raise StoreError(f"{what} failed: the server refused the command: {exc}") from None
        except redis_errors.RedisError as exc:
            raise StoreError(f"{what} failed: {type(exc).__name__}: {exc}") from None
        except OSError as exc:  # TLS handshake failures, refused connections not wrapped
            raise StoreUnavailableError(
                f"{what} failed: {type(exc).__name__}: {exc}; check the URL and TLS settings"
            ) from None

    def _get_client(self) -> Client:
        self._check_open()  # an operation that outlived close() must not open a new pool
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Client:
        s = self.settings
        # Immediate retries on connection errors only: a timeout is not retried, so a hung
        # server costs one socket_timeout, not redis-py's default ~9 s of backed-off retries.
        retry = Retry(NoBackoff(), s.retries, supported_errors=(redis_errors.ConnectionError,))
        common: dict[str, Any] = {
            "username": s.username,
            "password": s.password,
            "socket_timeout": s.socket_timeout,
            "socket_connect_timeout": s.connect_timeout,
            "retry": retry,
            # No CLIENT SETINFO LIB-NAME/LIB-VER on connect (redis-py ``resolve_driver_info``:
            # an explicit None disables it): a round trip before the first command of every new
            # connection, and two error replies on servers before 7.2, which lack it.
            "driver_info": None,
        }
        tls: dict[str, Any] = {}
        if s.tls:
            tls = {
                "ssl_ca_certs": s.ca_file,
                "ssl_certfile": s.cert_file,
                "ssl_keyfile": s.key_file,
                "ssl_cert_reqs": ssl.CERT_NONE if s.tls_insecure else ssl.CERT_REQUIRED,
                "ssl_check_hostname": not s.tls_insecure,
            }
        if s.mode is Mode.CLUSTER:
            return RedisCluster(
                # redis-py's default protocol (RESP3 since 8.0): its asyncio cluster pipeline
                # passes each command's ``keys`` to the RESP2 HGETALL callback, which takes
                # none (TypeError in MULTI ... EXEC; redis-py 8.1 ``asyncio/cluster.py``).
                startup_nodes=[ClusterNode(node.host, node.port) for node in s.nodes],
                max_connections=s.max_connections,
                ssl=s.tls,
                **common,
                **tls,
            )
        if s.mode is Mode.SENTINEL:
            sentinel_kwargs: dict[str, Any] = {
                "socket_timeout": s.socket_timeout,
                "socket_connect_timeout": s.connect_timeout,
                "retry": retry,
                "username": s.sentinel_username,
                "password": s.sentinel_password,
                "protocol": _PROTOCOL,
                "driver_info": None,
            }
            if s.tls:
                sentinel_kwargs.update(ssl=True, **tls)
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                [(node.host, node.port) for node in s.nodes],
                sentinel_kwargs=sentinel_kwargs,
                **common,
                protocol=_PROTOCOL,
                **({"ssl": True, **tls} if s.tls else {}),
            )
            assert s.service_name is not None  # checked by the settings parser
            return self._sentinel.master_for(s.service_name, db=s.db)
        connection_class = aioredis.SSLConnection if s.tls else aioredis.Connection
        pool = aioredis.BlockingConnectionPool(
            max_connections=s.max_connections,
            timeout=s.timeout,
            connection_class=connection_class,
            protocol=_PROTOCOL,
            host=s.nodes[0].host,
            port=s.nodes[0].port,
            db=s.db,
            **common,
            **tls,
        )
        return aioredis.Redis.from_pool(pool)


_: type[Store] = RedisStore  # mypy checks the class against the Store protocol

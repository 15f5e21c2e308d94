"""The Redis/Valkey store: one hash per cache key, Relay Proxy compatible, version-guarded.

Live items sit in the hash a Relay Proxy reads; tombstones (``StoredRecord.deleted``) sit in a
companion hash it never reads (the store declares ``keeps_tombstones_apart``). See
:mod:`autoconfig_cache_redis.layout` for the keys and :mod:`autoconfig_cache_redis.scripts` for
the atomic Lua scripts. The client is created lazily, on the first operation, so that an
unreachable server never blocks start-up; each operation is bounded by the ``timeout`` option.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from autoconfig_cache.plugin import (
    Store,
    StoreBase,
    StoredRecord,
    StoreError,
    StoreSchemaError,
    StoreSpec,
    StoreTimeoutError,
    StoreUnavailableError,
    foreign_record,
    hookimpl,
    is_damaged_version,
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


def _digits(raw: bytes) -> int | None:
    """A versions-hash value as an int (of any size), or ``None`` when it is not decimal digits
    (the scripts' rule: ``int()`` would also take ``-5``, `` 7 `` or ``1_000``)."""
    return int(raw) if raw.isdigit() else None


def _version(raw: bytes | None) -> int:
    """A versions-hash value as the scripts' ``stored_state`` compares it: -1 (unknown, any
    write replaces it) when absent, not decimal digits, or above ``MAX_STORED_VERSION``."""
    if raw is None:
        return -1
    version = _digits(raw)
    return -1 if version is None or is_damaged_version(version) else version


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
        records = []
        for field, blob in data.items():
            # A field in both hashes was written back by a Relay Proxy after our tombstone (the
            # scripts never leave one in both): its item is live, of unknown version.
            raw = None if field in tombstones else versions.get(field)
            records.append(_stored_record(field, raw, blob, deleted=False))
        for field, blob in tombstones.items():
            if field not in data:
                records.append(_stored_record(field, versions.get(field), blob, deleted=True))
        return records

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
        accepted, refused = self._split_refused(records)
        snapshot = {_encode(record.field): record for record in accepted}
        # Refused records are not written, and their fields keep what they hold.
        kept = [_encode(entry.field) for entry in refused]
        wanted = snapshot.keys() | set(kept)
        set_all = self._script(client, "set_all")
        for _attempt in range(_DIFF_ATTEMPTS):
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._keys[1])
                pipe.hkeys(self._keys[0])
                pipe.hkeys(self._keys[2])
                versions, live_list, tombstone_list = await pipe.execute()
            # The diff below is computed from this read; the script refuses it if another
            # writer changed anything since (the generation check). The kit holds us here.
            await self._between_read_and_write(None)
            generation = versions.pop(_GENERATION, b"")
            live, tombstoned = set(live_list), set(tombstone_list)
            present = live | tombstoned
            writes: list[Any] = []
            for field, record in snapshot.items():
                if field in present:
                    # The same rules as the script's stored_state: in both hashes = unknown.
                    both = field in live and field in tombstoned
                    stored = -1 if both else _version(versions.get(field))
                    # A tombstone at the version of a field held in the data hash is the same
                    # deletion written there by 0.1: rewriting it moves it out of the Relay
                    # Proxy's view (the script applies the same rule).
                    relocate = record.deleted and field not in tombstoned
                    if stored > record.version or (
                        stored == record.version and not (rewrite_unchanged or relocate)
                    ):
                        continue
                writes.extend(_record_args(field, record))
            # Fields to drop: items and tombstones absent from the snapshot, and stale versions.
            deletes = [field for field in present.union(versions) if field not in wanted]
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
        args: list[Any] = ["full", _flag(rewrite_unchanged), token, "", 0, len(snapshot)]
        for field, record in snapshot.items():
            args.extend(_record_args(field, record))
        args.extend([len(kept), *kept])
        result = await set_all(keys=self._keys, args=args)
        self.records_written += int(result[0]) + int(result[1])
        self._raise_refused("set_all", refused)

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
            }
            if s.tls:
                sentinel_kwargs.update(ssl=True, **tls)
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
                [(node.host, node.port) for node in s.nodes],
                sentinel_kwargs=sentinel_kwargs,
                **common,
                **({"ssl": True, **tls} if s.tls else {}),
            )
            assert s.service_name is not None  # checked by the settings parser
            return self._sentinel.master_for(s.service_name, db=s.db)
        connection_class = aioredis.SSLConnection if s.tls else aioredis.Connection
        pool = aioredis.BlockingConnectionPool(
            max_connections=s.max_connections,
            timeout=s.timeout,
            connection_class=connection_class,
            host=s.nodes[0].host,
            port=s.nodes[0].port,
            db=s.db,
            **common,
            **tls,
        )
        return aioredis.Redis.from_pool(pool)


_: type[Store] = RedisStore  # mypy checks the class against the Store protocol

"""The DynamoDB store: one item per environment or filter, in the Relay Proxy's table schema.

Row layout (a Relay Proxy sharing the table reads and writes ``namespace``, ``key`` and ``item``
and ignores the rest)::

    namespace (S, partition key)  the cache key
    key       (S, sort key)       env:<envID> | filter:<filterID>
    item      (B)                 a live item's encrypted blob, raw bytes
    tombstone (B)                 instead of ``item``: the blob of the tombstone the core wrote
                                  when the item was deleted (``StoredRecord.deleted``)
    version   (N)                 the stored version, for version-guarded writes; a row without
                                  it (written by a Relay Proxy) counts as version 0

A row holds ``item`` or ``tombstone``, never both: every writer, this store and a Relay Proxy
alike, puts whole rows. Why tombstones stay in the partition a Relay Proxy reads, in a row
without ``item``: the Relay Proxy's cache (ld-relay ``internal/autoconfigcache/dynamodb_store.go``,
the same in every version read: v8 before the envelope, e.g. commit 2762a87c; v8 with the
envelope, commit 3b16c8e9; v9, the ``ld-relay/v9`` module with ``log/slog``) skips a row that has
no binary ``item`` attribute in ``GetAll`` (``if !ok || itemAttr == nil { continue }``: no
decryption, no log line), so it never loads nor logs our tombstones. Its
``SetAll`` queries every sort key of the partition and deletes each one it is not writing, so a
Relay Proxy's full rewrite removes our tombstones too, and its ``Upsert`` (a plain PutItem)
replaces a tombstone row with an item row without ``version`` (read as a Relay-written item of
unknown version). Keeping each field in one row keeps every transition between item and
tombstone a single conditional write; see ``docs/stores/dynamodb.md`` for the trade-off.

PynamoDB's :class:`~pynamodb.connection.Connection` does the talking. It is synchronous, so every
call runs on a thread pool the store owns; the event loop only orchestrates (paging, chunking,
backoff) and checks between steps whether the store was closed or the deadline passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TableDoesNotExist
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path, Value

from autoconfig_cache.plugin import (
    MAX_STORED_VERSION,
    PartialWriteError,
    RefusedRecord,
    Store,
    StoreBase,
    StoreClosedError,
    StoredRecord,
    StoreError,
    StoreSchemaError,
    StoreSpec,
    StoreTimeoutError,
    StoreUnavailableError,
    foreign_record,
    hookimpl,
    is_damaged_version,
    redact_url,
)

from .settings import DynamoDBSettings

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Attribute names: the first three are the Relay Proxy's, ``tombstone`` and ``version`` this
#: project's.
NAMESPACE_ATTR = "namespace"
KEY_ATTR = "key"
ITEM_ATTR = "item"
TOMBSTONE_ATTR = "tombstone"
VERSION_ATTR = "version"

#: DynamoDB's maximum item size (names and values of every attribute), in bytes, and its
#: longest sort key value ("Items" and "Partition keys and sort keys" in
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html).
MAX_ITEM_SIZE = 400 * 1024
MAX_SORT_KEY_BYTES = 1024
#: BatchWriteItem takes at most 25 requests.
BATCH_SIZE = 25

#: The stored item's `version` attribute, as an operand of condition expressions.
_stored_version = Path(VERSION_ATTR)
#: The stored item's `tombstone` attribute (present on tombstone rows only).
_stored_tombstone = Path(TOMBSTONE_ATTR)
#: The stored version is unknown: absent (a Relay Proxy wrote the row), or damaged (not a
#: number, or above MAX_STORED_VERSION), so that any write replaces it, as the other stores do.
#: The type test comes before any comparison: DynamoDB's OR stops at the first true operand
#: (moto fails a comparison of a string with a number instead of calling it false).
_UNKNOWN_VERSION = (
    _stored_version.does_not_exist()
    | ~_stored_version.is_type("N")
    | (_stored_version > Value({"N": str(MAX_STORED_VERSION)}))
)

#: Error codes that mean "try again later", not "this request is wrong".
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)

_MISSING_TABLE_HINT = (
    "create it with `autoconfig-cache cache create-table`, or set the store option "
    "create_table=true"
)


def item_size(
    cache_key: str, field: str, blob: bytes, version: int, *, deleted: bool = False
) -> int:
    """The size DynamoDB charges for one item: attribute names plus values.

    Numbers are counted generously (one byte per digit plus one) so that an item this function
    accepts is never refused by DynamoDB.

    :param deleted: the blob is a tombstone's (stored under ``tombstone`` instead of ``item``).
    """
    return (
        len(NAMESPACE_ATTR)
        + len(cache_key.encode())
        + len(KEY_ATTR)
        + len(field.encode())
        + len(TOMBSTONE_ATTR if deleted else ITEM_ATTR)
        + len(blob)
        + len(VERSION_ATTR)
        + len(str(version))
        + 1
    )


class _Aborted(Exception):
    """A worker-thread step noticed the store was closed or the operation given up."""


class _MissingTable(StoreSchemaError):
    """The table does not exist. A read-only store (``StoreSpec.read_only``) reads that as no
    records; any other store raises it as the :class:`StoreSchemaError` it is."""


class _Refused(Exception):
    """DynamoDB refused one record as invalid; ``entry`` says which and why."""

    def __init__(self, record: StoredRecord, reason: str) -> None:
        super().__init__(reason)
        self.entry = RefusedRecord(record.field, record.version, reason, record.deleted)


class DynamoDBStore(StoreBase):
    """A store plugin object for one cache key in one DynamoDB table.

    Build it with :meth:`from_spec` (what the ``dynamodb`` scheme's factory does). Nothing
    connects until the first operation. :class:`~autoconfig_cache.plugin.StoreBase` tracks each
    operation and cancels it on close; worker threads check the closed flag between steps.
    """

    store_name = "DynamoDB store"

    #: Tombstones are rows without the ``item`` attribute, which every Relay Proxy release skips
    #: without a word (see the module docstring); ``cache_get_all`` returns them with
    #: ``deleted=True``.
    keeps_tombstones_apart = True

    #: Every audit reads the whole partition, billed by the items' full size (projection does
    #: not lower it): with 10,000 items of ~1 KB about 1,250 read units an audit, so five
    #: minutes rather than the other stores' 30 s (the arithmetic: docs/stores/dynamodb.md).
    audit_interval_default = 300.0

    def __init__(self, settings: DynamoDBSettings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.cache_key = settings.cache_key
        #: Never create the table, whatever ``create_table`` says (``StoreSpec.read_only``).
        self.read_only = read_only
        self._connection = Connection(
            region=settings.region,
            host=settings.endpoint,
            connect_timeout_seconds=settings.connect_timeout,
            read_timeout_seconds=settings.read_timeout,
            # botocore's standard retry mode: exponential backoff with jitter for throttling and
            # transient network errors, at most this many attempts in all.
            retry_configuration={
                "total_max_attempts": 1 + settings.max_retry_attempts,
                "mode": "standard",
            },
            max_pool_connections=max(10, settings.write_concurrency),
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
            aws_session_token=settings.aws_session_token,
        )
        self._executor = ThreadPoolExecutor(
            max_workers=settings.write_concurrency, thread_name_prefix="autoconfig-cache-dynamodb"
        )
        self._table_ready = False
        self._table_lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> DynamoDBStore:
        """The ``dynamodb`` scheme's factory: parse the settings, connect nothing."""
        return cls(DynamoDBSettings.from_spec(spec), read_only=spec.read_only)

    def __repr__(self) -> str:
        where = redact_url(self.settings.endpoint or "") or f"AWS {self.settings.region}"
        return f"DynamoDBStore(table={self.settings.table!r}, at={where!r})"

    @property
    def connection(self) -> Connection:
        """The PynamoDB connection (tests wrap its ``dispatch`` to inject faults)."""
        return self._connection

    # -----------------------------------------------------------------------------------------
    # Store hooks
    # -----------------------------------------------------------------------------------------

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        """Every record under the cache key: a paginated Query with consistent reads.

        Rows with ``item`` are live records; rows with ``tombstone`` instead are tombstones
        (``deleted=True``). Read-only, a missing table holds no records (and is not created).
        """
        try:
            return await self._track(self._get_all())
        except _MissingTable:
            if not self.read_only:
                raise
            return []

    async def _get_all(self) -> list[StoredRecord]:
        async with self._operation("get_all"):
            records: list[StoredRecord] = []
            async for page in self._query_pages(keys_only=False):
                records.extend(self._record_from_item(item) for item in page)
            return records

    @hookimpl
    async def cache_get_versions(self) -> dict[str, int]:
        """Every sort key under the cache key and its version: the store audit's read, a Query
        projecting ``key``, ``version`` and ``tombstone`` (DynamoDB still charges the whole
        items' size: see "Store audit" in ``docs/stores/dynamodb.md``), eventually consistent
        (half the read units of ``cache_get_all``'s consistent Query; the audit reads the
        records consistently before it writes anything).

        Agrees with :meth:`cache_get_all`, except that a row without a binary ``item`` or
        ``tombstone`` (which ``cache_get_all`` reports as foreign) is given with its version.
        """
        try:
            return await self._track(self._get_versions())
        except _MissingTable:
            if not self.read_only:
                raise
            return {}

    async def _get_versions(self) -> dict[str, int]:
        async with self._operation("get_versions"):
            versions: dict[str, int] = {}
            async for page in self._query_pages(keys_only=True, consistent=False):
                for item in page:
                    field = item.get(KEY_ATTR, {}).get("S")
                    if not isinstance(field, str):
                        versions[foreign_record(item.get(KEY_ATTR), "").field] = 0
                        continue
                    version = _stored_number(item)
                    # Not a number: cache_get_all returns a foreign record, of version 0.
                    versions[field] = version if isinstance(version, int) else 0
            return versions

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """Write only what changed, delete only what disappeared (see ``docs/stores/dynamodb.md``).

        :raises PartialWriteError: once everything else is written, naming what was not:
            records refused (``refused``: over a DynamoDB limit, a version outside the valid
            range, or refused by DynamoDB as invalid), whose rows are left as they were, and
            writes that failed otherwise (``failed_fields``).
        """
        await self._track(self._set_all(records, rewrite_unchanged))

    async def _set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        wanted = {record.field for record in records}  # refused ones included: left as they are
        # The blob is checked (its size) only for the records written, below: reading the blob
        # of a record the core has not encoded yet encrypts it (see the cache_set_all hookspec).
        records, refused = self._split_refused(records, self._key_refusal)
        async with self._operation("set_all"):
            stored: dict[str, int] = {}
            # The raw `version` attribute of rows whose version is damaged (a fraction, a
            # string...): the writes below replace or delete such a row if it still holds it.
            damaged: dict[str, dict[str, Any]] = {}
            tombstoned: set[str] = set()
            async for page in self._query_pages(keys_only=True):
                for item in page:
                    field = item[KEY_ATTR]["S"]
                    stored[field] = _version_of(item)
                    if stored[field] < 0:
                        damaged[field] = item[VERSION_ATTR]
                    if TOMBSTONE_ATTR in item:
                        tombstoned.add(field)
            if self.settings.write_mode != "batch":
                # Every write below is conditional on the state just read (a newer version
                # written meanwhile by another writer survives); the kit holds us here to
                # prove it. Batch mode has no such guard, and says so.
                await self._between_read_and_write(None)
            to_write: list[StoredRecord] = []
            # Tombstones that replace, at the same version, a row holding ``item``: the same
            # deletion written by 0.1 where a Relay Proxy reads it. Rewriting moves it out.
            relocate: set[str] = set()
            for record in records:
                current = stored.get(record.field)
                moves = (
                    record.deleted and current == record.version and record.field not in tombstoned
                )
                if (
                    current is None
                    or current < record.version
                    or (rewrite_unchanged and current == record.version)
                    or moves
                ):
                    to_write.append(record)
                    if moves:
                        relocate.add(record.field)
            # Reads (makes) every blob to write before anything is sent, so that one the core
            # cannot encode fails the write before a single row changed.
            to_write, too_big = self._split_refused(to_write)
            refused.extend(too_big)
            to_delete = {field: version for field, version in stored.items() if field not in wanted}
            if not to_write and not to_delete:
                self._raise_refused("set_all", refused)
                return
            logger.debug(
                "set_all on %s: %d to write, %d to delete, %d unchanged",
                self,
                len(to_write),
                len(to_delete),
                len(records) - len(to_write),
            )
            if self.settings.write_mode == "batch":
                failed = await self._batch_write(
                    [self._item_attributes(r) for r in to_write], list(to_delete)
                )
            else:
                failed = await self._conditional_write(
                    to_write, to_delete, rewrite_unchanged, relocate, damaged, refused
                )
            if failed or refused:
                raise PartialWriteError(
                    f"DynamoDB set_all on table {self.settings.table!r}",
                    sorted(failed),
                    refused=refused,
                )

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        """A PutItem conditional on the stored version being unknown (absent or damaged) or lower.

        A tombstone record replaces the whole row with one holding ``tombstone`` instead of
        ``item``, and a live record the reverse, so one conditional write guards every transition.

        :raises PartialWriteError: when the record is refused: over DynamoDB's item size or sort
            key limit, a version outside the valid range, or refused by DynamoDB as invalid.
        """
        return await self._track(self._upsert(record))

    async def _upsert(self, record: StoredRecord) -> bool:
        _, refused = self._split_refused([record])
        self._raise_refused("upsert", refused)
        async with self._operation("upsert"):
            try:
                written = await self._call(self._put_conditional, record, False, False)
            except _Refused as exc:
                raise PartialWriteError(
                    f"DynamoDB upsert on table {self.settings.table!r}", refused=[exc.entry]
                ) from None
            self.records_written += written
            return written

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        """A DeleteItem conditional on the stored version being lower than ``version``."""
        return await self._track(self._delete(field, version))

    async def _delete(self, field: str, version: int) -> bool:
        async with self._operation("delete"):
            condition = _UNKNOWN_VERSION | (_stored_version < _number(version))
            deleted = await self._call(self._delete_conditional, field, condition)
            self.records_written += deleted
            return deleted

    @hookimpl
    async def cache_clear(self) -> None:
        """Delete every row under the cache key, tombstones included (BatchWriteItem)."""
        await self._track(self._clear())

    async def _clear(self) -> None:
        async with self._operation("clear"):
            fields: list[str] = []
            async for page in self._query_pages(keys_only=True):
                fields.extend(item[KEY_ATTR]["S"] for item in page)
            failed = await self._batch_write([], fields)
            if failed:
                raise PartialWriteError(
                    f"DynamoDB clear on table {self.settings.table!r}", sorted(failed)
                )

    @hookimpl
    async def cache_create_storage(self) -> bool | None:
        """Create the table (on-demand billing unless configured) and wait until it is active:
        ``True`` if this call created it, ``None`` if it was already there."""
        created = await self._track(self._create_storage())
        return True if created else None

    async def _create_storage(self) -> bool:
        async with self._operation("create_table", ensure_table=False):
            return await self._call(self._ensure_table_sync, True)

    async def _release(self) -> None:
        """Release the threads and the connection pool, once operations were cancelled.

        Operations awaiting a worker thread raised :class:`StoreClosedError` at once (StoreBase);
        queued requests are cancelled; a request already on the wire is abandoned (it ends
        within ``read_timeout``) and nothing is sent after it, because every step checks the flag.
        """
        self._executor.shutdown(wait=False, cancel_futures=True)
        client = self._connection._client
        if client is not None:
            with contextlib.suppress(Exception):  # closing a pool must never fail close()
                client.close()

    # -----------------------------------------------------------------------------------------
    # Orchestration (event loop side)
    # -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _operation(self, name: str, *, ensure_table: bool = True) -> AsyncIterator[None]:
        """Deadline, closed-check and table check around one store operation."""
        self._check_open()
        try:
            async with asyncio.timeout(self.settings.timeout):
                if ensure_table and not self._table_ready:
                    await self._call(self._ensure_table_sync, False)
                yield
        except TimeoutError:
            raise StoreTimeoutError(
                f"DynamoDB {name} on table {self.settings.table!r} did not finish within "
                f"{self.settings.timeout:g}s (store option timeout); check that "
                f"{self._where()} is reachable"
            ) from None

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run one blocking PynamoDB step on the store's threads."""
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, fn, *args)
        except RuntimeError:  # the executor was shut down by close()
            raise StoreClosedError(self.store_name) from None
        try:
            # close() cancels the operation's task, and with it this await (StoreBase).
            return await future
        except _Aborted:
            raise StoreClosedError(self.store_name) from None

    async def _sleep(self, seconds: float) -> None:
        """Sleep that close() interrupts (it cancels the operation's task)."""
        await asyncio.sleep(seconds)
        self._check_open()

    async def _query_pages(
        self, *, keys_only: bool, consistent: bool = True
    ) -> AsyncIterator[list[dict[str, Any]]]:
        start_key: dict[str, Any] | None = None
        while True:
            items, start_key = await self._call(
                self._query_page_sync, start_key, keys_only, consistent
            )
            yield items
            if not start_key:
                return

    async def _conditional_write(
        self,
        to_write: Sequence[StoredRecord],
        to_delete: dict[str, int],
        rewrite_unchanged: bool,
        relocate: set[str],
        damaged: dict[str, dict[str, Any]],
        refused: list[RefusedRecord],
    ) -> list[str]:
        """Version-guarded PutItem/DeleteItem per changed item, ``write_concurrency`` at once.

        A lost condition means another writer holds a newer version: not a failure. A put that
        DynamoDB refuses as invalid (``ValidationException``) is added to ``refused``. A row
        whose version was read as ``damaged`` is also replaced or deleted while it still holds
        that very value (DynamoDB has no test for "not an integer").
        """
        failed: list[str] = []
        aborted: list[BaseException] = []
        # Submit no more than the threads can run, so that an outage stops what is not sent yet.
        limit = asyncio.Semaphore(self.settings.write_concurrency)

        async def attempt(field: str, step: Callable[..., bool], *args: Any) -> None:
            async with limit:
                if aborted:
                    failed.append(field)
                    return
                try:
                    # Not `+= await`: the attribute would be read before the await, and
                    # concurrent writes would lose each other's counts.
                    written = await self._call(step, *args)
                    self.records_written += written
                except StoreUnavailableError as exc:
                    # The store is down: stop sending, report the outage, not N failures.
                    aborted.append(exc)
                    failed.append(field)
                except _Refused as exc:
                    refused.append(exc.entry)
                except StoreClosedError:
                    raise
                except StoreError as exc:
                    logger.warning("DynamoDB write of %s failed: %s", field, exc)
                    failed.append(field)

        jobs = [
            attempt(
                r.field,
                self._put_conditional,
                r,
                rewrite_unchanged,
                r.field in relocate,
                damaged.get(r.field),
            )
            for r in to_write
        ]
        for field, seen in to_delete.items():
            # Delete only what we saw (or older): a newer re-add by another writer survives.
            condition = _UNKNOWN_VERSION | (_stored_version <= _number(seen))
            if field in damaged:
                condition = condition | (_stored_version == Value(damaged[field]))
            jobs.append(attempt(field, self._delete_conditional, field, condition))
        await asyncio.gather(*jobs)
        if aborted:
            raise aborted[0]
        return failed

    async def _batch_write(self, puts: list[dict[str, Any]], deletes: list[str]) -> list[str]:
        """BatchWriteItem in chunks of 25; UnprocessedItems retried with backoff and jitter.

        :return: the fields that could not be written before the retry deadline.
        """
        requests: list[dict[str, Any]] = [{"DeleteRequest": {"Key": self._key(f)}} for f in deletes]
        requests.extend({"PutRequest": {"Item": item}} for item in puts)
        chunks = [requests[i : i + BATCH_SIZE] for i in range(0, len(requests), BATCH_SIZE)]
        failed: list[str] = []
        aborted: list[BaseException] = []
        limit = asyncio.Semaphore(self.settings.write_concurrency)

        async def write_chunk(chunk: list[dict[str, Any]]) -> None:
            async with limit:
                if aborted:
                    failed.extend(_request_field(r) for r in chunk)
                    return
                try:
                    failed.extend(await self._write_chunk(chunk))
                except StoreUnavailableError as exc:
                    aborted.append(exc)
                    failed.extend(_request_field(r) for r in chunk)
                except StoreClosedError:
                    raise
                except StoreError as exc:
                    logger.warning("DynamoDB BatchWriteItem failed: %s", exc)
                    failed.extend(_request_field(r) for r in chunk)

        await asyncio.gather(*(write_chunk(chunk) for chunk in chunks))
        self.records_written += len(requests) - len(failed)
        if aborted:
            raise aborted[0]
        return failed

    async def _write_chunk(self, chunk: list[dict[str, Any]]) -> list[str]:
        # PynamoDB retries UnprocessedItems twice with no pause and then gives up; DynamoDB
        # returns them precisely when the table is throttling, so pause (exponential backoff,
        # full jitter) and keep trying until the deadline.
        deadline = time.monotonic() + self.settings.unprocessed_retry_timeout
        pending = chunk
        attempt = 0
        while True:
            pending = await self._call(self._batch_write_sync, pending)
            if not pending:
                return []
            cap = min(self.settings.max_backoff_ms, self.settings.base_backoff_ms * 2**attempt)
            delay = random.uniform(0, cap) / 1000
            if time.monotonic() + delay > deadline:
                fields = [_request_field(r) for r in pending]
                logger.error(
                    "DynamoDB BatchWriteItem left %d item(s) unprocessed after %d retries "
                    "over %gs: %s",
                    len(fields),
                    attempt,
                    self.settings.unprocessed_retry_timeout,
                    ", ".join(fields[:10]),
                )
                return fields
            attempt += 1
            logger.debug("retrying %d unprocessed item(s) in %.3fs", len(pending), delay)
            await self._sleep(delay)

    # -----------------------------------------------------------------------------------------
    # Blocking steps (worker threads)
    # -----------------------------------------------------------------------------------------

    def _step(self) -> None:
        if self.closed:
            raise _Aborted()

    def _ensure_table_sync(self, create: bool) -> bool:
        """Make sure the table exists and is ACTIVE; ``True`` if this call created it."""
        self._step()
        created = False
        with self._table_lock:
            if self._table_ready and not create:
                return created
            try:
                description = self._describe_sync()
                if description is None:
                    creates = create or (self.settings.create_table and not self.read_only)
                    if not creates:
                        raise _MissingTable(
                            f"DynamoDB table {self.settings.table!r} does not exist in "
                            f"{self._where()}; {_MISSING_TABLE_HINT}"
                        )
                    created = self._create_table_sync()
                    description = self._wait_active_sync()
                elif description.get("TableStatus") == "CREATING":
                    description = self._wait_active_sync()
            except (StoreError, _Aborted):
                raise
            except Exception as exc:
                raise self._translate(exc, "DescribeTable/CreateTable") from exc
            self._check_schema(description)
            self._table_ready = True
        return created

    def _describe_sync(self) -> dict[str, Any] | None:
        try:
            description: dict[str, Any] = self._connection.describe_table(self.settings.table)
        except TableDoesNotExist:
            return None
        return description

    def _create_table_sync(self) -> bool:
        """Create the table; ``False`` if another process created it at the same moment."""
        settings = self.settings
        logger.info(
            "creating DynamoDB table %r in %s (billing %s)",
            settings.table,
            self._where(),
            settings.billing_mode,
        )
        try:
            self._connection.create_table(
                settings.table,
                attribute_definitions=[
                    {"AttributeName": NAMESPACE_ATTR, "AttributeType": "S"},
                    {"AttributeName": KEY_ATTR, "AttributeType": "S"},
                ],
                key_schema=[
                    {"AttributeName": NAMESPACE_ATTR, "KeyType": "HASH"},
                    {"AttributeName": KEY_ATTR, "KeyType": "RANGE"},
                ],
                billing_mode=settings.billing_mode,
                read_capacity_units=settings.read_capacity,
                write_capacity_units=settings.write_capacity,
            )
        except PynamoDBException as exc:
            # Another process may have created it at the same moment: that is fine.
            if _error_code(exc) != "ResourceInUseException":
                raise
            return False
        return True

    def _wait_active_sync(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.timeout
        while True:
            self._step()
            description = self._describe_sync()
            if description is not None and description.get("TableStatus") == "ACTIVE":
                return description
            if time.monotonic() > deadline:
                raise StoreTimeoutError(
                    f"DynamoDB table {self.settings.table!r} did not become ACTIVE within "
                    f"{self.settings.timeout:g}s"
                )
            self._wait_closed(1.0)

    def _check_schema(self, description: dict[str, Any]) -> None:
        keys = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
        types = {
            a["AttributeName"]: a["AttributeType"]
            for a in description.get("AttributeDefinitions", [])
        }
        expected = {"HASH": NAMESPACE_ATTR, "RANGE": KEY_ATTR}
        if keys != expected or types.get(NAMESPACE_ATTR) != "S" or types.get(KEY_ATTR) != "S":
            found = ", ".join(
                f"{name} ({types.get(name, '?')}, {kind})" for kind, name in sorted(keys.items())
            )
            raise StoreSchemaError(
                f"DynamoDB table {self.settings.table!r} has key schema [{found}]; expected "
                f"partition key {NAMESPACE_ATTR!r} (S, HASH) and sort key {KEY_ATTR!r} "
                "(S, RANGE), the Relay Proxy's schema. Use another table, or create one with "
                "`autoconfig-cache cache create-table`"
            )

    def _query_page_sync(
        self, start_key: dict[str, Any] | None, keys_only: bool, consistent: bool = True
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        self._step()
        try:
            data = self._connection.query(
                self.settings.table,
                self.settings.cache_key,
                consistent_read=consistent,
                exclusive_start_key=start_key,
                # The tombstone blob (small) only tells set_all which rows are tombstones;
                # projection cannot test for an attribute without reading it.
                attributes_to_get=[KEY_ATTR, VERSION_ATTR, TOMBSTONE_ATTR] if keys_only else None,
            )
        except Exception as exc:
            raise self._translate(exc, "Query") from exc
        return data.get("Items", []), data.get("LastEvaluatedKey")

    def _put_conditional(
        self,
        record: StoredRecord,
        allow_equal: bool,
        relocate: bool,
        damaged: dict[str, Any] | None = None,
    ) -> bool:
        """Put the whole row unless a same or newer version is stored.

        :param allow_equal: also replace a row stored at the same version (``rewrite_unchanged``).
        :param relocate: also replace a row at the same version that holds ``item`` (a tombstone
            written by 0.1 where a Relay Proxy reads it), and only such a row.
        :param damaged: the damaged ``version`` attribute read for this row: also replace the
            row while it holds exactly that.
        """
        self._step()
        value = _number(record.version)
        condition = _UNKNOWN_VERSION | (
            (_stored_version <= value) if allow_equal else (_stored_version < value)
        )
        if damaged is not None:
            condition = condition | (_stored_version == Value(damaged))
        if relocate and not allow_equal:
            condition = condition | (
                (_stored_version == value) & _stored_tombstone.does_not_exist()
            )
        attributes = self._item_attributes(record)
        attributes.pop(NAMESPACE_ATTR)
        attributes.pop(KEY_ATTR)
        try:
            self._connection.put_item(
                self.settings.table,
                self.settings.cache_key,
                record.field,
                attributes=attributes,
                condition=condition,
            )
        except Exception as exc:
            code = _error_code(exc)
            if code == "ConditionalCheckFailedException":
                return False  # the same or a newer version is stored: nothing to do
            if code == "ValidationException":
                # This record, as it is, is invalid for DynamoDB: sending it again cannot help.
                raise _Refused(record, f"DynamoDB refused it: {_error_message(exc)}") from exc
            raise self._translate(exc, "PutItem") from exc
        return True

    def _delete_conditional(self, field: str, condition: Condition) -> bool:
        self._step()
        try:
            data = self._connection.delete_item(
                self.settings.table,
                self.settings.cache_key,
                field,
                condition=condition,
                return_values="ALL_OLD",
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._translate(exc, "DeleteItem") from exc
        # attribute_not_exists() also holds for an absent item: only ALL_OLD tells a deletion.
        return bool(data.get("Attributes"))

    def _batch_write_sync(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send one BatchWriteItem; return its UnprocessedItems (requests in the same shape)."""
        self._step()
        puts = [r["PutRequest"]["Item"] for r in requests if "PutRequest" in r]
        deletes = [r["DeleteRequest"]["Key"] for r in requests if "DeleteRequest" in r]
        try:
            data = self._connection.batch_write_item(
                self.settings.table, put_items=puts or None, delete_items=deletes or None
            )
        except Exception as exc:
            raise self._translate(exc, "BatchWriteItem") from exc
        unprocessed: list[dict[str, Any]] = (data.get("UnprocessedItems") or {}).get(
            self.settings.table, []
        )
        return unprocessed

    # -----------------------------------------------------------------------------------------
    # Helpers
    # -----------------------------------------------------------------------------------------

    def _key(self, field: str) -> dict[str, Any]:
        return {NAMESPACE_ATTR: {"S": self.settings.cache_key}, KEY_ATTR: {"S": field}}

    def _item_attributes(self, record: StoredRecord) -> dict[str, Any]:
        """The whole row of ``record``: ``item`` for a live record, ``tombstone`` for a deleted one.

        Writing a row without ``item`` is what hides a tombstone from a Relay Proxy.
        """
        item = self._key(record.field)
        item[TOMBSTONE_ATTR if record.deleted else ITEM_ATTR] = {"B": record.blob}
        item[VERSION_ATTR] = {"N": str(record.version)}
        return item

    def _key_refusal(self, record: StoredRecord) -> str | None:
        """:meth:`_refusal` without the size of the row, which needs the blob: what every store
        refuses, and a sort key (the field) over DynamoDB's 1,024 bytes."""
        reason = super()._refusal(record)
        if reason is not None:
            return reason
        key_bytes = len(record.field.encode())
        if key_bytes > MAX_SORT_KEY_BYTES:
            return (
                f"its field is {key_bytes} bytes, over DynamoDB's {MAX_SORT_KEY_BYTES}-byte "
                "sort key limit"
            )
        return None

    def _refusal(self, record: StoredRecord) -> str | None:
        """What every store refuses, and what DynamoDB cannot hold: a row over its 400 KB item
        size, a sort key (the field) over 1,024 bytes. Checked before sending, so that the rest
        of a batch is written and the refusal costs no request."""
        reason = self._key_refusal(record)
        if reason is not None:
            return reason
        size = item_size(
            self.settings.cache_key,
            record.field,
            record.blob,
            record.version,
            deleted=record.deleted,
        )
        if size > MAX_ITEM_SIZE:
            return (
                f"it is {size} bytes, over DynamoDB's item limit of 400 KB ({MAX_ITEM_SIZE} "
                "bytes, attribute names included)"
            )
        return None

    def _record_from_item(self, item: dict[str, Any]) -> StoredRecord:
        """A row as a record, or as a foreign record saying what is wrong with it.

        A row without a binary ``item`` or ``tombstone`` (a Relay Proxy skips such a row too)
        or whose ``version`` is not a number is reported, not silently left out: ``cache verify``
        names it. A version that is an integer of any size is returned as it is (the core
        reports one outside the valid range).
        """
        field = item.get(KEY_ATTR, {}).get("S")
        if not isinstance(field, str):
            return foreign_record(item.get(KEY_ATTR), "the sort key is not a string")
        blob = item.get(ITEM_ATTR, {}).get("B")
        deleted = False
        if not isinstance(blob, bytes | bytearray):
            blob = item.get(TOMBSTONE_ATTR, {}).get("B")
            deleted = True
        if not isinstance(blob, bytes | bytearray):
            found = _attribute_types(item, ITEM_ATTR, TOMBSTONE_ATTR)
            return foreign_record(
                field, f"the row has no binary {ITEM_ATTR!r} or {TOMBSTONE_ATTR!r} attribute{found}"
            )
        version = _stored_number(item)
        if isinstance(version, str):
            return foreign_record(field, version, deleted=deleted)
        return StoredRecord(field=field, version=version, blob=bytes(blob), deleted=deleted)

    def _where(self) -> str:
        if self.settings.endpoint:
            return f"endpoint {redact_url(self.settings.endpoint)} (region {self.settings.region})"
        return f"region {self.settings.region}"

    def _translate(self, exc: BaseException, operation: str) -> StoreError:
        """A typed store error for a failure of ``operation``, saying what to check."""
        if isinstance(exc, StoreError):
            return exc
        cause: BaseException = exc
        if isinstance(exc, PynamoDBException) and exc.cause is not None:
            cause = exc.cause
        table = self.settings.table
        settings = self.settings
        if isinstance(cause, ConnectTimeoutError | ReadTimeoutError):
            return StoreTimeoutError(
                f"DynamoDB {operation} on table {table!r} timed out at {self._where()} "
                f"(connect_timeout={settings.connect_timeout:g}s, "
                f"read_timeout={settings.read_timeout:g}s, "
                f"max_retry_attempts={settings.max_retry_attempts}): {cause}"
            )
        if isinstance(cause, NoCredentialsError | PartialCredentialsError):
            return StoreUnavailableError(
                f"DynamoDB {operation}: no usable AWS credentials ({cause}); configure the "
                "default credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
                "or an instance role)"
            )
        if isinstance(cause, TableDoesNotExist):
            self._table_ready = False
            return _MissingTable(
                f"DynamoDB table {table!r} does not exist in {self._where()}; {_MISSING_TABLE_HINT}"
            )
        if isinstance(cause, ClientError):
            code = _error_code(exc) or "unknown"
            message = cause.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                self._table_ready = False
                return _MissingTable(
                    f"DynamoDB table {table!r} does not exist in {self._where()}; "
                    f"{_MISSING_TABLE_HINT}"
                )
            if code in _TRANSIENT_CODES:
                return StoreUnavailableError(
                    f"DynamoDB {operation} on table {table!r} was refused as {code} after "
                    f"{settings.max_retry_attempts} retries: {message}"
                )
            return StoreError(f"DynamoDB {operation} on table {table!r} failed: {code}: {message}")
        if isinstance(cause, BotoCoreError):
            return StoreUnavailableError(
                f"DynamoDB {operation} on table {table!r} could not reach {self._where()}: {cause}"
            )
        return StoreError(f"DynamoDB {operation} on table {table!r} failed: {exc!r}")


def _number(value: int) -> Value:
    return Value({"N": str(value)})


def _stored_number(item: dict[str, Any]) -> int | str:
    """The row's ``version`` as an int (of any size: ``1E+125`` included), 0 when absent (a
    Relay Proxy wrote the row), or a string saying why it is not an integer."""
    attribute = item.get(VERSION_ATTR)
    if attribute is None:
        return 0  # written by a Relay Proxy, which keeps no version of its own
    raw = attribute.get("N") if isinstance(attribute, dict) else None
    if not isinstance(raw, str):
        return (
            f"its {VERSION_ATTR!r} attribute is not a number{_attribute_types(item, VERSION_ATTR)}"
        )
    try:
        # DynamoDB numbers are decimal, up to 38 significant digits and 10**125: exact here.
        number = decimal.Decimal(raw)
    except decimal.InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        return f"its {VERSION_ATTR!r} attribute, {raw[:40]!r}, is not an integer"
    return int(number)


def _version_of(item: dict[str, Any]) -> int:
    """The stored version ``set_all`` compares: 0 when absent, -1 (unknown: any write replaces
    it, as the conditions do) when damaged."""
    version = _stored_number(item)
    return -1 if isinstance(version, str) or is_damaged_version(version) else version


def _attribute_types(item: dict[str, Any], *names: str) -> str:
    """`` (found 'item' of type S)`` for the attributes among ``names`` the row has, else ``""``."""
    found = [
        f"{name!r} of type {next(iter(item[name]), '?')}"
        for name in names
        if isinstance(item.get(name), dict)
    ]
    return f" (found {', '.join(found)})" if found else ""


def _error_message(exc: BaseException) -> str:
    """DynamoDB's message behind ``exc`` (it names the rule broken, never a value)."""
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))[:300]
    return str(exc)[:300]


def _error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code behind ``exc``, if there is one.

    Not PynamoDB's ``cause_response_code``: it fails on causes whose ``response`` is ``None``
    (network errors raised by urllib3).
    """
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def _request_field(request: dict[str, Any]) -> str:
    body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key")
    return str(body[KEY_ATTR]["S"])


_: type[Store] = DynamoDBStore  # mypy checks the class against the Store protocol

"""Built-in SQLite store: the embedded default, one file shared safely by several processes.

URLs:

* ``sqlite:///var/cache/app/cache.db`` - an absolute path (everything after ``sqlite://``);
* ``sqlite:cache.db`` or ``sqlite:data/cache.db`` - a path relative to the working directory at
  the moment the store is configured; ``sqlite:~/cache.db`` (or ``sqlite:///~/cache.db``)
  expands the home directory;
* ``?timeout=SECONDS`` - how long a write waits for another process's lock (default 5).

A URL with a host (``sqlite://host/path``) is rejected: SQLite files are local.

The file is created on first use (never by the factory) with mode 0600, and its directory with
mode 0700 when missing; SQLite gives its ``-wal`` and ``-shm`` files the database's mode. An
existing file keeps its mode, so a deliberately group-shared cache stays shared. A store opened
read-only (``StoreSpec.read_only``: ``cache inspect``, ``verify``, ``export``) opens the file with
``mode=ro`` and creates nothing; a missing file or table reads as no records. The database is
in WAL mode with a busy timeout, so readers never block writers and several processes can share
one file. All records live in one table, keyed by cache key and field::

    autoconfig_cache(cache_key TEXT, field TEXT, version INTEGER, blob BLOB,
                     PRIMARY KEY (cache_key, field))

The stdlib :mod:`sqlite3` module is blocking, so each store object runs its connection on one
worker thread of its own; operations queue there in order. ``cache_close`` interrupts the running
statement (``sqlite3_interrupt``), fails operations in flight with :class:`StoreClosedError` and
closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.options import option, parse_options
from autoconfig_cache.plugin import (
    MAX_STORED_VERSION,
    ConfigurationError,
    RegisterStore,
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

logger = logging.getLogger(__name__)

T = TypeVar("T")

TABLE = "autoconfig_cache"
DEFAULT_TIMEOUT = 5.0
#: How long ``cache_close`` waits for the worker thread to close the connection. A worker stuck
#: waiting for another process's lock closes it when the wait ends; close does not wait for that.
CLOSE_WAIT_SECONDS = 2.0
_FETCH_BATCH = 1000
#: The longest SQLite's busy handler blocks the worker before ``_call`` checks for close.
_BUSY_SLICE = 0.05

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    cache_key TEXT NOT NULL,
    field TEXT NOT NULL,
    version INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (cache_key, field)
)
"""
#: (declared type, position in the primary key) of each column ``_SCHEMA`` creates.
_EXPECTED_COLUMNS = {
    "cache_key": ("TEXT", 1),
    "field": ("TEXT", 2),
    "version": ("INTEGER", 0),
    "blob": ("BLOB", 0),
}

_SELECT_ALL = f"SELECT field, version, blob FROM {TABLE} WHERE cache_key = ?"  # noqa: S608
# rowid: set_all deletes rows by it, so that a row whose field is not text (NULL, a BLOB, text
# that is not UTF-8) is deleted as surely as any other.
_SELECT_VERSIONS = f"SELECT rowid, field, version FROM {TABLE} WHERE cache_key = ?"  # noqa: S608
# The store audit's cheap read: no blob content, only its storage class (typeof reads the row's
# header, not the blob), which cache_get_all needs to report a blob that is not a BLOB.
_SELECT_FIELD_VERSIONS = f"SELECT field, version, typeof(blob) FROM {TABLE} WHERE cache_key = ?"  # noqa: S608
# A stored version that is not an integer in 0..MAX_STORED_VERSION is damaged (written by
# something else): the guards treat it as unknown, so that it cannot block the item for good.
_DAMAGED = (
    f"(typeof({TABLE}.version) != 'integer' "
    f"OR {TABLE}.version NOT BETWEEN 0 AND {MAX_STORED_VERSION})"
)
# The version guard lives in SQL, so the check and the write are one atomic statement.
_UPSERT_NEWER = f"""
INSERT INTO {TABLE} (cache_key, field, version, blob) VALUES (?, ?, ?, ?)
ON CONFLICT (cache_key, field) DO UPDATE SET version = excluded.version, blob = excluded.blob
WHERE {_DAMAGED} OR excluded.version > {TABLE}.version
"""  # noqa: S608
_UPSERT_NEWER_OR_EQUAL = f"""
INSERT INTO {TABLE} (cache_key, field, version, blob) VALUES (?, ?, ?, ?)
ON CONFLICT (cache_key, field) DO UPDATE SET version = excluded.version, blob = excluded.blob
WHERE {_DAMAGED} OR excluded.version >= {TABLE}.version
"""  # noqa: S608
_DELETE_ROW = f"DELETE FROM {TABLE} WHERE rowid = ?"  # noqa: S608
_DELETE_OLDER = (
    f"DELETE FROM {TABLE} WHERE cache_key = ? AND field = ? AND ({_DAMAGED} OR version < ?)"  # noqa: S608
)
_DELETE_ALL = f"DELETE FROM {TABLE} WHERE cache_key = ?"  # noqa: S608

_UNAVAILABLE_CODES = {
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_PERM",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_AUTH",
}
_SCHEMA_CODES = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}


def parse_sqlite_url(url: str) -> Path:
    """The absolute database path of a ``sqlite:`` URL (no filesystem access).

    ``sqlite:///~/cache.db`` is read as ``sqlite:~/cache.db`` (the home directory): nobody means
    a directory called ``~`` at the root; ``sqlite:////~/cache.db`` names that one.

    :raises ConfigurationError: when the URL has a host or no path, or names an unknown user's
        home directory.
    """
    parts = urlsplit(url)
    if parts.netloc:
        # Shown from the redacted URL: whatever sits where a host would is never a password.
        shown = urlsplit(redact_url(url))
        # sqlite://cache.db was meant as a relative path: show it rewritten.
        relative = "relative/path/cache.db" if "@" in shown.netloc else shown.netloc + shown.path
        raise ConfigurationError(
            f"SQLite store URL {redact_url(url)!r} names a host ({shown.netloc!r}); SQLite files "
            "are local. A path relative to the working directory has no slashes after the "
            f"scheme (sqlite:{relative}); an absolute path has three slashes "
            "(sqlite:///absolute/path/cache.db)"
        )
    raw_path = unquote(parts.path)
    if raw_path in ("", "/"):
        raise ConfigurationError(
            "SQLite store URL has no file path; use sqlite:///absolute/path/cache.db or "
            "sqlite:relative/path/cache.db"
        )
    if raw_path.startswith("/~"):
        raw_path = raw_path[1:]
    try:
        return Path(raw_path).expanduser().absolute()
    except RuntimeError as exc:  # "~user" for a user that does not exist
        raise ConfigurationError(f"SQLite store URL path {raw_path!r}: {exc}") from None


@attrs.frozen
class SQLiteOptions:
    """The SQLite store's options (URL query parameters or ``StoreSpec.options``; options win).

    ``docs/configuration.md`` shows the table generated from these fields.
    """

    timeout: float = option(
        DEFAULT_TIMEOUT,
        doc="Seconds a write waits for another process's lock on the file before failing "
        "with `StoreTimeoutError`.",
        minimum=0,
    )


class SQLiteStore(StoreBase):
    """A store in one table of a local SQLite file.

    ``cache_set_all`` reads the stored versions and writes inside one ``BEGIN IMMEDIATE``
    transaction that holds the file's write lock throughout, so no other writer can act between
    its read and its write: it has no client-side read-then-write for the conformance kit to
    hold (``_between_read_and_write`` is not called).

    :param path: the database file (created on first use, mode 0600).
    :param cache_key: the namespace the records live under; several cache keys may share a file.
    :param timeout: seconds a write waits for another process's lock before failing.
    :param read_only: open the file read-only (``StoreSpec.read_only``): create no directory,
        file or table; a missing file or table reads as no records. On a WAL database nobody
        else has open, SQLite leaves its ``-wal`` and ``-shm`` files next to it (a read-only
        connection cannot remove them; the next read-write one does).
    """

    store_name = "SQLite store"

    def __init__(
        self,
        path: Path,
        cache_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.cache_key = cache_key
        self.timeout = timeout
        self.read_only = read_only
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # used on the worker thread only
        # Set on the worker thread when a connection created the table; cleared once reported.
        self._created_table = False

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> SQLiteStore:
        """Build a store from ``sqlite:///abs/path.db`` or ``sqlite:rel/path.db``; no I/O.

        ``options["timeout"]`` overrides the URL's ``?timeout=``.

        :raises ConfigurationError: when the URL or the timeout is malformed.
        """
        path = parse_sqlite_url(spec.url)
        options = parse_options(SQLiteOptions, spec, store="SQLite")
        return cls(path, spec.cache_key, timeout=options.timeout, read_only=spec.read_only)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, cache_key={self.cache_key!r})"

    # -----------------------------------------------------------------------------------------
    # running work on the worker thread
    # -----------------------------------------------------------------------------------------

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on the worker thread as an operation ``cache_close`` cancels."""
        return await self._track(self._on_worker(job))

    async def _on_worker(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="autoconfig-cache-sqlite"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, job)

    def _call(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on the worker thread, translating sqlite3 errors.

        SQLite's own busy handler waits at most ``_BUSY_SLICE`` seconds; a job that finds the
        file locked is retried (each job is one transaction, rolled back on error) until
        ``timeout``. Waiting in slices lets ``cache_close`` end a lock wait at once.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            self._check_open()
            try:
                return job(self._connection())
            except StoreError:
                raise
            except sqlite3.Error as exc:
                busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
                if not busy or self.closed or time.monotonic() >= deadline:
                    raise self._translate(exc) from exc
                # Some lock conflicts return at once without SQLite's busy handler: no hot spin.
                time.sleep(0.005)

    def _checked(self, rows: Iterable[T]) -> Iterator[T]:
        """``rows``, stopping a long ``executemany`` as soon as the store is closed.

        ``sqlite3_interrupt`` only stops the statement running at that instant; executemany
        restarts the statement for each row, so it would carry on without this check.
        """
        for row in rows:
            self._check_open()
            yield row

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        code = getattr(exc, "sqlite_errorname", "")
        where = f"SQLite cache file {self.path}"
        if self.closed:
            return StoreClosedError(self.store_name)
        if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            return StoreTimeoutError(
                f"the {where} stayed locked by another connection for more than {self.timeout} s "
                f"({exc}); raise ?timeout= in the store URL or find the process holding the lock"
            )
        if code == "SQLITE_READONLY" and self.read_only:
            return StoreError(f"the {where} was opened read-only: nothing was written ({exc})")
        if code in _UNAVAILABLE_CODES:
            return StoreUnavailableError(
                f"cannot use the {where}: {exc}; make sure the file and its directory are "
                "writable by this process, or point the store URL at another path"
            )
        if code in _SCHEMA_CODES:
            return StoreSchemaError(
                f"the {where} is not a usable SQLite database ({exc}); point the store URL at "
                "another file, or remove this one if it is a cache nobody else uses"
            )
        return StoreError(f"SQLite error on the {where}: {exc}")

    # -----------------------------------------------------------------------------------------
    # connecting (worker thread)
    # -----------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None and self.read_only:
            self._conn = self._connect_read_only()
        if self._conn is None:
            self._create_file()
            try:
                conn = sqlite3.connect(
                    self.path, timeout=min(self.timeout, _BUSY_SLICE), isolation_level=None
                )
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            try:
                self._set_up(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._restrict_sidecar_files()
        return self._conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that can create nothing: URI ``mode=ro`` (SQLite creates no file), no
        directory, no switch to WAL, no table.

        :raises _NothingStored: when the file or its table does not exist.
        """
        if not self.path.exists():
            raise _NothingStored(f"there is no SQLite cache file {self.path}")
        if self.path.is_dir():
            raise StoreUnavailableError(
                f"the SQLite cache path {self.path} is a directory; point the store URL at the "
                "cache file"
            )
        try:
            conn = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro",
                uri=True,
                timeout=min(self.timeout, _BUSY_SLICE),
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            if not self._check_table(conn):
                raise _NothingStored(f"the SQLite cache file {self.path} has no table {TABLE}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_file(self) -> None:
        directory = self.path.parent
        hint = "choose a writable location in the store URL (sqlite:///absolute/path/cache.db)"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the directory {directory} for the SQLite cache file "
                f"{self.path}: {exc.strerror or exc}; {hint} or create the directory"
            ) from exc
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if self.path.is_dir():
                raise StoreUnavailableError(
                    f"the SQLite cache path {self.path} is a directory; {hint}"
                ) from None
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise StoreUnavailableError(
                    f"the SQLite cache file {self.path} is not readable and writable by this "
                    f"process; fix its permissions or {hint}"
                ) from None
            return
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the SQLite cache file {self.path}: {exc.strerror or exc}; {hint} "
                f"or fix the permissions of {directory}"
            ) from exc
        try:
            os.fchmod(fd, 0o600)  # explicit: the umask must not decide who can read the cache
        finally:
            os.close(fd)
        logger.info("created SQLite cache file %s (mode 0600)", self.path)

    def _set_up(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment of exclusive access; if another process holds the
        # file, this raises SQLITE_BUSY and _call retries the whole job.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning(
                "SQLite cache file %s is in journal mode %s, not WAL (the filesystem may not "
                "support it); readers will block writers",
                self.path,
                mode,
            )
        # WAL + NORMAL is durable except for the last commits on power loss: fine for a cache.
        conn.execute("PRAGMA synchronous = NORMAL")
        if not self._check_table(conn):
            self._created_table = True  # reported by cache_create_storage
        conn.execute(_SCHEMA)
        self._check_table(conn)

    def _check_table(self, conn: sqlite3.Connection) -> bool:
        """Whether the table exists (``False``: it does not).

        :raises StoreSchemaError: when it has other columns than those ``_SCHEMA`` creates.
        """
        columns = {
            row[1]: (str(row[2]).upper(), int(row[5]))
            for row in conn.execute(f"PRAGMA table_info({TABLE})")
        }
        if not columns:
            return False
        if columns != _EXPECTED_COLUMNS:
            found = ", ".join(f"{name} {kind} pk={pk}" for name, (kind, pk) in columns.items())
            raise StoreSchemaError(
                f"table {TABLE} in the SQLite cache file {self.path} has columns ({found}), "
                "not the expected (cache_key TEXT, field TEXT, version INTEGER, blob BLOB, "
                "PRIMARY KEY (cache_key, field)); point the store URL at another file"
            )
        return True

    def _restrict_sidecar_files(self) -> None:
        """Keep ``-wal``/``-shm`` as private as the database (SQLite normally does this)."""
        try:
            private = stat.S_IMODE(self.path.stat().st_mode) & 0o077 == 0
            for suffix in ("-wal", "-shm", "-journal"):
                sidecar = self.path.with_name(self.path.name + suffix)
                if private and sidecar.exists() and stat.S_IMODE(sidecar.stat().st_mode) & 0o077:
                    sidecar.chmod(0o600)
        except OSError as exc:
            logger.warning("could not check the modes of %s's WAL files: %s", self.path, exc)

    # -----------------------------------------------------------------------------------------
    # operations (worker thread)
    # -----------------------------------------------------------------------------------------

    def _get_all(self, conn: sqlite3.Connection) -> list[StoredRecord]:
        return [_row_record(*row) for row in self._read_rows(conn, _SELECT_ALL)]

    def _get_versions(self, conn: sqlite3.Connection) -> dict[str, int]:
        versions: dict[str, int] = {}
        for field, version, blob_type in self._read_rows(conn, _SELECT_FIELD_VERSIONS):
            # The row as cache_get_all would return it, with a stand-in of the blob's storage
            # class: the field and version (0 for a foreign row) come out the same.
            stand_in = b"" if blob_type == "blob" else None
            record = _row_record(field, version, stand_in)
            versions[record.field] = record.version
        return versions

    def _read_rows(self, conn: sqlite3.Connection, query: str) -> list[Any]:
        """Every row ``query`` selects under the cache key, in batches (checking for close).

        A TEXT value that is not UTF-8 (written by something else) makes sqlite3 raise on the
        fetch; the rows are then read again with such text decoded losslessly (surrogateescape),
        so that it is reported and deleted like any foreign row. Only then: the lenient decoder
        is a Python call per value, twice the cost of a read.
        """
        try:
            return self._fetch_rows(conn, query)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc).lower():
                raise
        conn.text_factory = _lenient_text
        try:
            return self._fetch_rows(conn, query)
        finally:
            conn.text_factory = str

    def _fetch_rows(self, conn: sqlite3.Connection, query: str) -> list[Any]:
        cursor = conn.execute(query, (self.cache_key,))
        rows: list[Any] = []
        try:
            while batch := cursor.fetchmany(_FETCH_BATCH):
                self._check_open()
                rows.extend(batch)
        finally:
            cursor.close()
        return rows

    def _set_all(
        self,
        conn: sqlite3.Connection,
        records: Sequence[StoredRecord],
        keep: set[str],
        rewrite_unchanged: bool,
    ) -> None:
        """Write ``records`` and delete every row whose field is neither among them nor in
        ``keep`` (the fields of refused records, left as they are)."""
        key = self.cache_key
        # IMMEDIATE takes the write lock now, so the versions read below cannot change before
        # the writes that depend on them.
        conn.execute("BEGIN IMMEDIATE")
        try:
            # field -> stored version, None when damaged (any write replaces it).
            stored: dict[str, int | None] = {}
            stale: list[int] = []
            wanted = keep.union(item.field for item in records)
            for rowid, field, version in self._read_rows(conn, _SELECT_VERSIONS):
                if field in wanted:
                    stored[field] = None if is_damaged_version(version) else version
                else:
                    # Includes rows whose field is not text: no wanted field equals one.
                    stale.append(rowid)
            changed = [
                item
                for item in records
                if item.field not in stored
                or (version := stored[item.field]) is None
                or version < item.version
                or (rewrite_unchanged and version == item.version)
            ]
            self._check_open()
            deleted = conn.executemany(_DELETE_ROW, self._checked((row,) for row in stale)).rowcount
            written = conn.executemany(
                _UPSERT_NEWER_OR_EQUAL if rewrite_unchanged else _UPSERT_NEWER,
                self._checked((key, item.field, item.version, item.blob) for item in changed),
            ).rowcount
            self._check_open()
            conn.execute("COMMIT")
            self.records_written += max(deleted, 0) + max(written, 0)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _upsert(self, conn: sqlite3.Connection, item: StoredRecord) -> bool:
        cursor = conn.execute(_UPSERT_NEWER, (self.cache_key, item.field, item.version, item.blob))
        self.records_written += cursor.rowcount
        return cursor.rowcount == 1

    def _delete(self, conn: sqlite3.Connection, field: str, version: int) -> bool:
        deleted = conn.execute(_DELETE_OLDER, (self.cache_key, field, version)).rowcount
        self.records_written += deleted
        return deleted == 1

    def _clear(self, conn: sqlite3.Connection) -> None:
        self.records_written += conn.execute(_DELETE_ALL, (self.cache_key,)).rowcount

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -----------------------------------------------------------------------------------------
    # hooks
    # -----------------------------------------------------------------------------------------

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        """Every record under the cache key, read in one consistent snapshot.

        Read-only, a missing file or table holds no records (``StoreSpec.read_only``).
        """
        try:
            return await self._run(self._get_all)
        except _NothingStored as exc:
            logger.debug("%s (opened read-only: nothing created): no records", exc)
            return []

    @hookimpl
    async def cache_get_versions(self) -> dict[str, int]:
        """Every field under the cache key and its version, without reading the blobs (the
        store audit's cheap read); agrees with :meth:`cache_get_all`."""
        try:
            return await self._run(self._get_versions)
        except _NothingStored:
            return {}

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """Replace the records in one transaction, writing only changed rows.

        :raises PartialWriteError: naming the records refused (a version outside the valid
            range, a field that is not UTF-8 text), once the others are committed; their rows
            are left as they were.
        """
        accepted, refused = self._split_refused(records)
        keep = {entry.field for entry in refused}
        await self._run(lambda conn: self._set_all(conn, accepted, keep, rewrite_unchanged))
        self._raise_refused("set_all", refused)

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        """Write ``record`` unless the same or a higher version is stored (one statement).

        :raises PartialWriteError: when the record is refused (nothing is written).
        """
        _, refused = self._split_refused([record])
        self._raise_refused("upsert", refused)
        return await self._run(lambda conn: self._upsert(conn, record))

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        """Delete ``field`` if it is stored at a version lower than ``version``."""
        return await self._run(lambda conn: self._delete(conn, field, version))

    @hookimpl
    async def cache_clear(self) -> None:
        """Delete every record under the cache key (other cache keys in the file stay)."""
        await self._run(self._clear)

    @hookimpl
    async def cache_create_storage(self) -> bool | None:
        """Create the file (mode 0600) and the table now rather than on first use: ``True`` if
        this store created the table (this call or an operation before it), ``None`` if it was
        already there."""
        created = await self._run(lambda conn: self._created_table)
        self._created_table = False  # reported once
        return True if created else None

    async def _release(self) -> None:
        """Interrupt the running statement and close the connection on the worker thread.

        Operations in flight have already failed with :class:`StoreClosedError` (StoreBase);
        the worker sees the closed flag between statements and rows.
        """
        conn = self._conn
        if conn is not None:
            conn.interrupt()  # documented as safe to call from another thread
        executor, self._executor = self._executor, None
        if executor is None:
            return
        closing = asyncio.get_running_loop().run_in_executor(executor, self._close_connection)
        executor.shutdown(wait=False)
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_WAIT_SECONDS)
        if not done:
            logger.warning(
                "SQLite cache file %s: the worker is still busy (waiting for a lock?); its "
                "connection will close when that ends",
                self.path,
            )


class _NothingStored(StoreError):
    """Read-only: the file or its table does not exist, so there is nothing to read.

    ``cache_get_all`` returns no records for it; any write through a read-only store raises it.
    """


def _lenient_text(raw: bytes) -> str:
    """A TEXT value as str, bytes that are not UTF-8 kept as surrogate escapes."""
    return raw.decode("utf-8", "surrogateescape")


def _sql_type(value: object) -> str:
    """The SQLite storage class of a value sqlite3 returned."""
    if value is None:
        return "NULL"
    return {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}.get(type(value), "?")


def _row_record(field: object, version: object, blob: object) -> StoredRecord:
    """A row as a record, or as a foreign record naming what is wrong with it.

    The table's declared types do not bind SQLite (any column takes any value), so a row
    another program wrote may hold anything. A version that is an integer of any size is kept
    as it is: the core reports one outside the valid range as ``invalid-version``.
    """
    if type(field) is not str:
        return foreign_record(field, f"the field is {_sql_type(field)}, not TEXT")
    if not field.isascii():
        try:
            field.encode("utf-8")
        except UnicodeEncodeError:
            return foreign_record(field, "the field is TEXT that is not valid UTF-8")
    if type(blob) is not bytes:
        return foreign_record(field, f"the blob is {_sql_type(blob)}, not BLOB")
    if type(version) is int:
        return StoredRecord(field, version, blob)
    if type(version) is float and version.is_integer():
        # 1E+125 in an INTEGER column is stored as REAL: an (out-of-range) integer all the same.
        return StoredRecord(field, int(version), blob)
    shown = repr(version)[:40] if type(version) is not bytes else f"of {len(version)} bytes"
    return foreign_record(field, f"the version is {_sql_type(version)} {shown}, not an INTEGER")


_: type[Store] = SQLiteStore  # mypy checks the class against the Store protocol


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register the ``sqlite`` scheme."""
    register(
        ["sqlite"],
        SQLiteStore.from_spec,
        description="embedded SQLite file: sqlite:///absolute/path.db or sqlite:relative.db",
    )

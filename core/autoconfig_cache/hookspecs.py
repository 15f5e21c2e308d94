"""Hook specifications: the public contract for plugin authors.

Hooks are called with keyword arguments only, so a specification can gain parameters without
breaking implementations (pluggy passes an implementation only the arguments it names).

Three groups live here:

* **discovery** (``autoconfig_cache_*``), called on the global plugin manager that loads the
  ``autoconfig_cache`` entry-point group;
* **store operations, encryption and migration** (``cache_*``), called on the plugin manager that
  each :class:`~autoconfig_cache.cache.AutoConfigCache` owns. Exactly one store is registered there;
* **observation** (``autoconfig_cache_on_*``), 1:N notifications for metrics and alerting.

Store operation hooks are ``async def`` in implementations; ``pm.hook.cache_get_all()`` returns
the coroutine and the core awaits it. An observer may wrap them with ``@hookimpl(wrapper=True)``:
``coro = yield`` hands it the coroutine, and it returns the same or another awaitable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from .records import StoredRecord
from .store_spec import StoreSpec

if TYPE_CHECKING:
    from .codec import EncryptionContext
    from .environment import EnvironmentStore
    from .report import LoadReport
    from .sinks.spec import SinkFactory

PROJECT_NAME = "autoconfig_cache"
ENTRY_POINT_GROUP = "autoconfig_cache"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Store(Protocol):
    """The typed contract of a store: what the ``cache_*`` store hooks below specify.

    A store is registered as a pluggy plugin, so each method must also carry ``@hookimpl``
    (checked at registration). Subclass :class:`autoconfig_cache.plugin.StoreBase`, which
    supplies ``cache_close`` and a default ``cache_create_storage``; mypy then checks the class
    against this protocol wherever a :data:`StoreFactory` returns it.
    """

    cache_key: str

    async def cache_get_all(self) -> list[StoredRecord]:
        """See :func:`cache_get_all`."""
        ...

    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        """See :func:`cache_set_all`."""
        ...

    async def cache_upsert(self, record: StoredRecord) -> bool:
        """See :func:`cache_upsert`."""
        ...

    async def cache_delete(self, field: str, version: int) -> bool:
        """See :func:`cache_delete`."""
        ...

    async def cache_clear(self) -> None:
        """See :func:`cache_clear`."""
        ...

    async def cache_create_storage(self) -> bool | None:
        """See :func:`cache_create_storage`."""
        ...

    async def cache_close(self) -> None:
        """See :func:`cache_close`."""
        ...


#: Builds a store from a store URL. Must not connect: connect lazily, on the first operation.
#: A malformed URL or option raises :class:`~autoconfig_cache.errors.ConfigurationError`.
StoreFactory = Callable[[StoreSpec], Store]


class RegisterStore(Protocol):
    """The ``register`` callable handed to :func:`autoconfig_cache_register_stores`."""

    def __call__(
        self,
        schemes: Sequence[str],
        factory: StoreFactory,
        *,
        description: str = "",
    ) -> None: ...


# ---------------------------------------------------------------------------------------------
# Discovery (global plugin manager)
# ---------------------------------------------------------------------------------------------


@hookspec
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register store factories under URL schemes.

    Called once, when the global plugin manager is first used. Call
    ``register(["redis", "rediss"], factory)`` for each family of schemes the plugin serves;
    ``factory(spec)`` receives a :class:`~autoconfig_cache.store_spec.StoreSpec` and returns a
    store plugin object implementing the ``cache_*`` store hooks. A scheme registered twice is
    an error reported by ``autoconfig-cache plugins``; the first registration wins.

    :param register: the callable to register with.
    :return: nothing; the return value is ignored.
    """


@hookspec
def autoconfig_cache_environment_store() -> EnvironmentStore | None:
    """Declare the Relay-style settings that select and configure this plugin's store.

    Called on the global plugin manager when the configuration is loaded. Return an
    :class:`~autoconfig_cache.environment.EnvironmentStore`: the switch that turns the store on
    (e.g. ``USE_REDIS``, TOML ``redis.enabled``), the other settings it reads (``REDIS_HOST``,
    ...), and a ``build`` function that turns their values into a store URL and options. The
    core reads the values (environment over TOML file), refuses two stores at once, and calls
    ``build`` only when the switch is on and ``AUTO_CONFIG_CACHE_KEY`` is set; so the core names
    no backend's settings, and a third-party store takes part like a built-in one.

    :return: the declaration, or ``None`` for a plugin without such settings.
    """


@hookspec
def autoconfig_cache_noisy_loggers() -> Sequence[str] | None:
    """Name loggers of the plugin's libraries that log routine things at INFO (e.g.
    ``pynamodb``, ``botocore``): the command line sets them to WARNING unless the log level
    asks for less. Called when logging is set up, before any store is opened.

    :return: logger names, or ``None``.
    """


@hookspec
def autoconfig_cache_sink_types() -> Mapping[str, SinkFactory] | None:
    """Register sink types: where AutoConfig changes go besides the cache.

    Called once, on the global plugin manager, the first time sinks are built or listed. Return
    ``{scheme: factory}``; a spec in ``AUTO_CONFIG_CACHE_SINKS`` (or ``run --sink``) whose
    scheme is ``scheme`` is built by ``factory(spec)``, which receives a
    :class:`~autoconfig_cache.sinks.spec.SinkSpec` and returns a
    :class:`~autoconfig_cache.sinks.Sink`. The factory's docstring's first line is its
    description in ``autoconfig-cache plugins``. A scheme registered twice is reported by
    ``autoconfig-cache plugins``; the first registration wins. The built-in ``output-file`` /
    ``file`` and ``exec`` sinks are registered through this hook too (``docs/sinks.md``).

    :return: the sink types, or ``None``.
    """


# ---------------------------------------------------------------------------------------------
# Store operations (the cache's own plugin manager; exactly one store is registered)
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def cache_get_all() -> Awaitable[list[StoredRecord]] | None:
    """Return every record under the store's cache key.

    Called at start-up (racing the stream) and by the CLI. An empty store returns ``[]``.
    ``version`` is 0 for records whose version the store does not know (e.g. written by a Relay
    Proxy, which stores no separate version). One record per field. A store that declares the
    optional capability ``keeps_tombstones_apart = True`` returns the tombstones it holds apart
    with :attr:`StoredRecord.deleted` set, and the field, version and blob they were written
    with; any other store returns them like any record (the flag may then be ``False``: the
    core recognises a tombstone from its decrypted envelope). Whatever is in a record's place
    but is not one (a value of the wrong type) is returned as
    :func:`~autoconfig_cache.storebase.foreign_record`, never raised for nor dropped: the core
    reports it.

    :return: an awaitable of the records; ``None`` only from a plugin that is not a store.
    :raises StoreError: (or a subclass) when the store cannot be read.
    """


@hookspec(firstresult=True)
def cache_get_versions() -> Awaitable[Mapping[str, int]] | None:
    """Optional: every field under the store's cache key and its stored version, without the
    blobs.

    Called by each running instance's store audit (``AUTO_CONFIG_CACHE_AUDIT_INTERVAL``), which
    compares it with what the instance holds in memory and reads the full records only when they
    differ. A store that does not implement it is audited with :func:`cache_get_all`, which
    reads every blob; implement it when reading versions alone is cheaper (a Redis hash of
    versions, a column, a projection).

    The answer must agree with :func:`cache_get_all` at the same moment: the same fields (items
    and tombstones alike), each with the version ``cache_get_all`` returns for it (0 for a
    record whose version the store does not know; a damaged version as it is). For a record
    ``cache_get_all`` returns as :func:`~autoconfig_cache.storebase.foreign_record`, only the
    field must be there: telling such a record apart may need its blob, which this hook need
    not read. The conformance kit checks this agreement.

    :return: an awaitable of a mapping field -> stored version (as
        :func:`autoconfig_cache.records.store_version` encodes it); ``None`` when no store
        implements the hook (the core then falls back to ``cache_get_all``).
    :raises StoreError: (or a subclass) when the store cannot be read.
    """


@hookspec(firstresult=True)
def cache_set_all(
    records: Sequence[StoredRecord], rewrite_unchanged: bool
) -> Awaitable[None] | None:
    """Make the store hold exactly ``records``, atomically where the backend allows.

    Called after a stream ``put``. For each record: write it when the field is absent or holds a
    lower version; leave a field holding the same or a higher version alone (it is the same item,
    or a newer one from another writer) unless ``rewrite_unchanged`` is true, in which case an
    equal version is rewritten too (used by key rotation). Delete every field not in
    ``records``. Only changed fields should cost writes: this is O(changed), not a full rewrite.

    Tombstones are records with :attr:`StoredRecord.deleted` set. A store that declares
    ``keeps_tombstones_apart = True`` writes them where a Relay Proxy reading the store does not
    see them, removes those missing from ``records`` like any field, and lets an item and a
    tombstone of one field replace each other under the same version rules; any other store may
    ignore the flag.

    A stored version that is not an integer in ``0..MAX_STORED_VERSION`` is damaged: replace it
    as if unknown. A record the store cannot hold (a backend limit, a version outside that
    range) is refused: write the others, leave that field as it is, then raise
    :class:`~autoconfig_cache.errors.PartialWriteError` with it in ``refused``.

    Read ``blob`` only of the records you write: the core encodes and encrypts a record's blob
    when it is first read (:class:`~autoconfig_cache.pending.PendingRecord`), so reading every
    blob costs an encryption each, and a put identical to what is stored would cost as many
    encryptions as items instead of none. Decide what to write from ``field``, ``version`` and
    ``deleted`` and the stored versions, then read the blobs of those records, before changing
    anything if the write is not one transaction: reading a blob may raise (the core found the
    item cannot be encoded), and the core then writes the snapshot again without that item.
    The conformance kit checks this (``test_set_all_reads_no_blob_when_nothing_changed``).

    :param records: the full snapshot, one record per field (no duplicates).
    :param rewrite_unchanged: rewrite records whose stored version is equal (every blob is then
        read, and so encrypted).
    :raises PartialWriteError: naming the records refused (``refused``) and the fields that could
        not be written for another reason (``failed_fields``), once the rest is written.
    :raises StoreError: when the store cannot be written.
    """


@hookspec(firstresult=True)
def cache_upsert(record: StoredRecord) -> Awaitable[bool] | None:
    """Write one record unless the store already holds the same or a higher version.

    Called after a stream ``patch`` or ``delete`` the core accepted (a delete is a tombstone
    record, see :func:`autoconfig_cache.records.store_version`). The check and the write are one atomic
    step on the server (Lua, a transaction or a conditional write), so that many processes can
    share one cache key and no field ever goes back to an older version.

    A tombstone has :attr:`StoredRecord.deleted` set. A store that declares
    ``keeps_tombstones_apart = True`` holds it where a Relay Proxy does not read it, in place of
    the field's item (one record per field), and compares it with the stored item or tombstone
    of that field as with any record: a lower or equal version is refused, a higher one
    replaces either kind. Any other store may ignore the flag.

    :return: an awaitable of ``True`` if written, ``False`` if a same or newer version was there.
    :raises PartialWriteError: with the record in ``refused`` when the store cannot hold it.
    :raises StoreError: when the store cannot be written.
    """


@hookspec(firstresult=True)
def cache_delete(field: str, version: int) -> Awaitable[bool] | None:
    """Delete ``field`` if the store holds it at a version lower than ``version``.

    Called to remove a record outright (``AutoConfigCache.purge``). Stream deletes do not come
    here: the core writes them as tombstone records through :func:`cache_upsert`, which the
    store guards like any other record. An absent field is not an error.

    :return: an awaitable of ``True`` if a record was deleted, else ``False``.
    :raises StoreError: when the store cannot be written.
    """


@hookspec(firstresult=True)
def cache_clear() -> Awaitable[None] | None:
    """Delete every record under the store's cache key (``autoconfig-cache cache clear``)."""


@hookspec(firstresult=True)
def cache_create_storage() -> Awaitable[bool | None] | None:
    """Create the backing storage (e.g. a DynamoDB table) now rather than on first use.

    Idempotent: existing storage and its records are kept. A store with nothing to create
    returns ``False`` (what :class:`~autoconfig_cache.plugin.StoreBase` does) or does not
    implement the hook; the CLI then says there is nothing to create.

    :return: an awaitable, once the storage exists, of ``True`` if this store created it (so
        that ``cache create-table`` says "created"), ``None`` if it was already there ("already
        exists"); of ``False`` if the store has nothing to create. ``None`` itself only when no
        store implements the hook.
    """


@hookspec(firstresult=True)
def cache_close() -> Awaitable[None] | None:
    """Cancel operations in flight and release connections. Called once by the core.

    After it returns, the store's other hooks raise :class:`StoreClosedError`.
    """


# ---------------------------------------------------------------------------------------------
# Encryption (the cache's plugin manager; the built-in AES-256-GCM plugin answers last)
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def cache_encrypt(plaintext: bytes, context: EncryptionContext) -> bytes | None:
    """Encrypt one item envelope.

    Called when a record's blob is first read: for a ``set_all``, by the store, for the
    records it writes only, possibly on the store's worker thread (the SQLite store's), so an
    implementation must be thread-safe and must not use the event loop.

    :param plaintext: the JSON envelope ``{"kind","modelVersion","data"}``.
    :param context: the cache key, field, item version and storage format the blob is for.
    :return: the blob to store, or ``None`` to let the next plugin (finally the built-in
        AES-256-GCM codec) handle it.
    """


@hookspec(firstresult=True)
def cache_decrypt(blob: bytes, context: EncryptionContext) -> bytes | None:
    """Decrypt one stored blob back to its envelope.

    :return: the plaintext, or ``None`` if this plugin did not produce the blob.
    :raises DecryptionError: when the blob is this plugin's but fails authentication.
    """


# ---------------------------------------------------------------------------------------------
# Model-version migration
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def cache_migrate_item(kind: str, model_version: int, data: Any) -> Any | None:
    """Upgrade an item's envelope ``data`` by exactly one model version.

    The core calls this repeatedly until the item reaches the current model version. Model
    versions are the Relay Proxy's (1 and 2: ``data`` is the item JSON). Model version 0 is
    internal, never stored: the ``v2``-format data of autoconfig-cache 0.1,
    ``{"item": <item JSON>, "cachedAt": <ms>}``, which the built-in step 0 → 1 unwraps.

    :param kind: ``environment`` or ``filter``.
    :param model_version: the version ``data`` is in now.
    :param data: the envelope's ``data`` at ``model_version``.
    :return: ``data`` at ``model_version + 1``, or ``None`` if this plugin does not know the
        step. An item no plugin can migrate is skipped with a warning.
    """


# ---------------------------------------------------------------------------------------------
# Observation (1:N, no return value)
# ---------------------------------------------------------------------------------------------


@hookspec
def autoconfig_cache_on_load(report: LoadReport) -> None:
    """Called after every cache load with what was loaded and what was skipped, and why."""


@hookspec
def autoconfig_cache_on_write_error(operation: str, error: BaseException) -> None:
    """Called when a store write fails (``set_all``, ``upsert``, ``delete``)."""

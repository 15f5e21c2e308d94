"""Delivery records in the store: a restart, or another instance, never delivers a change twice.

:class:`StoreDeliveryLedger` is the :class:`~.ledger.DeliveryLedger` of an instance with a
store. It keeps, per cache key, per sink and per environment, one record whose store version
says what was delivered and who is delivering (the arithmetic is in :mod:`.claims`):

* before a delivery it *claims* the change with a version-guarded upsert; the instance whose
  upsert wrote delivers, the others wait;
* after the delivery it marks the change delivered; an instance that finds that mark (another
  instance's, or its own before a restart) skips the change;
* an instance that sees the same claim for longer than the claim timeout (the claimant died
  mid-delivery, or gave up) takes it over with the next attempt number.

Where the records live: the same store, under the derived cache key
:func:`deliveries_cache_key` (``<cache key>:deliveries``). Every built-in store keeps each cache
key in its own namespace — Redis: the hash named by the cache key (and its companion hashes);
DynamoDB: the partition ``namespace = cache key``; SQLite: the ``cache_key`` column — and a Relay
Proxy reads only its own cache key's namespace, so it never sees these records, and the cache's
own writes (a ``put`` replacing every record of the cache key) never touch them.

A claim's age is measured on the clock of the instance that waits, from when it first saw that
claim: clocks of different hosts never need to agree. The record's content (instance id,
time, state) is for people reading the store; no decision reads it. It holds no secret
(environment ids are client-side ids, public), yet it is encrypted like every record of the
cache, with the cache's keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from ..cache import AutoConfigCache
from ..records import StoredRecord
from .change import Change, ChangeKind
from .claims import (
    MAX_ATTEMPT,
    MAX_LEDGER_VERSION,
    Phase,
    SlotState,
    claim_version,
    delivered_version,
    phase_of,
    read_slot,
    recordable,
)

logger = logging.getLogger(__name__)

#: Appended to the cache key to name where delivery records live.
DELIVERIES_SUFFIX = ":deliveries"


def deliveries_cache_key(cache_key: str) -> str:
    """The cache key under which the deliveries of the cache ``cache_key`` are recorded."""
    return cache_key.strip() + DELIVERIES_SUFFIX


def record_field(sink: str, env_id: str) -> str:
    """The field of the record of ``sink``'s deliveries for environment ``env_id``."""
    return f"{sink}/env:{env_id}"


def default_claim_timeout(sink_timeout: float, max_attempts: int) -> float:
    """How long a claim may stand before another instance takes it over, when not configured:
    twice the longest a delivery can take without its backoff waits (every attempt timing
    out), so that a slow but live delivery is not taken over."""
    return 2.0 * sink_timeout * max_attempts


def _instance_id() -> str:
    """Who claims: host, process and a random part (a restarted process on the same host and
    pid is another instance)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class StoreDeliveryLedger:
    """Records deliveries under :func:`deliveries_cache_key` in the store of ``cache``.

    :param cache: a cache opened on the deliveries cache key (not the cache of the
        AutoConfig data: :meth:`AutoConfigCache.get_all` is never called on it). The ledger
        closes it in :meth:`close`.
    :param claim_timeout: seconds a claim may stand unchanged before this instance takes it
        over.
    :param poll_interval: seconds between two reads of the records while a claim of another
        instance stands (default: a tenth of the claim timeout, between 0.05 and 1 s). All
        waiting changes share each read.
    :param instance_id: this instance, as written in the records (default: host, pid, random).
    :param clock: a monotonic clock (for tests).
    :param sleep: how to wait between reads (for tests).
    """

    def __init__(
        self,
        cache: AutoConfigCache,
        *,
        claim_timeout: float,
        poll_interval: float | None = None,
        instance_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not claim_timeout > 0:
            raise ValueError(f"claim_timeout must be more than 0 seconds, got {claim_timeout}")
        self.cache = cache
        self.claim_timeout = claim_timeout
        self.poll_interval = (
            poll_interval if poll_interval is not None else min(1.0, max(0.05, claim_timeout / 10))
        )
        self.instance_id = instance_id or _instance_id()
        self._clock = clock
        self._sleep = sleep
        self._read_lock = asyncio.Lock()
        self._last_read_started: float | None = None
        self._last_versions: Mapping[str, int] = {}
        self._warned_unrecordable = False

    # ---- the DeliveryLedger protocol -----------------------------------------------------------

    async def should_deliver(self, sink: str, change: Change) -> bool:
        """Claim ``change`` for ``sink``: ``True`` when this instance is to deliver it,
        ``False`` when it was delivered (or superseded). Waits while another instance's claim
        stands, and takes it over after the claim timeout."""
        if change.env is None or change.kind is ChangeKind.INITIALIZED:
            return True  # initialized is never claimed: every instance's sinks get it
        version = change.env.version
        if not recordable(version):
            self._warn_unrecordable(change)
            return True
        phase = phase_of(change.kind)
        field = record_field(sink, change.env.env_id)
        attempt: int | None = 0
        seen: tuple[int, float] | None = None  # (claim's stored version, first seen at)
        while True:
            if attempt is not None:
                if await self._claim(field, change, phase, attempt):
                    if attempt > 0:
                        logger.warning(
                            "sink %s: took over %s (claim attempt %d): the previous claim "
                            "stood for more than %g s",
                            sink,
                            change.describe(),
                            attempt,
                            self.claim_timeout,
                        )
                    return True
                attempt = None
            stored = (await self._versions()).get(field)
            slot = read_slot(stored, version, phase)
            if slot.settled:
                logger.debug("sink %s: %s is %s", sink, change.describe(), slot.state.value)
                return False
            if slot.state is SlotState.OPEN:
                attempt = 0  # the record went away, or is older: claim anew
                await self._sleep(self.poll_interval)
                continue
            assert stored is not None and slot.attempt is not None  # CLAIMED
            now = self._clock()
            if seen is None or seen[0] != stored:
                seen = (stored, now)
            elif now - seen[1] >= self.claim_timeout:
                if slot.attempt >= MAX_ATTEMPT:
                    # No claim is left to take: deliver rather than lose the change.
                    logger.error(
                        "sink %s: %s was claimed %d times and never delivered; delivering it "
                        "without a claim",
                        sink,
                        change.describe(),
                        MAX_ATTEMPT + 1,
                    )
                    return True
                attempt = slot.attempt + 1
                continue
            await self._sleep(self.poll_interval)

    async def delivered(self, sink: str, change: Change) -> None:
        """Mark ``change`` delivered for ``sink``."""
        if change.env is None or change.kind is ChangeKind.INITIALIZED:
            return
        if not recordable(change.env.version):
            return
        phase = phase_of(change.kind)
        version = delivered_version(change.env.version, phase)
        await self._upsert(record_field(sink, change.env.env_id), version, change, "delivered")

    async def abandoned(self, sink: str, change: Change) -> None:
        """Nothing is written: the claim stands until it times out, and another instance (or
        this one's next start) then takes the change over."""
        logger.info(
            "sink %s: %s abandoned by this instance; another instance (or the next start) "
            "takes it over after the claim timeout (%g s)",
            sink,
            change.describe(),
            self.claim_timeout,
        )

    async def close(self) -> None:
        """Close the store of the records."""
        await self.cache.close()

    # ---- the store -----------------------------------------------------------------------------

    async def _claim(self, field: str, change: Change, phase: Phase, attempt: int) -> bool:
        assert change.env is not None
        version = claim_version(change.env.version, phase, attempt)
        return await self._upsert(field, version, change, "claimed", attempt=attempt)

    async def _upsert(
        self, field: str, version: int, change: Change, state: str, *, attempt: int | None = None
    ) -> bool:
        payload = {
            "instance": self.instance_id,
            "state": state,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "kind": str(change.kind),
            "envVersion": change.version,
            "attempt": attempt,
        }
        plaintext = json.dumps(payload, sort_keys=True).encode()
        blob: bytes = self.cache.hook.cache_encrypt(
            plaintext=plaintext, context=self.cache.codec.context(field, version)
        )
        awaitable = self.cache.hook.cache_upsert(record=StoredRecord(field, version, blob))
        written: bool = await awaitable
        return written

    async def _versions(self) -> Mapping[str, int]:
        """Every record's stored version, from a read that started after this call: concurrent
        callers share one read (many environments may wait on claims at once)."""
        requested = self._clock()
        async with self._read_lock:
            if self._last_read_started is not None and self._last_read_started >= requested:
                return self._last_versions
            started = self._clock()
            versions = await self._read_versions()
            self._last_read_started, self._last_versions = started, versions
            return versions

    async def _read_versions(self) -> Mapping[str, int]:
        awaitable = self.cache.hook.cache_get_versions()
        if awaitable is not None:
            versions: Mapping[str, int] = await awaitable
            return versions
        records = await self.cache.get_records()
        return {record.field: record.version for record in records if record.problem is None}

    def _warn_unrecordable(self, change: Change) -> None:
        if not self._warned_unrecordable:
            self._warned_unrecordable = True
            logger.warning(
                "%s: versions above %d cannot be recorded as delivered; such changes are "
                "delivered by every instance, at every start (as without a store)",
                change.describe(),
                MAX_LEDGER_VERSION,
            )

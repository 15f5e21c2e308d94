"""Delivering changes to sinks: in order per environment, concurrently across environments.

The stream manager must never wait for a sink (a hook that hangs would stall the stream and the
cache), so :meth:`SinkDispatcher.submit` only enqueues. Behind it, each sink has:

* an inbox, read in order by one coordinator task, which hands each change to the lane of its
  environment: one queue and one worker per environment with work, so the changes of one
  environment are delivered one at a time, in order, and a slow delivery for one environment
  never holds back another;
* a bound on deliveries running at once (a semaphore, per sink, so a stuck hook never delays
  the output file); a delivery waiting for a retry does not hold a place;
* ``initialized`` as a barrier: the coordinator waits until every lane is empty, delivers it,
  and only then reads on, so it comes after every change before it and before every change
  after it (a sink may replace its whole state on ``initialized``).

Each attempt has a timeout; a failed or timed-out attempt is logged (masked, escaped) and
retried with backoff and jitter (:class:`~.retry.RetryPolicy`); after the last attempt the change
is dropped, with an error, and counted. A sink that is not ``per_instance`` is delivered only the
changes the :class:`~.ledger.DeliveryLedger` says are still due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from ..logsetup import escape_control
from .base import PermanentDeliveryError, Sink, is_per_instance
from .change import Change, ChangeKind
from .ledger import DeliverAllLedger, DeliveryLedger
from .masking import SecretMasker
from .retry import RetryPolicy
from .status import DispatcherStatus, SinkStatus

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class DeliveryTimeoutError(Exception):
    """A delivery did not finish within the dispatcher's timeout (it was cancelled)."""


class SinkDispatcher:
    """Delivers every submitted change to every sink.

    Use it as an async context manager, or call :meth:`start` (on the event loop) and
    :meth:`close`. Hand :meth:`submit` to a :class:`~.tracker.ChangeTracker` as its callback.

    :param sinks: the sinks; their names must differ.
    :param concurrency: deliveries running at once, per sink.
    :param timeout: seconds an attempt may take before it is cancelled (and counts as failed).
    :param retry: attempts and backoff.
    :param ledger: which changes are still due, for sinks that are not ``per_instance``
        (default: all of them, as ldactl).
    :param close_timeout: seconds :meth:`close` waits for pending deliveries.
    :param sleep: how to wait between attempts (for tests: record the delays).
    :param rng: the jitter's random source (for tests: a seeded one).
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        concurrency: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        ledger: DeliveryLedger | None = None,
        close_timeout: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        names = [sink.name for sink in sinks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"sink names must differ (they key the delivery records): {', '.join(duplicates)}"
            )
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, got {timeout}")
        self._masker = SecretMasker()
        settings = _Settings(
            timeout=timeout,
            retry=retry or RetryPolicy(),
            ledger=ledger or DeliverAllLedger(),
            sleep=sleep,
            rng=rng or random.Random(),
            masker=self._masker,
        )
        self._runners = [_SinkRunner(sink, concurrency, settings) for sink in sinks]
        self._close_timeout = close_timeout
        self._started = False
        self._closed = False

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The sinks, in the order given."""
        return tuple(runner.sink for runner in self._runners)

    def start(self) -> None:
        """Start delivering (on the running event loop). Idempotent; :meth:`submit` calls it."""
        if self._started or self._closed:
            return
        self._started = True
        for runner in self._runners:
            runner.start()

    def submit(self, change: Change) -> None:
        """Queue ``change`` for every sink; returns at once (never blocks, never raises for a
        sink's sake). Changes submitted after :meth:`close` are dropped with a warning."""
        if self._closed:
            logger.warning(
                "sinks: %s arrived after shutdown began; not delivered", change.describe()
            )
            return
        self.start()
        self._masker.learn(change.involved_environments())
        for runner in self._runners:
            runner.enqueue(change)

    def status(self) -> DispatcherStatus:
        """The counters of every sink."""
        return DispatcherStatus(tuple(runner.status() for runner in self._runners))

    async def wait_idle(self) -> None:
        """Wait until every submitted change is finished (delivered, skipped or dropped) for
        every sink (wrap in ``asyncio.timeout`` to bound it)."""
        while not all(runner.idle.is_set() for runner in self._runners):
            for runner in self._runners:
                await runner.idle.wait()

    async def close(self) -> None:
        """Stop accepting changes, give pending deliveries up to ``close_timeout`` seconds,
        cancel what is left (a hook still running is stopped), then close every sink.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_idle(), self._close_timeout)
        for runner in self._runners:
            await runner.stop()
        for runner in self._runners:
            try:
                await runner.sink.close()
            except Exception as exc:
                logger.error(
                    "sink %s: close failed: %s",
                    runner.name,
                    escape_control(self._masker.mask(_error_text(exc))),
                )

    async def __aenter__(self) -> SinkDispatcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class _Settings:
    """What every sink's runner shares."""

    def __init__(
        self,
        *,
        timeout: float,
        retry: RetryPolicy,
        ledger: DeliveryLedger,
        sleep: Sleep,
        rng: random.Random,
        masker: SecretMasker,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self.ledger = ledger
        self.sleep = sleep
        self.rng = rng
        self.masker = masker


class _SinkRunner:
    """One sink's inbox, lanes and counters."""

    def __init__(self, sink: Sink, concurrency: int, settings: _Settings) -> None:
        self.sink = sink
        self.name = sink.name
        self._settings = settings
        self._use_ledger = not is_per_instance(sink)
        self._inbox: asyncio.Queue[Change] = asyncio.Queue()
        self._lanes: dict[str, deque[Change]] = {}
        self._lane_tasks: dict[str, asyncio.Task[None]] = {}
        self._no_lanes = asyncio.Event()
        self._no_lanes.set()
        self._slots = asyncio.Semaphore(concurrency)
        self._coordinator: asyncio.Task[None] | None = None
        #: Set while nothing is pending.
        self.idle = asyncio.Event()
        self.idle.set()
        self._delivered = 0
        self._failed_attempts = 0
        self._dropped = 0
        self._skipped = 0
        self._pending = 0
        self._in_flight = 0
        self._last_error: str | None = None

    def start(self) -> None:
        self._coordinator = asyncio.create_task(self._coordinate(), name=f"sink-{self.name}")

    def enqueue(self, change: Change) -> None:
        self._pending += 1
        self.idle.clear()
        self._inbox.put_nowait(change)

    def status(self) -> SinkStatus:
        return SinkStatus(
            name=self.name,
            delivered=self._delivered,
            failed_attempts=self._failed_attempts,
            dropped=self._dropped,
            skipped=self._skipped,
            pending=self._pending,
            in_flight=self._in_flight,
            last_error=self._last_error,
        )

    async def stop(self) -> None:
        """Cancel the coordinator and every lane; report what was left undelivered."""
        left = self._pending
        tasks = [*self._lane_tasks.values()]
        if self._coordinator is not None:
            tasks.append(self._coordinator)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if left:
            logger.warning(
                "sink %s: %d change(s) not delivered at shutdown (the next start delivers the "
                "configuration again)",
                self.name,
                left,
            )

    # ---- ordering ------------------------------------------------------------------------------

    async def _coordinate(self) -> None:
        while True:
            change = await self._inbox.get()
            if change.kind is ChangeKind.INITIALIZED:
                await self._no_lanes.wait()  # the barrier: every earlier change is finished
                await self._deliver(change)
                continue
            env_id = change.env_id
            assert env_id is not None  # every other kind carries an environment
            lane = self._lanes.get(env_id)
            if lane is None:
                lane = self._lanes[env_id] = deque()
                self._no_lanes.clear()
                self._lane_tasks[env_id] = asyncio.create_task(self._drain(env_id, lane))
            lane.append(change)

    async def _drain(self, env_id: str, lane: deque[Change]) -> None:
        try:
            while lane:
                await self._deliver(lane[0])
                lane.popleft()
        finally:
            # No await between the empty check and here: the coordinator cannot append to a
            # lane that is being removed.
            self._lanes.pop(env_id, None)
            self._lane_tasks.pop(env_id, None)
            if not self._lanes:
                self._no_lanes.set()

    # ---- one change ----------------------------------------------------------------------------

    async def _deliver(self, change: Change) -> None:
        try:
            if self._use_ledger and not await self._still_due(change):
                self._skipped += 1
                logger.debug("sink %s: %s already delivered; skipped", self.name, change.describe())
                return
            await self._attempts(change)
        finally:
            self._pending -= 1
            if self._pending == 0:
                self.idle.set()

    async def _attempts(self, change: Change) -> None:
        settings = self._settings
        policy = settings.retry
        failures = 0
        while True:
            try:
                await self._attempt(change)
            except PermanentDeliveryError as exc:
                await self._drop(change, exc, "it can never be delivered")
                return
            except Exception as exc:
                failures += 1
                self._failed_attempts += 1
                if failures >= policy.max_attempts:
                    await self._drop(
                        change,
                        exc,
                        f"after {failures} failed attempt(s); the environment's next changes "
                        "go ahead",
                    )
                    return
                delay = policy.delay(failures, settings.rng)
                logger.warning(
                    "sink %s: %s failed (attempt %d of %d): %s; retrying in %.1f s",
                    self.name,
                    change.describe(),
                    failures,
                    policy.max_attempts,
                    self._note_error(exc),
                    delay,
                )
                await settings.sleep(delay)
                continue
            self._delivered += 1
            await self._tell_ledger(settings.ledger.delivered, change)
            return

    async def _attempt(self, change: Change) -> None:
        timeout = self._settings.timeout
        async with self._slots:
            self._in_flight += 1
            try:
                async with asyncio.timeout(timeout) as scope:
                    await self.sink.deliver(change)
            except TimeoutError:
                if scope.expired():
                    raise DeliveryTimeoutError(
                        f"did not finish within {timeout:g} s; it was stopped"
                    ) from None
                raise
            finally:
                self._in_flight -= 1

    async def _drop(self, change: Change, exc: BaseException, why: str) -> None:
        self._dropped += 1
        logger.error(
            "sink %s: dropped %s %s: %s", self.name, change.describe(), why, self._note_error(exc)
        )
        await self._tell_ledger(self._settings.ledger.abandoned, change)

    def _masked(self, exc: BaseException) -> str:
        return escape_control(self._settings.masker.mask(_error_text(exc)))

    def _note_error(self, exc: BaseException) -> str:
        """The error's text, masked and escaped (kept as ``last_error``); its traceback, masked,
        at DEBUG (a third-party sink's bug needs the line it failed on)."""
        masker = self._settings.masker
        text = self._masked(exc)
        self._last_error = text
        if logger.isEnabledFor(logging.DEBUG) and not isinstance(
            exc, DeliveryTimeoutError | PermanentDeliveryError
        ):
            logger.debug(
                "sink %s: traceback of the failure:\n%s",
                self.name,
                masker.mask("".join(traceback.format_exception(exc))),
            )
        return text

    # ---- ledger --------------------------------------------------------------------------------

    async def _still_due(self, change: Change) -> bool:
        try:
            return await self._settings.ledger.should_deliver(self.name, change)
        except Exception as exc:
            logger.warning(
                "sink %s: the delivery ledger failed (%s); delivering %s anyway",
                self.name,
                self._masked(exc),
                change.describe(),
            )
            return True

    async def _tell_ledger(
        self, method: Callable[[str, Change], Awaitable[None]], change: Change
    ) -> None:
        if not self._use_ledger:
            return
        try:
            await method(self.name, change)
        except Exception as exc:
            logger.warning(
                "sink %s: the delivery ledger could not record %s: %s",
                self.name,
                change.describe(),
                self._masked(exc),
            )


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name

"""Small helpers shared by the DynamoDB tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from autoconfig_cache.records import StoredRecord
from autoconfig_cache_dynamodb import DynamoDBStore


class UncheckedStore(DynamoDBStore):
    """The store without its own limit checks: what DynamoDB itself then answers."""

    def _refusal(self, record: StoredRecord) -> str | None:
        return None

    def _key_refusal(self, record: StoredRecord) -> str | None:
        return None  # the checks set_all makes before it reads a blob


def record(field: str, version: int, size: int = 64) -> StoredRecord:
    """A record whose blob is random bytes (a store must treat blobs as opaque)."""
    return StoredRecord(field=field, version=version, blob=os.urandom(size))


def as_dict(records: list[StoredRecord]) -> dict[str, tuple[int, bytes]]:
    """Records keyed by field, for order-independent comparison."""
    return {r.field: (r.version, r.blob) for r in records}


class DispatchRecorder:
    """Records every DynamoDB request a store sends, by wrapping its PynamoDB connection.

    The requests still go to the real server; ``intercept`` may rewrite a request and its
    response (used to inject UnprocessedItems).
    """

    def __init__(
        self,
        store: DynamoDBStore,
        intercept: Callable[
            [Callable[[str, dict[str, Any]], dict[str, Any]], str, dict[str, Any]], dict[str, Any]
        ]
        | None = None,
    ) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        connection = store.connection
        original = connection.dispatch

        def dispatch(operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.calls.append((operation, kwargs))
            if intercept is not None:
                return intercept(original, operation, kwargs)
            return original(operation, kwargs)

        connection.dispatch = dispatch  # type: ignore[method-assign]

    def count(self, operation: str) -> int:
        """How many requests of ``operation`` were sent."""
        return sum(1 for name, _ in self.calls if name == operation)

    def write_requests(self) -> int:
        """Requests that write: PutItem, DeleteItem, BatchWriteItem, TransactWriteItems."""
        return sum(
            1
            for name, _ in self.calls
            if name in ("PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
        )

    def items_written(self) -> int:
        """Items put or deleted (each costs at least one write unit)."""
        total = 0
        for name, kwargs in self.calls:
            if name in ("PutItem", "DeleteItem"):
                total += 1
            elif name == "BatchWriteItem":
                total += sum(len(requests) for requests in kwargs["RequestItems"].values())
        return total

    def reset(self) -> None:
        """Forget the requests recorded so far."""
        self.calls.clear()

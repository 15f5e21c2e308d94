"""A Relay Proxy (v8 SHA-256, v8 HKDF, v9) and this project share one DynamoDB partition.

The tests are :class:`tests.relay_interop_suite.RelayInteropSuite`; the Relay side is
:mod:`tests.relay_dialects`, which follows ld-relay's
``internal/autoconfigcache/dynamodb_store.go``: partition key ``namespace`` = the cache key, sort
key ``key`` = ``env:<envID>`` / ``filter:<filterID>``, binary attribute ``item`` = the blob; a
consistent Query to read (rows without a binary ``item`` skipped silently); a full write queries
the partition's keys, then BatchWriteItem puts every item and deletes every other row.
"""

from __future__ import annotations

import pytest

from tests.relay_dialects import DynamoDBRelayBackend
from tests.relay_interop_suite import RelayInteropSuite

from .conftest import TABLE, EmulatorServer


class TestRelayInteropDynamoDB(RelayInteropSuite):
    @pytest.fixture
    def store_settings(self, server: EmulatorServer, cache_key: str) -> dict[str, str]:
        # The Relay Proxy's own variables select the store (the region comes from AWS_REGION).
        return {
            "USE_DYNAMODB": "true",
            "DYNAMODB_TABLE": TABLE,
            "DYNAMODB_URL": server.endpoint,
            "AUTO_CONFIG_CACHE_KEY": cache_key,
        }

    @pytest.fixture
    def relay_backend(self, server: EmulatorServer, cache_key: str) -> DynamoDBRelayBackend:
        return DynamoDBRelayBackend(server.client(), TABLE, cache_key)

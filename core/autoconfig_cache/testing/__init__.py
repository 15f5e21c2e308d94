"""The conformance kit for store plugins (install with ``autoconfig-cache[testing]``).

::

    import pytest_asyncio
    from autoconfig_cache.testing import StoreConformance

    from my_store import MyStore


    class TestMyStore(StoreConformance):
        @pytest_asyncio.fixture  # an async fixture: plain @pytest.fixture fails in strict mode
        async def store(self):
            store = MyStore("conformance")  # a fresh, EMPTY store object
            yield store
            await store.cache_close()  # closing twice is harmless

It runs in pytest-asyncio's strict and auto modes alike (a test of the project runs this very
example). See ``docs/plugin-authors.md`` ("Testing your store with the conformance kit").
"""

from __future__ import annotations

from .conformance import StoreConformance, as_map, as_states, blob_for, record, tombstone
from .hooks import StoreHooks
from .services import require_executable, service_missing, services_required

__all__ = [
    "StoreConformance",
    "StoreHooks",
    "as_map",
    "as_states",
    "blob_for",
    "record",
    "require_executable",
    "service_missing",
    "services_required",
    "tombstone",
]

"""The conformance kit for store plugins (install with ``autoconfig-cache[testing]``).

::

    import pytest
    from autoconfig_cache.testing import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        async def store(self):
            store = MyStore(...)          # a fresh, EMPTY store object
            yield store
            await store.cache_close()     # closing twice is harmless

See ``docs/plugin-authors.md`` ("Testing your store with the conformance kit").
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

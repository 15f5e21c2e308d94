"""Choosing the delivery ledger of the service from the configuration (docs/sinks.md, "Outage,
restart and fleet").

* a store is configured and ``AUTO_CONFIG_CACHE_SINK_DELIVERY=once`` (the default): deliveries
  are recorded in the store (:class:`~autoconfig_cache.sinks.store_ledger.StoreDeliveryLedger`),
  so a restart or another instance on the cache key never delivers a change twice;
* no store, or ``always``: every change is delivered, and every start delivers the whole
  configuration again (:class:`~autoconfig_cache.sinks.ledger.DeliverAllLedger`), as ldactl.
"""

from __future__ import annotations

import logging

import attrs

from ..config import Config
from ..sinks.ledger import DeliverAllLedger, DeliveryLedger

logger = logging.getLogger(__name__)


def open_delivery_ledger(config: Config) -> DeliveryLedger:
    """The ledger ``config`` asks for. A :class:`StoreDeliveryLedger` opens its own cache
    object on the derived cache key (the store connects on first use, as the cache's does):
    close it with :func:`close_delivery_ledger`."""
    if not config.store_url or not config.cache_key:
        return DeliverAllLedger()
    if config.sink_delivery == "always":
        logger.info(
            "sinks: AUTO_CONFIG_CACHE_SINK_DELIVERY=always: every start delivers every "
            "environment again, and every instance delivers every change (as ldactl)"
        )
        return DeliverAllLedger()
    # Here, not at the top: a service without sinks never loads the store ledger's code.
    from ..sinks.store_ledger import (
        StoreDeliveryLedger,
        default_claim_timeout,
        deliveries_cache_key,
    )

    records_key = deliveries_cache_key(config.cache_key)
    claim_timeout = config.sink_claim_timeout or default_claim_timeout(
        config.sink_timeout, config.sink_max_attempts
    )
    ledger = StoreDeliveryLedger(
        attrs.evolve(config, cache_key=records_key).open_cache(), claim_timeout=claim_timeout
    )
    logger.info(
        "sinks: deliveries recorded in the store under cache key %s (claim timeout %g s)",
        records_key,
        claim_timeout,
    )
    return ledger


async def close_delivery_ledger(ledger: DeliveryLedger) -> None:
    """Release what ``ledger`` holds (the store connection of a
    :class:`~autoconfig_cache.sinks.store_ledger.StoreDeliveryLedger`)."""
    if isinstance(ledger, DeliverAllLedger):
        return  # holds nothing (and the store ledger's code need not be loaded to know it)
    from ..sinks.store_ledger import StoreDeliveryLedger

    if isinstance(ledger, StoreDeliveryLedger):
        await ledger.close()

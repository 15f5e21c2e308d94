"""The DynamoDB store plugin for autoconfig-cache (``dynamodb://TABLE?region=...``)."""

from .settings import DynamoDBSettings
from .store import MAX_ITEM_SIZE, DynamoDBStore, item_size

__all__ = ["MAX_ITEM_SIZE", "DynamoDBSettings", "DynamoDBStore", "item_size"]

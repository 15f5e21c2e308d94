"""Settings of the DynamoDB store, parsed from a :class:`~autoconfig_cache.store_spec.StoreSpec`.

URL form: ``dynamodb://TABLE?region=eu-west-1&endpoint=http://127.0.0.1:8000``. Every setting can
come from the URL query or from ``StoreSpec.options`` (options win). ``docs/stores/dynamodb.md``
lists them with their defaults.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.store_spec import StoreSpec, parse_flag

WriteMode = Literal["conditional", "batch"]
BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)

#: Every option this store understands (URL query parameters or ``StoreSpec.options``).
KNOWN_OPTIONS = frozenset(
    {
        "region",
        "endpoint",
        "connect_timeout",
        "read_timeout",
        "max_retry_attempts",
        "timeout",
        "unprocessed_retry_timeout",
        "base_backoff_ms",
        "max_backoff_ms",
        "create_table",
        "billing_mode",
        "read_capacity",
        "write_capacity",
        "write_mode",
        "write_concurrency",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)


@attrs.frozen
class DynamoDBSettings:
    """Everything the DynamoDB store needs to know, validated.

    :param table: the table name (the URL's host part).
    :param cache_key: the partition key value (``namespace`` attribute) this store reads and writes.
    :param region: AWS region; defaults to ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1.
    :param endpoint: endpoint URL (DynamoDB Local, moto, a VPC endpoint); ``None`` = AWS.
    :param connect_timeout: seconds to establish a connection (botocore ``connect_timeout``).
    :param read_timeout: seconds to wait for a response (botocore ``read_timeout``).
    :param max_retry_attempts: botocore retries after the first attempt (standard mode, with its
        own exponential backoff) for throttling and transient network errors.
    :param timeout: overall deadline in seconds of one store operation, whatever it does inside.
    :param unprocessed_retry_timeout: how long ``UnprocessedItems`` of a BatchWriteItem are retried.
    :param base_backoff_ms: first delay between ``UnprocessedItems`` retries (doubles, full jitter).
    :param max_backoff_ms: cap of that delay.
    :param create_table: create the table on first use when it is missing.
    :param billing_mode: billing mode of a table this store creates.
    :param read_capacity: read capacity units of a PROVISIONED table this store creates.
    :param write_capacity: write capacity units of a PROVISIONED table this store creates.
    :param write_mode: ``conditional`` (every changed item a version-guarded PutItem) or
        ``batch`` (BatchWriteItem in chunks of 25, guarded only against the state read first).
    :param write_concurrency: worker threads, i.e. requests in flight at once.
    """

    table: str
    cache_key: str
    region: str
    endpoint: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_retry_attempts: int = 2
    timeout: float = 30.0
    unprocessed_retry_timeout: float = 10.0
    base_backoff_ms: float = 50.0
    max_backoff_ms: float = 2000.0
    create_table: bool = False
    billing_mode: BillingMode = "PAY_PER_REQUEST"
    read_capacity: int = 5
    write_capacity: int = 5
    write_mode: WriteMode = "conditional"
    write_concurrency: int = 8
    aws_access_key_id: str | None = attrs.field(default=None, repr=False)
    aws_secret_access_key: str | None = attrs.field(default=None, repr=False)
    aws_session_token: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> DynamoDBSettings:
        """Parse and validate ``spec``.

        :raises ConfigurationError: naming the setting that is wrong and what it should be.
        """
        parts = urlsplit(spec.url)
        table = unquote(parts.netloc + parts.path).strip("/")
        if not table:
            raise ConfigurationError(
                f"DynamoDB store URL {spec.redacted_url!r} names no table; "
                "use dynamodb://TABLE?region=REGION"
            )
        if not spec.cache_key:
            raise ConfigurationError("the DynamoDB store needs a non-empty cache key")
        options = spec.query()
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            # A typo must not pass silently, but must not stop the process either.
            logger.warning(
                "DynamoDB store: unknown option(s) %s ignored; known options: %s",
                ", ".join(unknown),
                ", ".join(sorted(KNOWN_OPTIONS)),
            )
        region = (
            options.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        write_mode = options.get("write_mode", "conditional").lower()
        if write_mode not in ("conditional", "batch"):
            raise ConfigurationError(
                f"DynamoDB option write_mode={write_mode!r} is invalid; use conditional or batch"
            )
        billing = options.get("billing_mode", "PAY_PER_REQUEST").upper()
        if billing in ("ON_DEMAND", "ON-DEMAND"):
            billing = "PAY_PER_REQUEST"
        if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
            raise ConfigurationError(
                f"DynamoDB option billing_mode={billing!r} is invalid; "
                "use PAY_PER_REQUEST (on-demand) or PROVISIONED"
            )
        return cls(
            table=table,
            cache_key=spec.cache_key,
            region=region,
            endpoint=options.get("endpoint") or None,
            connect_timeout=_get(options, "connect_timeout", 2.0, _positive_float),
            read_timeout=_get(options, "read_timeout", 5.0, _positive_float),
            max_retry_attempts=_get(options, "max_retry_attempts", 2, _non_negative_int),
            timeout=_get(options, "timeout", 30.0, _positive_float),
            unprocessed_retry_timeout=_get(
                options, "unprocessed_retry_timeout", 10.0, _non_negative_float
            ),
            base_backoff_ms=_get(options, "base_backoff_ms", 50.0, _positive_float),
            max_backoff_ms=_get(options, "max_backoff_ms", 2000.0, _positive_float),
            create_table=_get(options, "create_table", False, _bool),
            billing_mode=billing,  # type: ignore[arg-type]  # validated just above
            read_capacity=_get(options, "read_capacity", 5, _positive_int),
            write_capacity=_get(options, "write_capacity", 5, _positive_int),
            write_mode=write_mode,  # type: ignore[arg-type]  # validated just above
            write_concurrency=_get(options, "write_concurrency", 8, _positive_int),
            aws_access_key_id=options.get("aws_access_key_id") or None,
            aws_secret_access_key=options.get("aws_secret_access_key") or None,
            aws_session_token=options.get("aws_session_token") or None,
        )


def _get(options: Mapping[str, str], name: str, default: _T, parse: Callable[[str], _T]) -> _T:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise ConfigurationError(f"DynamoDB option {name}={raw!r} is invalid: {exc}") from None


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("expected a number of seconds greater than 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("expected a number greater than or equal to 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("expected an integer of at least 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected an integer of at least 0")
    return value


def _bool(raw: str) -> bool:
    flag = parse_flag(raw) if raw.strip() else False  # an empty option means "off"
    if flag is None:
        raise ValueError("expected true or false")
    return flag

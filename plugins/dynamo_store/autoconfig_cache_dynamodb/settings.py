"""Settings of the DynamoDB store, parsed from a :class:`~autoconfig_cache.store_spec.StoreSpec`.

URL form: ``dynamodb://TABLE?region=eu-west-1&endpoint=http://127.0.0.1:8000``. Every setting can
come from the URL query or from ``StoreSpec.options`` (options win); they are declared once, in
:class:`DynamoDBOptions`, from which ``docs/stores/dynamodb.md`` shows a generated table.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.plugin import ConfigurationError, StoreSpec, option, parse_options

WriteMode = Literal["conditional", "batch"]
BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]


@attrs.frozen
class DynamoDBOptions:
    """The store's options (URL query parameters or ``StoreSpec.options``; options win).

    Declared once here: parsing, unknown-option warnings and the table of
    ``docs/stores/dynamodb.md`` come from these fields.
    """

    region: str = option("us-east-1", doc="AWS region.", env=("AWS_REGION", "AWS_DEFAULT_REGION"))
    endpoint: str | None = option(
        None,
        doc="Endpoint URL (DynamoDB Local, moto, a VPC endpoint).",
        shown_default="AWS",
    )
    connect_timeout: float = option(
        2.0,
        doc="Seconds to establish one connection (botocore `connect_timeout`).",
        positive=True,
    )
    read_timeout: float = option(
        5.0, doc="Seconds to wait for one response (botocore `read_timeout`).", positive=True
    )
    max_retry_attempts: int = option(
        2,
        doc="botocore retries after the first attempt, in its `standard` mode (exponential "
        "back-off with jitter) for throttling, 5xx and network errors.",
        minimum=0,
    )
    timeout: float = option(
        30.0,
        doc="Seconds. Deadline of one whole store operation (all pages, batches and retries). "
        "Nothing waits longer.",
        positive=True,
    )
    unprocessed_retry_timeout: float = option(
        10.0,
        doc="Seconds during which the `UnprocessedItems` of one BatchWriteItem are retried.",
        minimum=0,
    )
    base_backoff_ms: float = option(
        50.0,
        doc="First pause before retrying `UnprocessedItems`; doubles on each retry (full jitter).",
        positive=True,
    )
    max_backoff_ms: float = option(2000.0, doc="Cap of that pause.", positive=True)
    create_table: bool = option(
        False,
        doc="`true`: create the table on first use when it is missing (never from a read-only "
        "tool: `cache inspect`, `verify` or `export`).",
    )
    billing_mode: BillingMode = option(  # noqa: RUF009 - an attrs field, not a call default
        "PAY_PER_REQUEST",
        doc="Billing of a table this store creates: `PAY_PER_REQUEST` (on-demand, also "
        "written `ON_DEMAND`) or `PROVISIONED`.",
        choices=("PAY_PER_REQUEST", "PROVISIONED"),
        aliases={"ON_DEMAND": "PAY_PER_REQUEST", "ON-DEMAND": "PAY_PER_REQUEST"},
    )
    read_capacity: int = option(
        5, doc="Read capacity units of a `PROVISIONED` table this store creates.", minimum=1
    )
    write_capacity: int = option(
        5, doc="Write capacity units of a `PROVISIONED` table this store creates.", minimum=1
    )
    write_mode: WriteMode = option(  # noqa: RUF009 - an attrs field, not a call default
        "conditional",
        doc="How `set_all` writes: `conditional` (version-guarded PutItem/DeleteItem per changed "
        "item) or `batch` (BatchWriteItem, 25 per request). See [Write modes](#write-modes).",
        choices=("conditional", "batch"),
    )
    write_concurrency: int = option(
        8, doc="Worker threads, i.e. requests in flight at once for one store.", minimum=1
    )
    aws_access_key_id: str | None = option(
        None,
        doc="AWS access key id, when the default credential chain cannot be used.",
        secret=True,
        shown_default="credential chain",
    )
    aws_secret_access_key: str | None = option(
        None,
        doc="Its secret access key.",
        secret=True,
        shown_default="credential chain",
    )
    aws_session_token: str | None = option(
        None,
        doc="Session token of temporary credentials.",
        secret=True,
        shown_default="credential chain",
    )


@attrs.frozen
class DynamoDBSettings(DynamoDBOptions):
    """Everything the DynamoDB store needs to know, validated: the options of
    :class:`DynamoDBOptions` (documented there) plus the table and the cache key.

    :param table: the table name (the URL's host part).
    :param cache_key: the partition key value (``namespace`` attribute) this store reads and writes.
    """

    table: str = attrs.field(kw_only=True)
    cache_key: str = attrs.field(kw_only=True)

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
        options = parse_options(DynamoDBOptions, spec, store="DynamoDB")
        return cls(table=table, cache_key=spec.cache_key, **attrs.asdict(options, recurse=False))

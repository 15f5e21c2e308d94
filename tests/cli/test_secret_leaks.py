"""Secrets that reached logs by the side door: a store spec's repr, the AWS libraries' DEBUG logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from autoconfig_cache.plugins import get_registry
from autoconfig_cache.store_spec import StoreSpec, masked_options
from tests.cli.conftest import captured_service_log
from tests.secret_values import known_secret

PASSWORD = known_secret("hunter2-correct-horse")
SESSION_TOKEN = known_secret("IQoJb3JpZ2luX2VjEXAMPLETOKEN")


def test_store_spec_repr_masks_secret_options_and_keeps_the_others() -> None:
    spec = StoreSpec(
        f"redis://user:{PASSWORD}@localhost:6379/0",
        "prod",
        {
            "password": PASSWORD,
            "sentinel_password": PASSWORD,
            "aws_session_token": SESSION_TOKEN,
            "ssl_keyfile_password": PASSWORD,
            "tls": "true",
            "timeout": "5",
        },
    )
    text = repr(spec)
    assert PASSWORD not in text and SESSION_TOKEN not in text
    assert "'password': '****" + PASSWORD[-4:] + "'" in text
    assert "'tls': 'true'" in text and "'timeout': '5'" in text
    # The spec itself keeps the values: the store needs them.
    assert spec.options["password"] == PASSWORD


def test_masked_options_masks_by_name_whatever_the_case() -> None:
    masked = masked_options({"Secret_Access_Key": "AKIAEXAMPLEKEY123", "region": "eu-west-1"})
    assert masked == {"Secret_Access_Key": "****Y123", "region": "eu-west-1"}


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The service's plain log set-up at DEBUG, into a buffer; the logging state restored."""
    with captured_service_log("DEBUG") as buffer:
        yield buffer


def test_the_dynamodb_plugin_names_botocore_and_urllib3_as_noisy() -> None:
    noisy = get_registry().noisy_loggers()
    assert {"botocore", "urllib3", "pynamodb"} <= set(noisy)


def test_botocore_debug_lines_stay_out_of_a_debug_log(debug_log: io.StringIO) -> None:
    # What botocore logs at DEBUG for every request: the signed headers.
    logging.getLogger("botocore.endpoint").debug("headers: X-Amz-Security-Token=%s", SESSION_TOKEN)
    logging.getLogger("urllib3.connectionpool").debug("GET /?token=%s", SESSION_TOKEN)
    logging.getLogger("autoconfig_cache.test").debug("our own debug line")
    text = debug_log.getvalue()
    assert SESSION_TOKEN not in text
    assert "our own debug line" in text  # DEBUG is on: only the noisy libraries are quiet
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING


def test_a_warning_of_botocore_is_still_logged(debug_log: io.StringIO) -> None:
    logging.getLogger("botocore.credentials").warning("credentials expire soon")
    assert "credentials expire soon" in debug_log.getvalue()

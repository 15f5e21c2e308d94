"""Parsing AutoConfig events into typed messages."""

from __future__ import annotations

import json
import logging

import pytest

from autoconfig_cache.records import ItemKind
from autoconfig_cache.stream.events import (
    DeleteMessage,
    MalformedEventError,
    PatchMessage,
    PutMessage,
    ReconnectMessage,
    RejectedMessage,
    parse_event,
)
from autoconfig_cache.stream.sse import ServerSentEvent
from tests.items import env_json, filter_json


def event(event_type: str, body: object) -> ServerSentEvent:
    return ServerSentEvent(event_type, json.dumps(body))


def test_put_parses_environments_and_filters() -> None:
    message = parse_event(
        event(
            "put",
            {
                "path": "/",
                "data": {
                    "environments": {"e1": env_json("e1", 3)},
                    "filters": {"f1": filter_json(2)},
                },
            },
        )
    )
    assert isinstance(message, PutMessage)
    assert message.snapshot.environments["e1"].version == 3
    assert message.snapshot.filters["f1"].version == 2


def test_put_keeps_unknown_fields_of_items() -> None:
    message = parse_event(
        event(
            "put",
            {
                "path": "/",
                "data": {"environments": {"e1": env_json("e1", 3, futureField={"x": 1})}},
            },
        )
    )
    assert isinstance(message, PutMessage)
    assert message.snapshot.environments["e1"].raw["futureField"] == {"x": 1}


def test_put_with_other_path_is_ignored() -> None:
    assert parse_event(event("put", {"path": "/x", "data": {}})) is None


def test_put_item_with_mismatched_id_is_skipped_but_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        message = parse_event(
            event("put", {"path": "/", "data": {"environments": {"e1": env_json("other", 3)}}})
        )
    assert isinstance(message, PutMessage)
    assert message.snapshot.environments == {}
    assert message.skipped_ids[ItemKind.ENVIRONMENT] == frozenset({"e1"})
    assert "does not match" in caplog.text


def test_patch_environment_and_filter() -> None:
    env = parse_event(event("patch", {"path": "/environments/e1", "data": env_json("e1", 4)}))
    assert isinstance(env, PatchMessage) and env.kind is ItemKind.ENVIRONMENT
    flt = parse_event(event("patch", {"path": "/filters/f1", "data": filter_json(2)}))
    assert isinstance(flt, PatchMessage) and flt.item.id == "f1"


def test_patch_with_unknown_path_is_ignored_with_debug_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="autoconfig_cache.stream.events"):
        assert parse_event(event("patch", {"path": "/segments/s", "data": {}})) is None
    assert any(
        r.levelno == logging.DEBUG and "unrecognized path" in r.getMessage() for r in caplog.records
    )


def test_patch_environment_with_mismatched_id_is_ignored_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        message = parse_event(
            event("patch", {"path": "/environments/e1", "data": env_json("e2", 4)})
        )
    # Refused, not applied; a RejectedMessage so that the manager counts it.
    assert isinstance(message, RejectedMessage) and "does not match" in message.reason
    assert any(r.levelno == logging.WARNING for r in caplog.records)


def test_delete() -> None:
    assert parse_event(event("delete", {"path": "/filters/f1", "version": 9})) == DeleteMessage(
        ItemKind.FILTER, "f1", 9
    )


def test_delete_without_integer_version_is_malformed() -> None:
    with pytest.raises(MalformedEventError):
        parse_event(event("delete", {"path": "/filters/f1", "version": "9"}))


def test_reconnect() -> None:
    assert parse_event(ServerSentEvent("reconnect", "")) == ReconnectMessage()


def test_unknown_event_is_ignored_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert parse_event(ServerSentEvent("whatever", "{}")) is None
    assert "unknown event type" in caplog.text


@pytest.mark.parametrize("data", ["{", "[]", "null", "not json"])
def test_malformed_json_raises_without_echoing_the_data(data: str) -> None:
    with pytest.raises(MalformedEventError) as info:
        parse_event(ServerSentEvent("patch", data))
    assert "not json" not in str(info.value)


def test_sdk_keys_never_appear_in_parse_logs(caplog: pytest.LogCaptureFixture) -> None:
    env = env_json("e1", 1)
    bad = dict(env, envID="zz")
    with caplog.at_level(logging.DEBUG):
        parse_event(event("patch", {"path": "/environments/e1", "data": bad}))
        parse_event(event("put", {"path": "/", "data": {"environments": {"e1": bad}}}))
    assert env["sdkKey"]["value"] not in caplog.text
    assert env["mobKey"] not in caplog.text

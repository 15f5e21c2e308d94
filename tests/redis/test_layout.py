"""Key layout: the versions and tombstones hashes share the data hash's Redis Cluster slot."""

from __future__ import annotations

import pytest

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache_redis.layout import hash_tag, tombstones_key, versions_key
from tests.redis.servers import RedisClusterProcesses


@pytest.mark.parametrize(
    ("key", "tag"),
    [
        ("plain", None),
        ("a{b}c", "b"),
        ("a{}b", None),
        ("a{b", None),
        ("{x}{y}", "x"),
        ("a}{b}", "b"),
    ],
)
def test_hash_tag_follows_the_redis_cluster_rule(key: str, tag: str | None) -> None:
    assert hash_tag(key) == tag


def test_versions_key_of_a_plain_cache_key_tags_the_whole_key() -> None:
    assert versions_key("autoconfig") == "{autoconfig}:versions"


def test_versions_key_of_a_tagged_cache_key_keeps_its_tag() -> None:
    assert versions_key("app{tenant}") == "app{tenant}:versions"


def test_tombstones_key_follows_the_same_rule() -> None:
    assert tombstones_key("autoconfig") == "{autoconfig}:tombstones"
    assert tombstones_key("app{tenant}") == "app{tenant}:tombstones"


@pytest.mark.parametrize("key", ["a}b", "a{}b}", "}"])
def test_cache_key_that_cannot_share_a_slot_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="hash tag"):
        versions_key(key)
    with pytest.raises(ConfigurationError, match="hash tag"):
        tombstones_key(key)


@pytest.mark.parametrize("key", ["autoconfig", "app{tenant}", "a{b", "{x}{y}", "a}{b}", "ünï{cødé"])
def test_companion_keys_land_in_the_data_hash_slot(
    redis_cluster: RedisClusterProcesses, key: str
) -> None:
    with redis_cluster.nodes[0].client() as client:
        slot = client.execute_command("CLUSTER", "KEYSLOT", key)
        assert client.execute_command("CLUSTER", "KEYSLOT", versions_key(key)) == slot
        assert client.execute_command("CLUSTER", "KEYSLOT", tombstones_key(key)) == slot

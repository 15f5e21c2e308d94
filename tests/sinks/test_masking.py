"""Masking every known credential in free text: each kind of key an environment holds, keys
that share a beginning, and nothing that was never learned."""

from __future__ import annotations

from autoconfig_cache.models import Environment
from autoconfig_cache.secrets import mask
from autoconfig_cache.sinks.masking import SecretMasker
from tests.items import concurrent_env_json, credential_values, env_json


def test_every_credential_of_an_environment_is_masked() -> None:
    raw = concurrent_env_json("env-a")
    raw["sdkKey"]["expiring"] = {"value": f"{raw['sdkKey']['value']}-old", "timestamp": 1}
    masker = SecretMasker()
    masker.learn([Environment.from_json(raw)])
    values = list(dict.fromkeys(credential_values(raw)))  # each once
    assert len(values) == 6
    text = " | ".join(f"key={value};" for value in values)
    masked = masker.mask(text)
    for value in values:
        assert value not in masked
    # The expiring key extends the current one: each is masked whole, not one inside the other.
    assert masked == " | ".join(f"key={mask(value)};" for value in values)


def test_text_without_a_learned_key_is_unchanged() -> None:
    masker = SecretMasker()
    masker.learn([Environment.from_json(env_json("env-a"))])
    other = env_json("env-b")["sdkKey"]["value"]
    assert masker.mask(f"unrelated {other[:6]} text") == f"unrelated {other[:6]} text"


def test_short_secrets_are_masked_and_tiny_values_ignored() -> None:
    masker = SecretMasker()
    masker.add("abc")  # too short to be a credential: masking it would hide ordinary words
    masker.add("s3cr3t")
    assert masker.mask("abc s3cr3t") == f"abc {mask('s3cr3t')}"

"""What an exec hook receives: its environment variables and, in ``change-json`` mode, its stdin.

Compatible with both of ldactl's descriptions of its hooks, which differ:

* **Environment variables** (every mode). ldactl's source (tarqd/ldactl ``ldactl/src/main.rs``,
  ``set_event_env_vars``) sets ``LDAC_EVENT_KIND`` and ten variables per environment:
  ``LDAC_PROJECT_KEY``, ``LDAC_PROJECT_NAME``, ``LDAC_ENV_ID``, ``LDAC_ENV_KEY``,
  ``LDAC_ENV_NAME``, ``LDAC_MOBILE_KEY``, ``LDAC_SDK_KEY`` (the current key), ``LDAC_ENV_VERSION``,
  ``LDAC_ENV_DEFAULT_TTL`` and ``LDAC_ENV_SECURE_MODE`` (``true``/``false``); on ``update`` also
  the same ten as ``LDAC_PREV_*`` for the previous state. Its docs (``docs/CUSTOM_HOOKS.md``)
  list six of them. Both are satisfied.

  On ``delete`` ldactl's source uses the prefix ``"LDAC_"``, which makes ``LDAC__PROJECT_KEY``
  and so on: every hook of its gallery (``hooks/*.sh``) then finds ``LDAC_PROJECT_KEY`` empty
  and exits 1 before reaching its delete branch. We set the single-underscore names on delete,
  as documented and as on insert, **and** the doubled ones too, so that a hook written against
  ldactl's actual behaviour keeps working; the two spellings never conflict.

  ``initialized`` sets only ``LDAC_EVENT_KIND=initialized``. ldactl's docs promise that event
  but its main loop never hands it to the hook; we send it, once per complete configuration
  (gallery hooks exit 0 on it).

  One addition: ``LDAC_EVENT_SOURCE`` is ``stream`` or ``cache`` (a change delivered from the
  cache while LaunchDarkly was not reachable).

* **stdin** (``change-json`` mode): one compact JSON document, no trailing newline, as ldactl's
  ``serde_json::to_writer`` writes its ``ConfigChangeEvent`` (``ldactl/src/autoconfigclient.rs``,
  ``#[serde(tag = "kind", content = "data")]``): ``{"kind": ..., "data": ...}`` with ``data`` the
  environment in ldactl's shape (:mod:`.ldactl_json`), ``{"previous": ..., "current": ...}``
  for an update, and no ``data`` for ``initialized``. Beside them, the top-level fields
  ``docs/CUSTOM_HOOKS.md`` ("JSON Mode Hook Structure") reads: ``projectKey``,
  ``environmentKey``, ``environmentId``, ``mobileKey`` and ``sdkKey`` (a string; the current
  state's on update), and ``source``.

The child's environment is ours minus our own secrets (:func:`child_environment`). ldactl
passes its whole environment, AutoConfig key included, to every hook; a hook has no use for
that key nor for the cache's encryption keys and store passwords, so it does not get them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from ..models import Environment
from .change import Change, ChangeKind
from .ldactl_json import JSONObject, environment_config

#: The suffixes of the per-environment variables, in ldactl's order.
_ENV_FIELDS = (
    "PROJECT_KEY",
    "PROJECT_NAME",
    "ENV_ID",
    "ENV_KEY",
    "ENV_NAME",
    "MOBILE_KEY",
    "SDK_KEY",
    "ENV_VERSION",
    "ENV_DEFAULT_TTL",
    "ENV_SECURE_MODE",
)
#: Every prefix an event variable is set under (``LDAC__``: ldactl's delete spelling).
_PREFIXES = ("LDAC_", "LDAC_PREV_", "LDAC__")
#: Every event variable name; any of them inherited from our own environment is dropped, so a
#: hook never reads a stale value (``LDAC_PREV_SDK_KEY`` on an insert, say).
EVENT_VARIABLES = frozenset(
    {"LDAC_EVENT_KIND", "LDAC_EVENT_SOURCE"}
    | {prefix + field for prefix in _PREFIXES for field in _ENV_FIELDS}
)

#: Our own secrets, never passed to a hook: the AutoConfig key (ours, and ldactl's variable),
#: the stream proxy's credentials, the store URL and passwords of the built-in store plugins.
#: Any variable whose name contains ``ENCRYPTION_KEY`` is withheld too.
WITHHELD_VARIABLES = frozenset(
    {
        "AUTO_CONFIG_KEY",
        "LD_RELAY_AUTO_CONFIG_KEY",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY",
        "AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS",
        "AUTO_CONFIG_CACHE_STORE",
        "PROXY_URL",
        "PROXY_AUTH_PASSWORD",
        "REDIS_URL",
        "REDIS_PASSWORD",
    }
)


def _environment_variables(prefix: str, env: Environment) -> dict[str, str]:
    values = (
        env.proj_key,
        env.proj_name,
        env.env_id,
        env.env_key,
        env.env_name,
        env.mob_key,
        env.sdk_key,
        str(env.version),
        str(env.default_ttl),
        "true" if env.secure_mode else "false",  # Rust's bool Display
    )
    return {prefix + field: value for field, value in zip(_ENV_FIELDS, values, strict=True)}


def event_variables(change: Change) -> dict[str, str]:
    """The ``LDAC_*`` variables of ``change`` (secrets in clear: for the child only)."""
    variables = {"LDAC_EVENT_KIND": str(change.kind), "LDAC_EVENT_SOURCE": str(change.source)}
    if change.env is None:
        return variables  # initialized: the kind (and source) only
    variables.update(_environment_variables("LDAC_", change.env))
    if change.previous is not None:
        variables.update(_environment_variables("LDAC_PREV_", change.previous))
    if change.kind is ChangeKind.DELETE:
        variables.update(_environment_variables("LDAC__", change.env))  # ldactl's spelling
    return variables


def change_document(change: Change) -> JSONObject:
    """The ``change-json`` document of ``change`` (secrets in clear: for the child only)."""
    document: JSONObject = {"kind": str(change.kind)}
    if change.env is None:
        document["source"] = str(change.source)
        return document
    current = environment_config(change.env)
    if change.previous is not None:
        document["data"] = {"previous": environment_config(change.previous), "current": current}
    else:
        document["data"] = current
    document.update(
        {
            "source": str(change.source),
            "projectKey": change.env.proj_key,
            "environmentKey": change.env.env_key,
            "environmentId": change.env.env_id,
            "mobileKey": change.env.mob_key,
            "sdkKey": change.env.sdk_key,
        }
    )
    return document


def change_json(change: Change) -> bytes:
    """:func:`change_document` as compact UTF-8 JSON, without a trailing newline (as ldactl)."""
    text = json.dumps(change_document(change), separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def is_withheld(name: str, withheld: Collection[str] = WITHHELD_VARIABLES) -> bool:
    """Whether the variable ``name`` of our environment is kept from hooks."""
    return name in withheld or "ENCRYPTION_KEY" in name.upper()


def child_environment(
    parent: Mapping[str, str],
    change: Change,
    *,
    withheld: Collection[str] = WITHHELD_VARIABLES,
) -> dict[str, str]:
    """A hook's environment: ``parent`` minus the withheld variables and any inherited event
    variable, plus the event variables of ``change``."""
    environment = {
        name: value
        for name, value in parent.items()
        if name not in EVENT_VARIABLES and not is_withheld(name, withheld)
    }
    environment.update(event_variables(change))
    return environment

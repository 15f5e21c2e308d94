"""AutoConfig items: environments and payload filters, and a snapshot of both.

Each item keeps the JSON it was built from (``raw``), unchanged, so that fields added by a newer
LaunchDarkly schema survive a round trip through the cache. The typed attributes are a view on
the fields this project uses. An environment keeps that JSON as its UTF-8 text and parses it only
as far as validation needs, and the rest on access (see :class:`Environment`).

Concurrent keys: newer AutoConfig streams send, per environment, the whole accepted credential
set as ``sdkKeys`` and ``mobileKeys``, arrays of ``{"key", "value", "expiry"?, "hasViews"}``
(ld-relay ``internal/envfactory/env_rep.go``, ``ConcurrentKeyRep``), beside the singular
``sdkKey``/``mobKey`` that stay the designated ("anchor") keys. Older streams, and caches written
by an older Relay or by this project's 0.1, have no arrays. :attr:`Environment.sdk_keys` and
:attr:`Environment.mobile_keys` then synthesise them from ``sdkKey`` (plus ``sdkKey.expiring``)
and ``mobKey`` at use time, as the Relay Proxy's ``EnvironmentRep.ToParams`` does; nothing is
ever written back into ``raw``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs
import msgspec

from . import jsoncodec
from .errors import MalformedCredentialsError as MalformedCredentialsError  # in errors.py
from .errors import MalformedItemError
from .records import ItemKind
from .secrets import mask
from .validation import (
    MAX_VERSION,
    MIN_VERSION,
    SHORT_ID_CHARS,
    check_item_id,
    check_version,
    shown_id,
)
from .validation import check_strings as check_item_strings  # `check_strings` is a parameter

JSONObject: TypeAlias = dict[str, Any]


def _require_str(data: Mapping[str, Any], name: str, what: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedItemError(
            f"{what}: field {name!r} must be a string, got {type(value).__name__}"
        )
    return value


def _require_int(data: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = data.get(name, default)
    # bool is an int subclass; a version of `true` is malformed, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedItemError(
            f"{what}: field {name!r} must be an integer, got {type(value).__name__}"
        )
    return value


@attrs.frozen
class ExpiringKey:
    """An SDK key that LaunchDarkly keeps valid until ``timestamp`` (ms since the epoch)."""

    value: str = attrs.field(repr=mask)
    timestamp: int


@attrs.frozen
class ConcurrentKey:
    """One accepted credential of an environment: an entry of ``sdkKeys`` or ``mobileKeys``.

    :param key: the credential's identifier, which is not secret (``""`` when synthesised from
        ``sdkKey``/``mobKey``, which carry none).
    :param value: the credential itself. A secret: masked in ``repr``; mask it before showing it.
    :param expiry: when LaunchDarkly stops accepting it, in ms since the epoch; ``None`` for a
        key that does not expire.
    :param has_views: whether the key is scoped to views (the Relay Proxy does not serve such a
        key, except the designated one).
    """

    key: str
    value: str = attrs.field(repr=mask)
    expiry: int | None = None
    has_views: bool = False

    def to_json(self, *, masked: bool = False) -> JSONObject:
        """The entry's JSON shape (``expiry`` left out when ``None``); ``masked`` masks the value."""
        data: JSONObject = {"key": self.key, "value": mask(self.value) if masked else self.value}
        if self.expiry is not None:
            data["expiry"] = self.expiry
        data["hasViews"] = self.has_views
        return data


#: Go's ``int64``, the type of ``expiry`` in ld-relay's ``ConcurrentKeyRep``.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: ``ldtime.UnixMillisecondTime`` (``sdkKey.expiring.timestamp``) is a ``uint64``.
_UINT64_MAX = 2**64 - 1
#: A credential must be sendable in an HTTP header: ld-relay v9 ``BuildAcceptedSet`` refuses any
#: character below 32 or above 127 (``isValidHTTPHeaderValue``, package ``internal/envfactory``).
_HEADER_SAFE = re.compile(r"[\x20-\x7f]+").fullmatch


#: The JSON names of ``sdkKey`` and ``sdkKey.expiring`` as ld-relay v9 tags them; no two fold
#: to the same name.
_GO_NAMES = frozenset({"value", "expiring", "timestamp"})


def go_field(data: Mapping[str, Any], name: str) -> Any:
    """The value of the JSON field ``name`` in ``data`` as Go's ``encoding/json`` decodes it
    into a struct field of that name: keys match case-insensitively, and when several keys match,
    the last one in the document wins (each is decoded in turn into the same field). ``None``
    when no key matches.

    This matters for Relay-written data: a Relay Proxy v8 writes the expiring SDK key as
    ``"sdkKey": {"Expiring": {...}}``, because ``SDKKeyRep.Expiring`` has no JSON tag there and Go
    then uses the field name; v8 and v9 (which tags it ``expiring``) read it back whatever the
    case (ld-relay ``internal/envfactory/env_rep.go``). Used for the small ``sdkKey`` and
    ``sdkKey.expiring`` objects; the other fields the Relay Proxy writes carry their JSON tag.
    """
    found = data.get(name)
    if (len(data) == 1 and found is not None) or (name in _GO_NAMES and data.keys() <= _GO_NAMES):
        # The common shapes cost one lookup: {"value": ...}, or only names spelled as Go's
        # tags spell them, which fold to distinct names (so no other key can match ``name``).
        return found
    folded = name.casefold()
    for key, value in data.items():
        if key == name or (type(key) is str and key.casefold() == folded):
            found = value
    return found


def go_field_names(data: Mapping[str, Any], name: str) -> list[str]:
    """Every key of ``data`` that Go's ``encoding/json`` decodes into the field ``name`` (see
    :func:`go_field`): for code that must rewrite all of them, such as masking."""
    folded = name.casefold()
    return [key for key in data if type(key) is str and key.casefold() == folded]


class _EnvironmentFields(msgspec.Struct):
    """The fields of an environment that validation and the accessors read; decoded from the
    item's JSON text, the others skipped (msgspec still checks their syntax). Absent fields stay
    :data:`msgspec.UNSET`, so that absent and ``null`` differ as they do in a dict."""

    envID: Any = msgspec.UNSET
    version: Any = msgspec.UNSET
    envKey: Any = msgspec.UNSET
    envName: Any = msgspec.UNSET
    projKey: Any = msgspec.UNSET
    projName: Any = msgspec.UNSET
    sdkKey: Any = msgspec.UNSET
    mobKey: Any = msgspec.UNSET
    sdkKeys: Any = msgspec.UNSET
    mobileKeys: Any = msgspec.UNSET
    defaultTtl: Any = msgspec.UNSET
    secureMode: Any = msgspec.UNSET


_fields_decoder = msgspec.json.Decoder(_EnvironmentFields)


def _decode_fields(text: bytes) -> JSONObject:
    """The fields of :class:`_EnvironmentFields` present in the JSON object ``text``.

    :raises msgspec.DecodeError: ``text`` is not a JSON object msgspec accepts (a
        :class:`msgspec.ValidationError` when it is JSON of another type).
    :raises RecursionError: a field nests too deep for msgspec.
    """
    return _present_fields(_fields_decoder.decode(text))


def _present_fields(fields: _EnvironmentFields | _EnvironmentHead) -> JSONObject:
    """The fields of ``fields`` that the item has, as a dict."""
    return {
        name: value
        for name in fields.__struct_fields__
        if (value := getattr(fields, name)) is not msgspec.UNSET
    }


class _EnvironmentHead(msgspec.Struct):
    """What validation reads of an environment, typed as the common valid shape has them, so
    that msgspec checks those types while it parses (and builds nothing for the fields only
    the accessors read). Text that does not fit is parsed whole by the general path, whose
    checks decide and word the refusal: a type here never refuses an item by itself."""

    envID: str
    version: int
    envKey: str
    projKey: str
    sdkKey: dict[str, Any]
    mobKey: Any = msgspec.UNSET
    sdkKeys: Any = msgspec.UNSET
    mobileKeys: Any = msgspec.UNSET


_head_decoder = msgspec.json.Decoder(_EnvironmentHead)


def _item_text(value: Any) -> bytes | JSONObject:
    """An environment's JSON as held: bytes as they are; a value serialised exactly, or kept
    as it is when it nests too deep for the standard library's encoder (which recurses)."""
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview | msgspec.Raw):
        return bytes(value)
    try:
        return jsoncodec.dumps_exact(value)
    except RecursionError:
        held: JSONObject = value
        return held


@attrs.frozen(repr=False, eq=False)
class Environment:
    """A LaunchDarkly environment as the AutoConfig stream describes it.

    Only the identity, the version and the item's JSON text (UTF-8 bytes, as received) are
    held; every other attribute, and :attr:`raw`, is read from that text on access. 10,000
    environments then take little more memory than their JSON (parsed into dicts they took
    three times as much), a stream ``put`` builds them without parsing what no one asked for,
    and the store write encodes the text it already has.

    ``Environment(env_id, version, raw)`` accepts the JSON as bytes or as a value (a dict),
    which is then serialised so that :attr:`raw` gives it back exactly. It does not validate:
    :meth:`from_json` and :meth:`from_json_bytes` do.
    """

    env_id: str
    version: int
    _text: bytes | JSONObject = attrs.field(alias="raw", converter=_item_text)

    kind = ItemKind.ENVIRONMENT

    @property
    def id(self) -> str:
        """The item id (the environment's ``envID``)."""
        return self.env_id

    @property
    def raw(self) -> JSONObject:
        """The item's JSON, unknown fields included, parsed anew on each access (a new dict:
        changing it changes nothing here)."""
        if not isinstance(self._text, bytes):
            return self._text  # held as a value (see json_bytes)
        # Lenient: an item built from a value that holds a lone surrogate, unchecked because
        # its caller vouched for it, reads back as it was built (see from_json).
        value: JSONObject = jsoncodec.loads_lenient(self._text)[0]
        return value

    @property
    def json_bytes(self) -> bytes | None:
        """The item's JSON text (UTF-8) as received, or as serialised from the value it was
        built from; ``None`` for a value nested too deep to serialise, which is held as is."""
        return self._text if type(self._text) is bytes else None

    def _fields(self) -> JSONObject:
        """The fields the accessors read (see :class:`_EnvironmentFields`)."""
        if not isinstance(self._text, bytes):
            return self._text
        try:
            return _decode_fields(self._text)
        except (msgspec.DecodeError, RecursionError):
            # Text msgspec refuses (NaN, say, in an item built from a value): the general path.
            return self.raw

    @property
    def env_key(self) -> str:
        """The environment's key (``envKey``)."""
        return str(self._fields()["envKey"])

    @property
    def env_name(self) -> str:
        """The environment's display name (``envName``)."""
        return str(self._fields().get("envName", ""))

    @property
    def proj_key(self) -> str:
        """The project's key (``projKey``)."""
        return str(self._fields()["projKey"])

    @property
    def proj_name(self) -> str:
        """The project's display name (``projName``)."""
        return str(self._fields().get("projName", ""))

    @property
    def sdk_key(self) -> str:
        """The current server-side SDK key. A secret: mask it before showing it."""
        return str(go_field(self._fields()["sdkKey"], "value"))

    @property
    def mob_key(self) -> str:
        """The mobile key (``""`` when the environment has none). A secret: mask it before
        showing it."""
        mob = self._fields().get("mobKey")
        return mob if type(mob) is str else ""

    @property
    def sdk_keys(self) -> tuple[ConcurrentKey, ...]:
        """Every SDK key the environment accepts (``sdkKeys``). Secrets: mask their values.

        Without a (non-empty) ``sdkKeys`` array the set is synthesised, as the Relay Proxy v9
        does (ld-relay ``internal/envfactory/env_rep.go``, ``ToParams``): ``sdkKey.value``, plus
        ``sdkKey.expiring.value`` with its ``timestamp`` as expiry when that value is set. The
        synthesised entries have an empty ``key``. ``raw`` is never changed.
        """
        entries = self._fields().get("sdkKeys")
        if type(entries) is list and entries:
            return tuple(_concurrent_key(entry) for entry in entries)
        keys = [ConcurrentKey("", self.sdk_key)]
        expiring = self.expiring_sdk_key
        if expiring is not None:
            keys.append(ConcurrentKey("", expiring.value, expiring.timestamp))
        return tuple(keys)

    @property
    def mobile_keys(self) -> tuple[ConcurrentKey, ...]:
        """Every mobile key the environment accepts (``mobileKeys``). Secrets: mask their values.

        Without a (non-empty) ``mobileKeys`` array the set is synthesised from ``mobKey``: one
        entry, or none when ``mobKey`` is empty (a server-side-only environment), as the Relay
        Proxy v9 does. ``raw`` is never changed.
        """
        entries = self._fields().get("mobileKeys")
        if type(entries) is list and entries:
            return tuple(_concurrent_key(entry) for entry in entries)
        mob = self.mob_key
        return (ConcurrentKey("", mob),) if mob else ()

    @property
    def expiring_sdk_key(self) -> ExpiringKey | None:
        """The previous SDK key while it is still valid, if any.

        Read from ``sdkKey.expiring``, the name matched case-insensitively as the Relay Proxy
        does: a v8 Relay writes it as ``Expiring`` (see :func:`go_field`).
        """
        expiring = go_field(self._fields()["sdkKey"], "expiring")
        if type(expiring) is not dict:
            return None
        value = go_field(expiring, "value")
        if type(value) is not str or not value:
            return None
        # An absent timestamp is Go's zero value, 0, in the Relay Proxy too.
        timestamp = go_field(expiring, "timestamp")
        return ExpiringKey(value=value, timestamp=timestamp if type(timestamp) is int else 0)

    @property
    def default_ttl(self) -> int:
        """``defaultTtl`` in minutes (0 when absent or not a number)."""
        ttl = self._fields().get("defaultTtl", 0)
        return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else 0

    @property
    def secure_mode(self) -> bool:
        """Whether secure mode is on."""
        return bool(self._fields().get("secureMode", False))

    def __repr__(self) -> str:
        return (
            f"Environment(env_id={self.env_id!r}, env_key={self._fields().get('envKey')!r}, "
            f"version={self.version}, sdk_key={mask(self.sdk_key)})"
        )

    def __eq__(self, other: object) -> bool:
        # Equal items may be held as different text (spacing, escapes): then their values decide.
        if not isinstance(other, Environment):
            return NotImplemented
        return (
            self.env_id == other.env_id
            and self.version == other.version
            and (self._text == other._text or self.raw == other.raw)
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, as a dict: not hashable

    @classmethod
    def from_json(
        cls, data: Any, *, expected_id: str | None = None, check_strings: bool = False
    ) -> Environment:
        """Build an environment from its stream JSON.

        The ``envID`` and the ``version`` must be valid (:mod:`autoconfig_cache.validation`).

        :param expected_id: the map key or path segment the item came under; an ``envID`` that
            differs from it is malformed (the Relay Proxy ignores such items).
        :param check_strings: also check that every string and key is encodable as UTF-8. Only
            needed for data that may hold a lone surrogate: JSON parsed by
            :func:`autoconfig_cache.jsoncodec.loads_lenient` that was not ``clean``, or values
            built in code.
        :raises MalformedItemError: when required fields are missing, of the wrong type, or
            invalid.
        """
        if type(data) is not dict:
            raise MalformedItemError(
                f"environment must be a JSON object, got {type(data).__name__}"
            )
        env_id, version = _check_environment(data, expected_id, data if check_strings else None)
        return cls(env_id, version, data)

    @classmethod
    def from_json_bytes(
        cls, text: bytes, *, expected_id: str | None = None, check_strings: bool = False
    ) -> Environment:
        """:meth:`from_json` from the item's JSON text, held as it is: only the fields
        validation checks are parsed (the rest when something asks, see :attr:`raw`).

        :param check_strings: as in :meth:`from_json`; only needed for text msgspec may refuse
            (text it accepts holds no lone surrogate).
        :raises MalformedItemError: as :meth:`from_json`, and when ``text`` is not JSON.
        """
        environment = environment_from_text(text, expected_id, check_strings)
        if cls is Environment:
            return environment
        return cls(environment.env_id, environment.version, text)

    def to_json(self) -> JSONObject:
        """The item's JSON as received (unknown fields included), parsed anew (see :attr:`raw`)."""
        return self.raw


def environment_from_text(
    text: bytes, expected_id: str | None = None, check_strings: bool = False
) -> Environment:
    """:meth:`Environment.from_json_bytes` (the same checks and errors), called directly by the
    paths that build one environment per item: a stream ``put`` and a cache load."""
    try:
        head = _head_decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        # Not an object, a validated field missing or of another type than it has when
        # valid, or text only the general parser reads (NaN, a lone surrogate, nesting
        # near the limit): parsed whole, for the same checks and messages.
        try:
            data, clean = jsoncodec.loads_lenient(text)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise MalformedItemError(f"environment is not valid JSON: {exc}") from None
        if type(data) is not dict:
            raise MalformedItemError(
                f"environment must be a JSON object, got {type(data).__name__}"
            ) from None
        strings = data if (check_strings or not clean) else None
        env_id, version = _check_environment(data, expected_id, strings)
        return Environment(env_id, version, text)
    env_id, version = head.envID, head.version
    if (
        0 < len(env_id) <= SHORT_ID_CHARS
        and env_id.isprintable()
        and (expected_id is None or env_id == expected_id)
        and MIN_VERSION <= version <= MAX_VERSION
        and head.sdkKeys is msgspec.UNSET
        and head.mobileKeys is msgspec.UNSET
        and _plain_credentials(head.sdkKey, head.mobKey)
    ):
        # The common shape, valid: checked without a dict. The id held is the caller's
        # (the put's map key, kept by every dict of items anyway): one string, not two.
        if type(text) is not bytes:
            return Environment(env_id if expected_id is None else expected_id, version, text)
        # Built through the slots: attrs' __init__ would call the converter, whose type
        # check ``text`` passes already (bytes). Once per environment of every put and load.
        environment: Environment = _new(Environment)
        _set_env_id(environment, env_id if expected_id is None else expected_id)
        _set_env_version(environment, version)
        _set_env_text(environment, text)
        return environment
    env_id, version = _check_environment(_present_fields(head), expected_id, None)
    return Environment(env_id, version, text)


# Environment is frozen: its slots are set through their descriptors (what attrs' __init__ does
# through object.__setattr__), see environment_from_text.
_new = object.__new__
_set_env_id = Environment.__dict__["env_id"].__set__
_set_env_version = Environment.__dict__["version"].__set__
_set_env_text = Environment.__dict__["_text"].__set__


def _check_environment(
    data: JSONObject, expected_id: str | None, strings: JSONObject | None
) -> tuple[str, int]:
    """The ``(envID, version)`` of an environment whose fields are ``data`` (the whole item, or
    the fields of :class:`_EnvironmentFields` present in it), once every check passed.

    :param strings: the whole item, to check its strings for lone surrogates; ``None`` to skip.
    :raises MalformedItemError: the first check that fails, in a fixed order.
    """
    # Exact type checks (``type(x) is int`` also rejects booleans) keep this cheap: it
    # runs once per environment of every put and every start-up from the cache.
    env_id = data.get("envID")
    version = data.get("version")
    sdk = data.get("sdkKey")
    if (
        type(env_id) is not str
        or type(version) is not int
        or type(data.get("envKey")) is not str
        or type(data.get("projKey")) is not str
        or type(sdk) is not dict
        or type(go_field(sdk, "value")) is not str
    ):
        raise _environment_problem(data)
    if not (0 < len(env_id) <= SHORT_ID_CHARS and env_id.isprintable()):
        check_item_id("environment", env_id)  # the full check, for anything else
    if expected_id is not None and env_id != expected_id:
        raise MalformedItemError(
            f"environment {shown_id(env_id)}: envID does not match the key it was sent "
            f"under ({shown_id(expected_id)})"
        )
    if not MIN_VERSION <= version <= MAX_VERSION:
        check_version(f"environment {env_id!r}: field 'version'", version)
    if strings is not None:
        check_item_strings(f"environment {env_id!r}", strings)
    _check_credentials(data, sdk, env_id)
    return env_id, version


def _environment_problem(data: JSONObject) -> MalformedItemError:
    """The specific error for an environment that failed the fast checks."""
    try:
        env_id = _require_str(data, "envID", "environment")
        what = f"environment {shown_id(env_id)}"
        _require_str(data, "envKey", what)
        _require_str(data, "projKey", what)
        _require_int(data, "version", what)
    except MalformedItemError as problem:
        return problem
    return MalformedItemError(f"{what}: field 'sdkKey.value' must be a string")


def _concurrent_key(entry: Any) -> ConcurrentKey:
    """An entry of ``sdkKeys``/``mobileKeys`` that :func:`_check_credentials` accepted."""
    if type(entry) is not dict:
        # Only an Environment built without from_json gets here; never raise from an accessor
        # (they are read when masking and logging).
        return ConcurrentKey("", "")
    key, value, expiry = entry.get("key"), entry.get("value"), entry.get("expiry")
    return ConcurrentKey(
        key if type(key) is str else "",
        value if type(value) is str else "",
        expiry if type(expiry) is int else None,
        entry.get("hasViews") is True,
    )


def _check_credentials(data: JSONObject, sdk: JSONObject, env_id: str) -> None:
    """Refuse a credential set the Relay Proxy v9 refuses; raise :class:`MalformedCredentialsError`.

    Two layers, both from ld-relay:

    * types, as Go's JSON decoding of ``EnvironmentRep`` enforces them
      (``internal/envfactory/env_rep.go``; the fields of ``sdkKey`` matched case-insensitively
      as Go matches them, see :func:`go_field`): ``mobKey`` a string; ``sdkKey.expiring`` an object
      with a string ``value`` and a non-negative integer ``timestamp``; ``sdkKeys`` and
      ``mobileKeys`` arrays of objects whose ``key`` and ``value`` are strings, ``expiry`` an
      integer (Unix ms) and ``hasViews`` a boolean. ``null`` is Go's zero value, accepted where Go
      accepts it (an entry that is ``null`` has an empty value, refused below);
    * the accepted set, as ``BuildAcceptedSet`` (package ``internal/envfactory``) checks it on
      the set that ``ToParams`` gives (the arrays, or the set synthesised from ``sdkKey`` and
      ``mobKey`` when an array is absent or empty): no empty value; only characters 32 to 127,
      which an HTTP header can carry; ``sdkKey.value`` set and one of the ``sdkKeys`` values; a
      non-empty ``mobKey`` one of the ``mobileKeys`` values; ``mobileKeys`` not empty without a
      ``mobKey``.

    View-scoped keys (``hasViews``) are not malformed: the Relay Proxy serves the rest and skips
    them, so they are kept here as received. Messages name fields, never values.
    """
    anchor: str = go_field(sdk, "value")
    mob = data.get("mobKey")
    if "sdkKeys" not in data and "mobileKeys" not in data and _plain_credentials(sdk, mob):
        return
    what = f"environment {env_id!r}"
    if mob is None:
        mob = ""
    elif type(mob) is not str:
        raise MalformedCredentialsError(
            f"{what}: field 'mobKey' must be a string, got {type(mob).__name__}"
        )
    expiring_value = ""
    # ``Expiring`` as a v8 Relay writes it is the same field (see go_field).
    expiring = go_field(sdk, "expiring")
    if expiring is not None:
        if type(expiring) is not dict:
            raise MalformedCredentialsError(
                f"{what}: field 'sdkKey.expiring' must be an object, got {type(expiring).__name__}"
            )
        value = go_field(expiring, "value")
        if value is not None and type(value) is not str:
            raise MalformedCredentialsError(
                f"{what}: field 'sdkKey.expiring.value' must be a string, "
                f"got {type(value).__name__}"
            )
        timestamp = go_field(expiring, "timestamp")
        if timestamp is not None and (
            type(timestamp) is not int or not 0 <= timestamp <= _UINT64_MAX
        ):
            raise MalformedCredentialsError(
                f"{what}: field 'sdkKey.expiring.timestamp' must be a non-negative integer "
                f"(ms since the epoch)"
            )
        expiring_value = value or ""
    sdk_entries = _key_entries(data, "sdkKeys", what)
    if sdk_entries is None:
        _check_value(what, "sdkKey.value", anchor)
        if expiring_value:
            _check_value(what, "sdkKey.expiring.value", expiring_value)
    elif anchor not in sdk_entries:
        raise MalformedCredentialsError(
            f"{what}: 'sdkKey.value' is not one of the 'sdkKeys' values"
            if anchor
            else f"{what}: 'sdkKey.value' is empty: no designated SDK key"
        )
    mobile_entries = _key_entries(data, "mobileKeys", what)
    if mobile_entries is None:
        if mob:
            _check_value(what, "mobKey", mob)
    elif not mob:
        raise MalformedCredentialsError(
            f"{what}: 'mobileKeys' is not empty but 'mobKey' is: no designated mobile key"
        )
    elif mob not in mobile_entries:
        raise MalformedCredentialsError(f"{what}: 'mobKey' is not one of the 'mobileKeys' values")


def _plain_credentials(sdk: JSONObject, mob: Any) -> bool:
    """Whether the credentials of an environment without ``sdkKeys``/``mobileKeys`` arrays are
    valid in their common shape: ``sdkKey`` with a ``value`` and maybe an ``expiring`` key, their
    fields named as Go's tags name them, and ``mobKey`` absent, ``null`` or a string.

    ``False`` says only "not this shape": :func:`_check_credentials` then checks in full. A few
    lookups and regex matches, as this runs for every environment of every put and cache load.
    """
    if not sdk.keys() <= _GO_NAMES:
        return False
    anchor = sdk.get("value")
    # ``isascii() and isprintable()`` is _HEADER_SAFE for a non-empty string but for DEL (127),
    # which the regex decides: two C calls instead of two regex matches per environment.
    if not (
        type(anchor) is str
        and anchor
        and ((anchor.isascii() and anchor.isprintable()) or _HEADER_SAFE(anchor))
        and (
            mob is None
            or mob is msgspec.UNSET
            or (
                type(mob) is str
                and (not mob or (mob.isascii() and mob.isprintable()) or _HEADER_SAFE(mob))
            )
        )
    ):
        return False
    expiring = sdk.get("expiring")
    if expiring is None:
        return True
    if type(expiring) is not dict or not expiring.keys() <= _GO_NAMES:
        return False
    value = expiring.get("value")
    timestamp = expiring.get("timestamp")
    return (
        value is None or (type(value) is str and (not value or _HEADER_SAFE(value) is not None))
    ) and (timestamp is None or (type(timestamp) is int and 0 <= timestamp <= _UINT64_MAX))


def _check_value(what: str, label: str, value: str) -> None:
    """Refuse an empty credential, or one an HTTP header cannot carry."""
    if not value:
        raise MalformedCredentialsError(f"{what}: {label}: the credential is empty")
    if not _HEADER_SAFE(value):
        raise MalformedCredentialsError(
            f"{what}: {label}: the credential has characters an HTTP header cannot carry "
            f"(only 32 to 127 are allowed)"
        )


def _key_entries(data: JSONObject, field: str, what: str) -> set[str] | None:
    """The values of the array ``field``, each entry checked (types, then the value itself);
    ``None`` when the array is absent, ``null`` or empty (the Relay Proxy then synthesises the
    set from ``sdkKey``/``mobKey``)."""
    entries = data.get(field)
    if entries is None:
        return None
    if type(entries) is not list:
        raise MalformedCredentialsError(
            f"{what}: field {field!r} must be an array, got {type(entries).__name__}"
        )
    if not entries:
        return None
    values: set[str] = set()
    for index, entry in enumerate(entries):
        if type(entry) is not dict:
            raise MalformedCredentialsError(
                f"{what}: {field}[{index}] must be an object, got {type(entry).__name__}"
            )
        key = entry.get("key")
        value = entry.get("value")
        expiry = entry.get("expiry")
        has_views = entry.get("hasViews")
        if (
            (key is None or type(key) is str)
            and type(value) is str
            and value
            and _HEADER_SAFE(value)
            and (expiry is None or (type(expiry) is int and _INT64_MIN <= expiry <= _INT64_MAX))
            and (has_views is None or type(has_views) is bool)
        ):
            values.add(value)
            continue
        label = f"{field}[{index}]"
        if key is not None and type(key) is not str:
            raise MalformedCredentialsError(
                f"{what}: {label}: field 'key' must be a string, got {type(key).__name__}"
            )
        if key:
            label = f"{label} (key {key!r})"  # the identifier, not the credential: not secret
        if value is not None and type(value) is not str:
            raise MalformedCredentialsError(
                f"{what}: {label}: field 'value' must be a string, got {type(value).__name__}"
            )
        if expiry is not None and (
            type(expiry) is not int or not _INT64_MIN <= expiry <= _INT64_MAX
        ):
            raise MalformedCredentialsError(
                f"{what}: {label}: field 'expiry' must be an integer (ms since the epoch)"
            )
        if has_views is not None and type(has_views) is not bool:
            raise MalformedCredentialsError(
                f"{what}: {label}: field 'hasViews' must be a boolean, "
                f"got {type(has_views).__name__}"
            )
        _check_value(what, label, value or "")
    return values


@attrs.frozen
class Filter:
    """A payload filter. Its id is the map key or path segment, not a JSON field."""

    filter_id: str
    proj_key: str
    key: str
    version: int
    raw: JSONObject = attrs.field(repr=False)

    kind = ItemKind.FILTER

    @property
    def id(self) -> str:
        """The item id (the filter's id from the stream path or map key)."""
        return self.filter_id

    @classmethod
    def from_json(cls, data: Any, *, filter_id: str, check_strings: bool = False) -> Filter:
        """Build a filter from its stream JSON and the id it was sent under.

        The id and the ``version`` must be valid (:mod:`autoconfig_cache.validation`).

        :param check_strings: also check that every string and key is encodable as UTF-8 (see
            :meth:`Environment.from_json`).
        :raises MalformedItemError: when required fields are missing, of the wrong type, or
            invalid.
        """
        check_item_id("filter", filter_id)
        what = f"filter {filter_id!r}"
        if not isinstance(data, dict):
            raise MalformedItemError(f"{what} must be a JSON object")
        version = check_version(f"{what}: field 'version'", data.get("version"))
        if check_strings:
            check_item_strings(what, data)
        return cls(
            filter_id=filter_id,
            proj_key=_require_str(data, "projKey", what),
            key=_require_str(data, "key", what),
            version=version,
            raw=data,
        )

    def to_json(self) -> JSONObject:
        """The item's JSON exactly as received (unknown fields included)."""
        return self.raw


Item: TypeAlias = Environment | Filter


def item_from_json(kind: ItemKind, item_id: str, data: Any, *, check_strings: bool = False) -> Item:
    """Build an item of ``kind`` from its JSON, checking it against ``item_id`` (``check_strings``
    as in :meth:`Environment.from_json`)."""
    if kind is ItemKind.ENVIRONMENT:
        return Environment.from_json(data, expected_id=item_id, check_strings=check_strings)
    return Filter.from_json(data, filter_id=item_id, check_strings=check_strings)


def item_from_json_text(kind: ItemKind, item_id: str, text: bytes) -> Item:
    """:func:`item_from_json` from the item's JSON text (UTF-8): an environment keeps the text
    and parses only what validation checks (:meth:`Environment.from_json_bytes`)."""
    if kind is ItemKind.ENVIRONMENT:
        return environment_from_text(text, item_id)
    try:
        data = jsoncodec.loads(text)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise MalformedItemError(f"filter {shown_id(item_id)} is not valid JSON: {exc}") from None
    return Filter.from_json(data, filter_id=item_id)


@attrs.frozen
class Tombstone:
    """The record that an item was deleted at ``version``.

    Kept in memory by the stream manager and written to the store, so that a late, older
    update — from a lagging process sharing the cache key, say — cannot bring the item back.
    """

    kind: ItemKind
    item_id: str
    version: int

    @property
    def id(self) -> str:
        """The id of the deleted item."""
        return self.item_id


@attrs.frozen
class Snapshot:
    """A complete AutoConfig state: every environment and filter, keyed by id.

    ``tombstones`` lists the items known to be deleted (and at which version); it is empty for
    a snapshot that came from a stream ``put``.
    """

    environments: Mapping[str, Environment] = attrs.field(factory=dict)
    filters: Mapping[str, Filter] = attrs.field(factory=dict)
    tombstones: tuple[Tombstone, ...] = ()

    def items(self) -> list[Item]:
        """All items, environments first."""
        return [*self.environments.values(), *self.filters.values()]

    def __len__(self) -> int:
        return len(self.environments) + len(self.filters)

    @classmethod
    def from_put_data(
        cls, data: Any, *, check_strings: bool = False
    ) -> tuple[Snapshot, list[MalformedItemError]]:
        """Parse the ``data`` of a ``put`` event (``{"environments": {...}, "filters": {...}}``).

        Malformed and invalid items (:mod:`autoconfig_cache.validation`) are left out and
        returned beside the snapshot, so that one bad item never costs the others.

        :param check_strings: check each item's strings and keys for lone surrogates: pass the
            negation of ``clean`` from :func:`autoconfig_cache.jsoncodec.loads_lenient`, or
            ``True`` for values built in code.
        """
        if not isinstance(data, dict):
            raise MalformedItemError("put data must be a JSON object")
        problems: list[MalformedItemError] = []
        environments: dict[str, Environment] = {}
        filters: dict[str, Filter] = {}
        raw_envs = data.get("environments") or {}
        raw_filters = data.get("filters") or {}
        if not isinstance(raw_envs, dict) or not isinstance(raw_filters, dict):
            raise MalformedItemError("put data: 'environments' and 'filters' must be objects")
        for env_id, raw in raw_envs.items():
            try:
                environments[env_id] = Environment.from_json(
                    raw, expected_id=env_id, check_strings=check_strings
                )
            except MalformedItemError as exc:
                problems.append(exc)
        for filter_id, raw in raw_filters.items():
            try:
                filters[filter_id] = Filter.from_json(
                    raw, filter_id=filter_id, check_strings=check_strings
                )
            except MalformedItemError as exc:
                problems.append(exc)
        return cls(environments=environments, filters=filters), problems

    def to_put_data(self, *, masked: bool = False) -> JSONObject:
        """The ``put`` data shape of this snapshot, items as received.

        :param masked: mask every credential to its last 4 characters (``sdkKey``, its expiring
            key, ``mobKey`` and every ``value`` in ``sdkKeys``/``mobileKeys``), for an export a
            person may read; the result is a copy, the snapshot is unchanged. Field names are
            matched case-insensitively, as a Relay Proxy matches them. Such data cannot be
            imported back (:func:`autoconfig_cache.maintenance.parse_put_data` refuses it).
        """
        data: JSONObject = {
            "environments": {k: v.to_json() for k, v in self.environments.items()},
            "filters": {k: v.to_json() for k, v in self.filters.items()},
        }
        if masked:
            data = copy.deepcopy(data)
            for env in data["environments"].values():
                _mask_credentials(env)
        return data


def _mask_field(data: JSONObject, name: str) -> None:
    """Mask every string under a key of ``data`` that a Relay Proxy reads as the field ``name``.

    Go's JSON decoding matches field names case-insensitively, so a Relay Proxy v8 writes and
    reads the expiring SDK key as ``Expiring`` (``SDKKeyRep`` in ld-relay
    ``internal/envfactory/env_rep.go`` has no JSON tag there). Whatever the case, a credential is
    a credential: every variant is masked.
    """
    for key in go_field_names(data, name):
        if isinstance(data[key], str):
            data[key] = mask(data[key])


def _mask_credentials(env: JSONObject) -> None:
    """Mask, in place, every credential of an environment's JSON."""
    _mask_field(env, "mobKey")
    for sdk_name in go_field_names(env, "sdkKey"):
        sdk = env[sdk_name]
        if isinstance(sdk, dict):
            _mask_field(sdk, "value")
            for expiring_name in go_field_names(sdk, "expiring"):
                if isinstance(sdk[expiring_name], dict):
                    _mask_field(sdk[expiring_name], "value")
    # Concurrent keys: every entry's value is a credential. Only arrays that are there are
    # masked; none is synthesised, so the export keeps the item's shape.
    for field in ("sdkKeys", "mobileKeys"):
        for name in go_field_names(env, field):
            entries = env[name]
            if isinstance(entries, list):
                for entry in entries:
                    if isinstance(entry, dict):
                        _mask_field(entry, "value")

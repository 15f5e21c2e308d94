"""The handlers of ``autoconfig-cache cache ...``: open the configured cache, run the tool,
print its result.

Kept apart from the parser (``cache_cmds.py``), which every command builds: only a ``cache``
tool imports this module and what it needs (the maintenance API, the result tables, rich), so
that ``run`` does not pay for them at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import AutoConfigCache, InspectedRecord, StorageCreation
from ..codec import KeyDerivation, StorageFormat
from ..config import Config
from ..errors import (
    MaskedCredentialsError,
    NewerRecordsError,
    NotJSONError,
    NotPutDataError,
    UndecryptableRecordsError,
)
from ..maintenance import ValidatedPutData, on_previous_key, validate_put_data
from ..models import Environment, Filter, Tombstone
from ..records import parse_field
from ..secrets import mask, redact_url
from .common import NothingThereError, load_config
from .output import CommandFailed, err, made_console, message, out, print_json, shown
from .tables import Column, Fit, ResultTable

if TYPE_CHECKING:  # rich is imported by the commands that print, not by ``run`` (output.py)
    from rich.progress import Progress
    from rich.text import Text


# -- shared ---------------------------------------------------------------------------------------


def _open(args: argparse.Namespace, *, read_only: bool) -> tuple[Config, AutoConfigCache]:
    config = load_config(args)
    return config, config.open_cache(read_only=read_only)


def _with_cache(
    args: argparse.Namespace,
    work: Callable[[Config, AutoConfigCache], Awaitable[int]],
    *,
    read_only: bool = False,
) -> int:
    config, cache = _open(args, read_only=read_only)

    async def body() -> int:
        try:
            return await work(config, cache)
        finally:
            await cache.close()

    return asyncio.run(body())


def _require_something(config: Config, args: argparse.Namespace, found: int) -> None:
    """Stop a read-only tool that found no record (live or deleted) unless ``--allow-empty``.

    :raises NothingThereError: naming the store (secrets masked) and the cache key looked in.
    """
    if found or args.allow_empty:
        return
    raise NothingThereError(
        f"nothing is stored under cache key {config.cache_key!r} in "
        f"{config.redacted_store_url}: no database, table or record there (nothing was created). "
        "Check the store URL and the cache key (AUTO_CONFIG_CACHE_STORE or USE_<DATABASE>, "
        "AUTO_CONFIG_CACHE_KEY), or pass --allow-empty to accept an empty cache"
    )


def _where(config: Config) -> str:
    return f"{config.redacted_store_url} (cache key {config.cache_key!r}, format {config.format})"


def _key_label(cache: AutoConfigCache, key_id: str | None) -> str:
    if key_id is None:
        return "-"
    keys = cache.codec.keys
    if key_id == keys.current.key_id_hex:
        return f"{key_id} (current)"
    if any(key.key_id_hex == key_id for key in keys.previous):
        return f"{key_id} (previous)"
    return f"{key_id} (unknown)"


def _cached_at(entry: InspectedRecord) -> Text:
    return shown(entry.cached_at.strftime("%Y-%m-%d %H:%M:%S") if entry.cached_at else "-")


def _record_json(cache: AutoConfigCache, entry: InspectedRecord) -> dict[str, Any]:
    parsed = parse_field(entry.record.field)
    row: dict[str, Any] = {
        "field": entry.record.field,
        "kind": str(parsed[0]) if parsed else None,
        "id": parsed[1] if parsed else None,
        "storedVersion": entry.record.version,
        "version": entry.item.version if entry.item else None,
        "modelVersion": entry.model_version,
        "keyId": entry.key_id,
        # relay format: "hkdf" or "sha256", the key derivation that opened the record.
        "keyDerivation": str(entry.key_derivation) if entry.key_derivation else None,
        "onPreviousKey": on_previous_key(cache, entry),
        "cachedAt": entry.cached_at.isoformat() if entry.cached_at else None,
        "problem": entry.problem.to_json() if entry.problem else None,
        "deleted": isinstance(entry.item, Tombstone),
    }
    item = entry.item
    if isinstance(item, Environment):
        row.update(
            envKey=item.env_key,
            envName=item.env_name,
            projKey=item.proj_key,
            projName=item.proj_name,
            sdkKey=mask(item.sdk_key),
            mobKey=mask(item.mob_key),
            # The accepted sets, synthesised when the item has no arrays; values masked.
            sdkKeys=[key.to_json(masked=True) for key in item.sdk_keys],
            mobileKeys=[key.to_json(masked=True) for key in item.mobile_keys],
        )
    elif isinstance(item, Filter):
        row.update(projKey=item.proj_key, key=item.key)
    return row


def _inspect_with_progress(
    cache: AutoConfigCache, records: Sequence[Any], label: str
) -> list[InspectedRecord]:
    inspected: list[InspectedRecord] = []
    with _progress() as progress:
        task = progress.add_task(label, total=len(records))
        for record in records:
            inspected.extend(cache.inspect_records([record]))
            progress.advance(task)
    return inspected


def _progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=made_console(err),
        transient=True,
    )


# -- inspect ----------------------------------------------------------------------------------


def _inspect_columns(*, relay: bool) -> list[Column]:
    """``cache inspect``'s columns (docs/operations.md, "Output of the cache tools")."""
    return [
        Column("kind"),
        # 24 characters: a LaunchDarkly id whole; only a foreign field is ever cut.
        Column("id", Fit.ABBREVIATE, min_width=24),
        Column("key", Fit.ABBREVIATE, min_width=12),
        Column("names", Fit.WRAP, wide_only=True, min_width=16),
        Column("version", Fit.ABBREVIATE, min_width=10),
        Column("model", wide_only=True),
        Column("key id", wide_only=True),
        *((Column("derivation", wide_only=True),) if relay else ()),
        Column("cached at", wide_only=True),
        Column("sdk key", wide_only=True),
        Column("status"),
    ]


def _inspect_cells(cache: AutoConfigCache, entry: InspectedRecord, *, relay: bool) -> list[Text]:
    """One row of ``cache inspect``, every cell literal text: names, keys and ids come from
    LaunchDarkly data (or from whatever else wrote the store)."""
    parsed = parse_field(entry.record.field)
    item = entry.item
    if isinstance(item, Environment):
        key, names = f"{item.proj_key}/{item.env_key}", f"{item.proj_name} / {item.env_name}"
    elif isinstance(item, Filter):
        key, names = f"{item.proj_key}/{item.key}", "-"
    else:
        key, names = "-", "-"
    if entry.problem is not None:
        status = shown(entry.problem.reason, "red")
    elif isinstance(item, Tombstone):
        status = shown("deleted", "yellow")
    else:
        status = shown("ok", "green")
    version = item.version if item is not None else entry.record.version
    return [
        # The field's prefix (env, filter), as verify and import name items.
        shown(parsed[0].field_prefix if parsed else "?"),
        shown(parsed[1] if parsed else entry.record.field),
        shown(key),
        shown(names),
        shown(version),
        shown(entry.model_version if entry.model_version is not None else "-"),
        shown(_key_label(cache, entry.key_id)),
        *((shown(entry.key_derivation or "-"),) if relay else ()),
        _cached_at(entry),
        shown(mask(item.sdk_key) if isinstance(item, Environment) else "-"),
        status,
    ]


def run_inspect(args: argparse.Namespace) -> int:
    """Print every cached record: what it is, its versions, key id, age; secrets masked."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        records = await cache.get_records()
        _require_something(config, args, len(records))
        inspected = cache.inspect_records(records)
        inspected.sort(key=lambda entry: entry.record.field)
        if args.json:
            print_json(
                {
                    "store": config.redacted_store_url,
                    "cacheKey": config.cache_key,
                    "format": str(config.format),
                    "records": [_record_json(cache, entry) for entry in inspected],
                }
            )
            return 0
        relay = config.format is StorageFormat.RELAY
        table = ResultTable(_inspect_columns(relay=relay), wide=args.wide)
        for entry in inspected:
            table.add_row(*_inspect_cells(cache, entry, relay=relay))
        out.print(shown(f"{len(inspected)} cached item(s) in {_where(config)}"))
        table.print(out)
        return 0

    return _with_cache(args, work, read_only=True)


# -- verify -----------------------------------------------------------------------------------


#: ``cache verify``'s problem table (docs/operations.md, "Output of the cache tools").
_VERIFY_COLUMNS = (
    Column("field", Fit.ABBREVIATE, min_width=28),  # env:<24-character id> whole
    Column("problem"),
    Column("detail", Fit.WRAP, min_width=20),
    Column("stored version", Fit.ABBREVIATE, wide_only=True, min_width=10),
    Column("key id", wide_only=True),
    Column("cached at", wide_only=True),
)


def run_verify(args: argparse.Namespace) -> int:
    """Decrypt everything; exit 1 when any item cannot be used."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        records = await cache.get_records()
        _require_something(config, args, len(records))
        inspected = _inspect_with_progress(cache, records, "verifying")
        inspected.sort(key=lambda entry: entry.record.field)  # kind, then id: stable output
        problems = [entry for entry in inspected if entry.problem is not None]
        previous = [entry for entry in inspected if on_previous_key(cache, entry)]
        derivations = Counter(
            str(entry.key_derivation) for entry in inspected if entry.key_derivation
        )
        # Both relay key derivations in one store: every record loads here, but each Relay
        # Proxy release reads only one of them. A warning, not a failure (the exit status
        # stays 0): the next write of a `run` rewrites the minority (docs/operations.md).
        mixed = len(derivations) > 1
        if args.json:
            print_json(
                {
                    "ok": not problems,
                    "checked": len(inspected),
                    "problems": [p.problem.to_json() for p in problems if p.problem],
                    "onPreviousKey": [entry.record.field for entry in previous],
                    "relayKeyDerivations": {str(d): derivations[str(d)] for d in KeyDerivation},
                    "mixedKeyDerivations": mixed,
                }
            )
            return 1 if problems else 0
        if problems:
            table = ResultTable(_VERIFY_COLUMNS, wide=args.wide)
            for entry in problems:
                assert entry.problem is not None
                table.add_row(
                    shown(entry.record.field),
                    shown(entry.problem.reason),
                    shown(entry.problem.message),
                    shown(entry.record.version),
                    shown(_key_label(cache, entry.key_id)),
                    _cached_at(entry),
                )
            out.print(shown(f"{len(problems)} problem(s) in {_where(config)}"))
            table.print(out)
        if previous:
            out.print(
                shown(
                    f"{len(previous)} item(s) are encrypted under a previous key; "
                    "`autoconfig-cache cache rotate-key` re-encrypts them under the current key"
                )
            )
        if mixed:
            out.print(
                message(
                    ("warning", "yellow"),
                    f": the store holds both relay key derivations "
                    f"({derivations['hkdf']} item(s) under HKDF, {derivations['sha256']} under "
                    "SHA-256); a Relay Proxy reads only one: v9 and later v8 releases HKDF, "
                    "earlier v8 releases SHA-256. Set AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION to "
                    "the one your Relay Proxy uses",
                )
            )
        verdict = ("FAILED", "red") if problems else ("OK", "green")
        out.print(
            message(
                verdict,
                f": {len(inspected) - len(problems)} of {len(inspected)} item(s) decrypt and load",
            )
        )
        return 1 if problems else 0

    return _with_cache(args, work, read_only=True)


# -- export -----------------------------------------------------------------------------------


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, with mode 0600 from the first byte on."""
    directory = path.parent if str(path.parent) else Path(".")
    # mkstemp creates the file with mode 0600, so the secrets are never readable by others.
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _in_stable_order(data: dict[str, Any]) -> dict[str, Any]:
    """Put data with each kind's items sorted by id, so that two exports of the same data are
    the same bytes (backups diff well), whatever order the store returned the items in.

    Only the order that is ours changes: environments before filters, and the ids. Each item's
    JSON keeps the order it came with: a Relay Proxy reads a field named twice in different case
    (``expiring``, ``Expiring``) as the last one (Go's encoding/json), so sorting its keys could
    change what it reads.
    """
    return {kind: dict(sorted(items.items())) for kind, items in data.items()}


def run_export(args: argparse.Namespace) -> int:
    """Write the cached items as put data to stdout or ``-o FILE``."""
    target = Path(args.output) if args.output else None
    if target is not None and not target.parent.is_dir():
        raise CommandFailed(
            f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist"
        )

    async def work(config: Config, cache: AutoConfigCache) -> int:
        result = await cache.get_all()
        report = result.report
        _require_something(config, args, report.loaded + report.tombstones + len(report.skipped))
        snapshot = result.snapshot
        data = _in_stable_order(snapshot.to_put_data(masked=not args.include_secrets))
        text = json.dumps(data, indent=2) + "\n"
        for skipped in result.report.skipped:
            err.print(message(("skipped", "yellow"), f" {skipped.field}: {skipped.reason}"))
        if target is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                write_private_file(target, text.encode("utf-8"))
            except OSError as exc:
                raise CommandFailed(
                    f"cannot write {str(target)!r}: {exc.strerror or exc}"
                ) from None
            if args.json:
                print_json(
                    {
                        "file": str(target),
                        "environments": len(snapshot.environments),
                        "filters": len(snapshot.filters),
                        "masked": not args.include_secrets,
                        "skipped": [skipped.to_json() for skipped in report.skipped],
                    }
                )
            else:
                err.print(
                    shown(
                        f"exported {len(snapshot.environments)} environment(s) and "
                        f"{len(snapshot.filters)} filter(s) to {target} (mode 0600)"
                        + ("" if args.include_secrets else "; SDK and mobile keys masked")
                    )
                )
        return 0

    return _with_cache(args, work, read_only=True)


# -- import -----------------------------------------------------------------------------------


def read_put_data(path: str, *, skip_invalid: bool = False) -> ValidatedPutData:
    """Read and check a whole export file before anything is written.

    :param skip_invalid: return the invalid items beside the valid ones; otherwise any invalid
        item is an error (every problem counted, the first ones named) and nothing is written.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandFailed(f"cannot read {path!r}: {reason}") from None
    shape = 'put data {"environments": {...}, "filters": {...}} as written by `cache export`'
    try:
        validated = validate_put_data(text)
    except NotJSONError as exc:
        raise CommandFailed(f"{path!r} is not JSON ({exc.detail}); nothing was written") from None
    except NotPutDataError as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        raise CommandFailed(f"{path!r} is not {shape}{detail}; nothing was written") from None
    except MaskedCredentialsError as exc:
        raise CommandFailed(
            f"{path!r} holds masked keys (environments {', '.join(exc.env_ids[:5])}): it was "
            "exported without --include-secrets; export again with --include-secrets to import "
            "it. Nothing was written"
        ) from None
    problems = validated.invalid
    if problems and not skip_invalid:
        # Messages name items by their ids escaped (repr); main() escapes the rest of the line.
        details = "; ".join(str(problem) for problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CommandFailed(
            f"{path!r} has {len(problems)} malformed item(s): {details}{more}; nothing was "
            "written (--skip-invalid writes the valid items and lists every invalid one)"
        ) from None
    return validated


def run_import(args: argparse.Namespace) -> int:
    """Upsert every item of an export file; an item the store holds at the same or a newer
    version is skipped. Exit status 1 when ``--skip-invalid`` left invalid items out."""
    validated = read_put_data(args.file, skip_invalid=args.skip_invalid)
    snapshot, invalid = validated.snapshot, validated.invalid

    async def work(config: Config, cache: AutoConfigCache) -> int:
        written: list[str] = []
        skipped: list[str] = []
        with _progress() as progress:
            task = progress.add_task("importing", total=len(snapshot))
            # Kind, then id: the lists printed below are the same for the same file contents.
            for item in sorted(
                snapshot.items(), key=lambda item: (item.kind.field_prefix, item.id)
            ):
                name = f"{item.kind.field_prefix}:{item.id}"
                (written if await cache.upsert(item) else skipped).append(name)
                progress.advance(task)
        if args.json:
            result: dict[str, Any] = {"written": written, "skipped": skipped}
            if args.skip_invalid:
                result["invalid"] = [str(problem) for problem in invalid]
            print_json(result)
        else:
            out.print(
                shown(
                    f"imported into {_where(config)}: {len(written)} item(s) written, "
                    f"{len(skipped)} skipped (the store holds the same or a newer version)"
                    + (f", {len(invalid)} invalid item(s) left out" if invalid else "")
                )
            )
            for name in skipped:
                out.print(shown(f"  skipped {name}"))
        for problem in invalid:
            err.print(message(("invalid", "yellow"), f" (not written): {problem}"))
        return 1 if invalid else 0

    return _with_cache(args, work)


# -- rotate-key -------------------------------------------------------------------------------


def run_rotate_key(args: argparse.Namespace) -> int:
    """Re-encrypt every item under the current key (see the module docstring)."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        try:
            with _progress() as progress:
                progress.add_task("re-encrypting", total=None)
                result = await cache.rotate_keys(drop_undecryptable=args.drop_undecryptable)
        except UndecryptableRecordsError as exc:
            raise CommandFailed(
                f"{len(exc.fields)} item(s) cannot be decrypted with the configured keys "
                f"({_fields(exc.fields)}); nothing was changed. Add the key that encrypted them "
                "to AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS, or pass --drop-undecryptable to "
                "delete them (the next stream put writes them again)"
            ) from None
        except NewerRecordsError as exc:
            raise CommandFailed(
                f"{len(exc.fields)} item(s) were written by a newer release of autoconfig-cache, "
                f"which this one cannot re-encrypt ({_fields(exc.fields)}); nothing was changed. "
                "Rotate the key with that release, or pass --drop-undecryptable to re-encrypt "
                "the rest and keep those as they are"
            ) from None
        if args.json:
            # The lists in field order (the store's order is arbitrary): stable output.
            fields = {"dropped": sorted(result.dropped), "keptNewer": sorted(result.kept_newer)}
            print_json({**result.to_json(), **fields})
        else:
            out.print(
                shown(
                    f"re-encrypted {result.reencrypted} item(s) in {_where(config)} under the "
                    f"current key ({result.were_on_previous_key} were under a previous key)"
                )
            )
            if result.dropped:
                out.print(shown(f"dropped {len(result.dropped)} undecryptable item(s)"))
            if result.kept_newer:
                out.print(
                    shown(
                        f"kept {len(result.kept_newer)} item(s) written by a newer release as "
                        "they are, under the key that wrote them: "
                        + ", ".join(sorted(result.kept_newer))
                    )
                )
        return 0

    return _with_cache(args, work)


def _fields(fields: Sequence[str]) -> str:
    """At most ten field names, then `` ...``."""
    return ", ".join(fields[:10]) + (" ..." if len(fields) > 10 else "")


# -- clear ------------------------------------------------------------------------------------


def run_clear(args: argparse.Namespace) -> int:
    """Delete every item under the cache key, after confirmation."""
    config = load_config(args)
    config.require_store()
    if not args.yes:
        err.print(
            shown(f"Delete every cached item in {_where(config)}? Type 'yes' to confirm: "), end=""
        )
        answer = sys.stdin.readline().strip().lower()
        if not sys.stdin.isatty():
            err.print()  # the answer was not echoed: end the question's line
        if answer not in ("y", "yes"):
            raise CommandFailed(
                "not confirmed; nothing was deleted (use --yes to skip the question)"
            )

    async def work(config: Config, cache: AutoConfigCache) -> int:
        count = len(await cache.get_records())
        await cache.clear()
        if args.json:
            print_json(
                {"store": config.redacted_store_url, "cacheKey": config.cache_key, "cleared": count}
            )
        else:
            out.print(shown(f"cleared {count} item(s) from {_where(config)}"))
        return 0

    return _with_cache(args, work)


# -- create-table -----------------------------------------------------------------------------


def run_create_table(args: argparse.Namespace) -> int:
    """Create the store's backing table where the store supports it."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        result = await cache.create_storage()
        if args.json:
            print_json(
                {
                    "store": config.redacted_store_url,
                    "scheme": config.store_scheme,
                    "result": result.value,
                }
            )
            return 0
        where = redact_url(config.store_url or "")
        if result is StorageCreation.CREATED:
            out.print(shown(f"created the storage of {where}"))
        elif result is StorageCreation.EXISTS:
            out.print(shown(f"the storage of {where} already exists; nothing was changed"))
        else:
            out.print(
                shown(
                    f"the {config.store_scheme} store has nothing to create: it creates what it "
                    "needs on first use"
                )
            )
        return 0

    return _with_cache(args, work)

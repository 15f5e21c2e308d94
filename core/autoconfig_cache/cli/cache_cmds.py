"""``autoconfig-cache cache ...``: operator tools on the cache that ``run`` uses.

The store, cache key, keys and format come from the same configuration as ``run`` (environment
variables and ``--config``), so the tools always look at what the service reads and writes.

Key rotation, masked export and import validation are library API
(:mod:`autoconfig_cache.maintenance`, :meth:`AutoConfigCache.rotate_keys`,
``Snapshot.to_put_data(masked=True)``); this module reads the arguments and files, shows progress
and prints the results (docs/operations.md has the rotation procedure).
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
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from ..cache import AutoConfigCache, InspectedRecord
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
from .common import load_config
from .output import CommandFailed, err, message, out, print_json, shown


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register ``cache`` and its subcommands."""
    cache = subparsers.add_parser(
        "cache",
        parents=[common],
        help="inspect, verify, export, import, rotate-key, clear, create-table",
        description="Tools on the configured cache (same settings as `run`).",
    )
    tools = cache.add_subparsers(dest="cache_command", metavar="TOOL", required=True)

    def tool(name: str, func: Callable[[argparse.Namespace], int], help: str) -> Any:
        parser = tools.add_parser(name, parents=[common], help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    inspect = tool("inspect", run_inspect, "show what is cached; secrets masked")
    inspect.add_argument("--json", action="store_true", help="print JSON for scripts")

    verify = tool(
        "verify",
        run_verify,
        "decrypt every item; report undecryptable, tampered, malformed or unknown-version items, "
        "foreign data and invalid stored versions (exit 1 if any)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON for scripts")

    export = tool(
        "export",
        run_export,
        'write the cached data as AutoConfig put data {"environments":{...},"filters":{...}}',
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (mode 0600) instead of stdout"
    )
    export.add_argument(
        "--include-secrets",
        action="store_true",
        help="keep SDK and mobile keys in clear (needed for a file you mean to import)",
    )

    import_ = tool(
        "import", run_import, "write items from an export file (version-guarded upserts)"
    )
    import_.description = (
        "Write items from an export file (version-guarded upserts: an item the store holds at "
        "the same or a newer version is skipped). The whole file is checked first. If any item "
        "is invalid (a missing or mistyped field, an id or a version no store can hold, a lone "
        "surrogate), nothing is written and the problems are named (exit 1); with "
        "--skip-invalid the valid items are written and every invalid one is listed (still "
        "exit 1). A file that is not JSON, nests deeper than 1024 levels, holds a number over "
        "4300 digits or holds masked keys is refused as a whole."
    )
    import_.add_argument("file", metavar="FILE", help="JSON put data, as written by export")
    import_.add_argument("--json", action="store_true", help="print JSON for scripts")
    import_.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the valid items and list the invalid ones instead of refusing the file; "
        "exits 1 when any item was left out",
    )

    rotate = tool(
        "rotate-key", run_rotate_key, "re-encrypt every item under the current encryption key"
    )
    rotate.add_argument(
        "--drop-undecryptable",
        action="store_true",
        help="delete items no configured key decrypts (otherwise nothing is changed)",
    )
    rotate.add_argument("--json", action="store_true", help="print JSON for scripts")

    clear = tool("clear", run_clear, "delete every item under the cache key")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    tool("create-table", run_create_table, "create the store's table, where the store has one")


# -- shared ---------------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> tuple[Config, AutoConfigCache]:
    config = load_config(args)
    return config, config.open_cache()


def _with_cache(
    args: argparse.Namespace, work: Callable[[Config, AutoConfigCache], Awaitable[int]]
) -> int:
    config, cache = _open(args)

    async def body() -> int:
        try:
            return await work(config, cache)
        finally:
            await cache.close()

    return asyncio.run(body())


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
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )


# -- inspect ----------------------------------------------------------------------------------


def run_inspect(args: argparse.Namespace) -> int:
    """Print every cached record: what it is, its versions, key id, age; secrets masked."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        inspected = cache.inspect_records(await cache.get_records())
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
        table = Table(title=shown(f"{len(inspected)} cached item(s) in {_where(config)}"))
        relay = config.format is StorageFormat.RELAY
        for column in (
            "kind",
            "id",
            "key",
            "names",
            "version",
            "model",
            "key id",
            *(("derivation",) if relay else ()),
            "cached at",
            "sdk key",
            "status",
        ):
            table.add_column(column, overflow="fold")
        for entry in inspected:
            row = _record_json(cache, entry)
            item = entry.item
            if isinstance(item, Environment):
                key, names = (
                    f"{item.proj_key}/{item.env_key}",
                    f"{item.proj_name} / {item.env_name}",
                )
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
            # Every cell is literal text: names, keys and ids come from LaunchDarkly data.
            table.add_row(
                shown(row["kind"] or "?"),
                shown(row["id"] or entry.record.field),
                shown(key),
                shown(names),
                shown(row["version"] if row["version"] is not None else entry.record.version),
                shown(entry.model_version if entry.model_version is not None else "-"),
                shown(_key_label(cache, entry.key_id)),
                *((shown(row["keyDerivation"] or "-"),) if relay else ()),
                shown(entry.cached_at.strftime("%Y-%m-%d %H:%M:%S") if entry.cached_at else "-"),
                shown(row.get("sdkKey") or "-"),
                status,
            )
        out.print(table)
        return 0

    return _with_cache(args, work)


# -- verify -----------------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    """Decrypt everything; exit 1 when any item cannot be used."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        records = await cache.get_records()
        inspected = _inspect_with_progress(cache, records, "verifying")
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
            table = Table(title=shown(f"{len(problems)} problem(s) in {_where(config)}"))
            for column in ("field", "problem", "detail"):
                table.add_column(column, overflow="fold")
            for entry in problems:
                assert entry.problem is not None
                table.add_row(
                    shown(entry.record.field),
                    shown(entry.problem.reason),
                    shown(entry.problem.message),
                )
            out.print(table)
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

    return _with_cache(args, work)


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


def run_export(args: argparse.Namespace) -> int:
    """Write the cached items as put data to stdout or ``-o FILE``."""
    target = Path(args.output) if args.output else None
    if target is not None and not target.parent.is_dir():
        raise CommandFailed(
            f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist"
        )

    async def work(config: Config, cache: AutoConfigCache) -> int:
        result = await cache.get_all()
        snapshot = result.snapshot
        data = snapshot.to_put_data(masked=not args.include_secrets)
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
            err.print(
                shown(
                    f"exported {len(snapshot.environments)} environment(s) and "
                    f"{len(snapshot.filters)} filter(s) to {target} (mode 0600)"
                    + ("" if args.include_secrets else "; SDK and mobile keys masked")
                )
            )
        return 0

    return _with_cache(args, work)


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
            for item in snapshot.items():
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
            print_json(result.to_json())
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
                        "they are, under the key that wrote them: " + ", ".join(result.kept_newer)
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
        out.print(shown(f"cleared {count} item(s) from {_where(config)}"))
        return 0

    return _with_cache(args, work)


# -- create-table -----------------------------------------------------------------------------


def run_create_table(args: argparse.Namespace) -> int:
    """Create the store's backing table where the store supports it."""

    async def work(config: Config, cache: AutoConfigCache) -> int:
        if await cache.create_storage():
            out.print(shown(f"created the storage of {redact_url(config.store_url or '')}"))
        else:
            out.print(
                shown(
                    f"the {config.store_scheme} store has nothing to create: it creates what it "
                    "needs on first use"
                )
            )
        return 0

    return _with_cache(args, work)

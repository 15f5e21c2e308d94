"""``autoconfig-cache demo``: an outage and a recovery, end to end, on this machine only.

Everything runs in this process, on loopback ports the operating system picks (never fixed
ports, never the network): the bundled local AutoConfig stream server stands in for
LaunchDarkly, and instances of the real service (:class:`~autoconfig_cache.service.runner.Service`:
stream manager + SQLite cache + status server) run against it. Every claim the timeline makes is
checked through the instances' own HTTP endpoints (``/readyz``, ``/status``) or by reading the
cache file back; a check that fails ends the demo with exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from rich.table import Table
from rich.text import Text

from ..cache import AutoConfigCache
from ..config import Config
from ..errors import DemoFailed
from ..project import docs_page
from ..service.runner import Service
from ..stream.client import BackoffPolicy
from ..stream.server import StreamServer
from .data import environment_json, sample_put_data
from .keep import inspect_command, shown_settings, write_env_file
from .output import err, out

__all__ = ["DemoFailed", "environment_json", "run_demo", "sample_put_data"]

#: Seconds any one step may take before the demo gives up (each normally takes well under 1 s).
STEP_TIMEOUT = 20.0
#: Fast reconnection so that the recovery shows within a second (production uses 1 s to 30 s).
DEMO_BACKOFF = BackoffPolicy(base=0.2, maximum=0.5, jitter=0.5, reset_after=60.0)
CACHE_KEY = "demo"
#: The SQLite file in the demo's folder.
DB_NAME = "autoconfig-cache.db"


class _Timeline:
    def __init__(self) -> None:
        self.out = out
        self.started = time.monotonic()

    async def step(self, title: str) -> None:
        if self.out.is_terminal:
            await asyncio.sleep(0.6)  # a person reads along; scripts and tests do not wait
        elapsed = time.monotonic() - self.started
        self.out.print(f"\n[dim]+{elapsed:5.2f}s[/dim]  [bold cyan]{title}[/bold cyan]")

    def note(self, text: str, ok: bool = True) -> None:
        mark = "[green]✓[/green]" if ok else "[yellow]•[/yellow]"
        self.out.print(f"         {mark} {text}")


class _Instance:
    """A service instance and an HTTP client for its endpoints."""

    def __init__(self, name: str, service: Service, http: aiohttp.ClientSession) -> None:
        self.name = name
        self.service = service
        self.http = http

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as response:
            return response.status, await response.json()

    async def status(self) -> dict[str, Any]:
        _, body = await self.get("/status")
        result: dict[str, Any] = body
        return result


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {STEP_TIMEOUT:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def _environments_table(status: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in ("project", "environment", "name", "version", "SDK key"):
        table.add_column(column)
    for env in sorted(status["environments"].values(), key=lambda e: (e["projKey"], e["envKey"])):
        # Values from data are text, never rich markup (a name like "[/]" would raise).
        table.add_row(
            *(Text(str(env[field])) for field in ("projKey", "envKey", "envName", "version")),
            Text(str(env["sdkKey"])),
        )
    return table


def _cache_settings(folder: Path) -> dict[str, str]:
    """The environment variables of the demo's cache: a fresh throwaway AutoConfig key (the
    cache's encryption key too, as in the Relay Proxy), an SQLite file in ``folder``."""
    return {
        "AUTO_CONFIG_CACHE_STORE": f"sqlite://{folder / DB_NAME}",
        "AUTO_CONFIG_CACHE_KEY": CACHE_KEY,
        "AUTO_CONFIG_KEY": f"rel-{secrets.token_hex(16)}",
    }


async def _demo(folder: Path, settings: dict[str, str]) -> float:
    timeline = _Timeline()
    out = timeline.out
    autoconfig_key = settings["AUTO_CONFIG_KEY"]
    data = sample_put_data(environments=6, filters=2)
    env_ids = list(data["environments"])
    db = folder / DB_NAME

    out.print("[bold]autoconfig-cache demo[/bold]: LaunchDarkly goes down, the cache keeps you up.")
    out.print(f"[dim]SQLite cache: {db}; everything runs on 127.0.0.1.[/dim]")

    # Everything started is closed however the demo ends, Ctrl-C (the main task cancelled)
    # included: the services first, then the stream server (close is idempotent for both).
    async with contextlib.AsyncExitStack() as running:
        server = await running.enter_async_context(
            StreamServer(data, autoconfig_key=autoconfig_key, heartbeat_interval=1.0)
        )
        config = Config.load(environ={**settings, "STREAM_URI": server.uri})

        def new_service(service_config: Config = config) -> Service:
            service = Service(service_config, port=0, host="127.0.0.1", backoff=DEMO_BACKOFF)
            running.push_async_callback(service.close)
            return service

        await _run_timeline(timeline, server, config, new_service, data, env_ids)
    return time.monotonic() - timeline.started


async def _run_timeline(
    timeline: _Timeline,
    server: StreamServer,
    config: Config,
    new_service: Callable[..., Service],
    data: dict[str, Any],
    env_ids: list[str],
) -> None:
    out = timeline.out
    autoconfig_key = server.autoconfig_key
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await timeline.step("LaunchDarkly is up")
        timeline.note(
            f"local AutoConfig stream at {server.uri} with {len(data['environments'])} "
            f"environments and {len(data['filters'])} payload filters"
        )

        # -- 1. a first instance starts normally ----------------------------------------
        await timeline.step("Instance A starts")
        a = _Instance("A", new_service(), http)
        await a.service.start()
        await _until(lambda: _ready(a), "instance A to be ready")
        status = await a.status()
        timeline.note(f"/readyz 200 — configuration from the [bold]{status['source']}[/bold]")
        await _until(lambda: _written(a), "instance A to write the cache")
        timeline.note(f"cache written to SQLite (format {status['store']['format']}, encrypted)")
        out.print(_environments_table(await a.status(), "         what instance A serves"))

        # -- 2. LaunchDarkly goes down ----------------------------------------------------
        await timeline.step("LaunchDarkly goes down")
        server.reject_with = 503
        await server.drop_connections()
        await _until(lambda: _disconnected(a), "instance A to see the stream drop")
        timeline.note("the stream is gone; new connections get HTTP 503", ok=False)
        code, _ = await a.get("/readyz")
        timeline.note(f"instance A keeps serving what it holds: /readyz {code}")

        # -- 3. a fresh instance starts during the outage ---------------------------------
        await timeline.step(
            "Instance A is replaced by a fresh instance B (LaunchDarkly still down)"
        )
        await a.service.close()
        timeline.note("instance A stopped")
        b = _Instance("B", new_service(), http)
        started = time.monotonic()
        await b.service.start()
        await _until(lambda: _ready(b), "instance B to be ready from the cache")
        took = (time.monotonic() - started) * 1000
        status = await b.status()
        if status["source"] != "cache":
            raise DemoFailed(f"instance B became ready from {status['source']}, not the cache")
        timeline.note(
            f"/readyz 200 after {took:.0f} ms — from the [bold]cache[/bold], "
            f"{len(status['environments'])} environments, data age "
            f"{status['cache']['ageSeconds']:.1f} s"
        )
        c_config = Config.load(
            environ={"AUTO_CONFIG_KEY": autoconfig_key, "STREAM_URI": server.uri}
        )
        c = _Instance("C", new_service(c_config), http)
        await c.service.start()
        await _until(lambda: _stream_failed(c), "instance C to try the stream")
        code, _ = await c.get("/readyz")
        await c.service.close()
        if code != 503:
            raise DemoFailed(f"an instance without a cache answered /readyz {code}, not 503")
        timeline.note(
            "for comparison, an instance [bold]without[/bold] a cache answers /readyz 503 "
            "until LaunchDarkly is back",
            ok=False,
        )

        # -- 4. LaunchDarkly changes while down, then returns ----------------------------
        await timeline.step("Meanwhile, in LaunchDarkly")
        changed, removed = env_ids[1], env_ids[2]
        before = status["environments"]
        new_data = sample_put_data(environments=6, filters=2)
        new_data["environments"][changed] = environment_json(
            changed,
            proj_key=before[changed]["projKey"],
            proj_name=before[changed]["projName"],
            env_key=before[changed]["envKey"],
            env_name="Staging (EU)",
            version=2,
        )
        del new_data["environments"][removed]
        added = "0006billprod000000000000"
        new_data["environments"][added] = environment_json(
            added, proj_key="billing", proj_name="Billing", version=1
        )
        server.set_snapshot(new_data)
        timeline.note(f"{_label(before[changed])} renamed to 'Staging (EU)' (version 2)", ok=False)
        timeline.note(f"{_label(before[removed])} deleted", ok=False)
        timeline.note("billing/production added", ok=False)

        await timeline.step("LaunchDarkly comes back")
        server.reject_with = None
        await _until(lambda: _reconciled(b, changed, removed, added), "instance B to reconcile")
        status = await b.status()
        timeline.note("instance B reconnected; the stream's put is authoritative")
        timeline.note(
            f"source is now the [bold]{status['source']}[/bold]: 1 updated, 1 deleted, 1 added"
        )
        await _until(
            lambda: _cache_holds(config, changed, removed, added), "the cache to be updated"
        )
        timeline.note("the SQLite cache holds the new configuration (read back and checked)")
        out.print(_environments_table(status, "         what instance B serves now"))
        await b.service.close()


def _label(env: dict[str, Any]) -> str:
    return f"{env['projKey']}/{env['envKey']}"


async def _ready(instance: _Instance) -> bool:
    code, _ = await instance.get("/readyz")
    return code == 200


async def _written(instance: _Instance) -> bool:
    status = await instance.status()
    return status["store"]["lastSuccessfulWrite"] is not None


async def _stream_failed(instance: _Instance) -> bool:
    status = await instance.status()
    return status["stream"]["error"] is not None


async def _disconnected(instance: _Instance) -> bool:
    status = await instance.status()
    return not status["stream"]["connected"]


async def _reconciled(instance: _Instance, changed: str, removed: str, added: str) -> bool:
    status = await instance.status()
    envs = status["environments"]
    return (
        status["source"] == "stream"
        and envs.get(changed, {}).get("version") == 2
        and removed not in envs
        and added in envs
    )


async def _cache_holds(config: Config, changed: str, removed: str, added: str) -> bool:
    store_url, cache_key = config.require_store()
    async with AutoConfigCache.open(
        store_url, cache_key=cache_key, encryption_key=config.effective_encryption_key
    ) as cache:
        result = await cache.get_all()
    envs = result.snapshot.environments
    return changed in envs and envs[changed].version == 2 and removed not in envs and added in envs


def run_demo(*, keep: bool = False, verbose: bool = False) -> int:
    """Run the demo; 0 when every step did what it shows, 1 otherwise.

    Ctrl-C stops it: the services and the stream server are closed as the main task is
    cancelled, the folder is removed (or kept), and ``KeyboardInterrupt`` goes on to the
    command line, which exits 130.

    :param keep: keep the temporary folder (its SQLite file and ``demo.env``, which holds the
        settings to inspect the cache with) and print how to use it.
    :param verbose: keep the library's own log lines (otherwise only errors are logged).
    """
    if not verbose:
        # The timeline tells the story; the stream client's reconnect warnings would repeat it.
        logging.getLogger("autoconfig_cache").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="autoconfig-cache-demo-"))
    settings = _cache_settings(folder)
    # Written first, so that a kept folder always comes with its settings (after a failure or
    # Ctrl-C too).
    env_file = write_env_file(folder, settings) if keep else None
    try:
        elapsed = asyncio.run(_demo(folder, settings))
    except DemoFailed as exc:
        err.print(f"[red]demo failed:[/red] {exc}")
        return 1
    finally:
        if env_file is not None:
            _print_kept(folder, env_file, settings)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    out.print(
        f"\n[bold green]Done in {elapsed:.1f} s.[/bold green] Next: point `autoconfig-cache run` "
        f"at your AutoConfig key and store: {docs_page('configuration.md')}",
        soft_wrap=True,  # the URL stays on one line, whole, to be copied
    )
    return 0


def _print_kept(folder: Path, env_file: Path, settings: dict[str, str]) -> None:
    # Paths and values as plain text (markup=False): a "[" in TMPDIR is not rich markup.
    out.print(f"\nKept {folder}", markup=False)
    out.print(
        f"  {env_file.name} (mode 0600) holds its settings, the demo's throwaway key included:",
        markup=False,
    )
    for line in shown_settings(settings):
        out.print(f"    {line}", soft_wrap=True, markup=False)
    out.print("  Inspect the kept cache with:", markup=False)
    out.print(f"    {inspect_command(env_file)}", soft_wrap=True, markup=False)

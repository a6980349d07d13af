"""The `smarteye` command line."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from edge.config.node import EdgeConfig
from edge.detect.commands import models_app
from smarteye.config.loading import ConfigError, load_layered

# Environment overrides, e.g. SMARTEYE_EDGE_MQTT__URL=mqtts://broker:8883 or SMARTEYE_STATION_WEB__PORT=8443.
EDGE_ENV_PREFIX = "SMARTEYE_EDGE_"
STATION_ENV_PREFIX = "SMARTEYE_STATION_"

# Options several commands take, spelled and explained once.
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
DatabaseUrl = Annotated[str | None, typer.Option(help="sqlite:///path or postgresql+psycopg://…")]

app = typer.Typer(
    help="SmartEye: edge video-AI for drones and site cameras.", no_args_is_help=True, pretty_exceptions_enable=False
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for chatty in ("aioice", "aiortc"):  # every ICE check at INFO would drown the node's own log
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def _fail(message: str, code: int = 2) -> NoReturn:
    for line in message.splitlines():
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the node the same clean way as Ctrl-C."""
    raise KeyboardInterrupt


def _exit_after_clean_stop() -> None:
    """Everything is stopped, flushed and closed: exit now.  The interpreter's own teardown (a final
    garbage collection over torch's and ultralytics' objects, module cleanup) took 3-11 s on a busy
    machine, on top of a stop that takes well under a second; a service manager waits for it."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def quick_config(sources: list[str], model: str | None, mqtt: str | None, node: str | None) -> dict:
    """A config mapping from the quick-start flags; `--source name=URL` names a stream."""
    entries = []
    for index, text in enumerate(sources, start=1):
        name, sep, url = text.partition("=")
        if not sep or "://" in name or not name:
            name, url = f"cam{index}", text
        entries.append({"name": name, "url": url})
    data: dict = {"sources": entries} if entries else {}
    if node:
        data["node"] = node
    if model:
        data["detector"] = {"model": model}
    if mqtt:
        data["mqtt"] = {"url": mqtt}
    return data


@app.command()
def edge(
    config: ConfigFile = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="URL or name=URL (repeatable).")] = None,
    model: Annotated[str | None, typer.Option(help="Model file or name (e.g. yolov8n.pt).")] = None,
    mqtt: Annotated[str | None, typer.Option(help="Broker URL, mqtt://HOST:PORT.")] = None,
    node: Annotated[str | None, typer.Option(help="Node name.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run an edge node: sources → YOLO → tracking → MQTT events."""
    _setup_logging(log_level)
    if config is None and not source:
        _fail("give --config FILE or at least one --source URL")
    try:
        cfg = load_layered(EdgeConfig, config, quick_config(source or [], model, mqtt, node), EDGE_ENV_PREFIX)
    except ConfigError as error:
        _fail(str(error))

    from edge.detect.detector import ModelError
    from edge.factory import build_node

    try:
        edge_node = build_node(cfg)
    except (ModelError, ConfigError) as error:
        _fail(str(error))
        return
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            edge_node.run_forever()
        except RuntimeError as error:
            _fail(str(error))
    _exit_after_clean_stop()


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level of the components.")] = "warning",
) -> None:
    """The whole system on embedded defaults and the sample media, with live events in the terminal."""
    _setup_logging(log_level)
    from smarteye.demo import run_demo

    try:
        run_demo(duration)
    except (FileNotFoundError, RuntimeError, ConfigError) as error:
        _fail(str(error))


@app.command()
def doctor(
    mqtt: Annotated[str, typer.Option(help="Broker URL to check, mqtt://HOST:PORT.")] = "mqtt://127.0.0.1:1883",
) -> None:
    """Check this machine for the main job: broker, ffmpeg, RTSP server, model and runtime, media, ports, clock."""
    from rich.console import Console

    from smarteye.doctor import exit_code, render, run_checks

    checks = run_checks(mqtt)
    Console(width=max(Console().width, 140)).print(render(checks))
    code = exit_code(checks)
    typer.echo("the main job cannot run: fix the FAIL rows" if code else "ready: run `smarteye demo`", err=bool(code))
    raise typer.Exit(code)


assets_app = typer.Typer(help="Models and sample media: what is here, and fetching the rest.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(models_app, name="models")  # smarteye models export|bench (edge/detect/commands.py)


@assets_app.command("list")
def assets_list() -> None:
    """Each model and sample video: where it is, or what is missing and how to add it."""
    from edge.assets import asset_states, how_to_add

    for state in asset_states():
        entry = state.entry
        where = str(state.path) if state.path else f"MISSING ({entry.used_for}): {how_to_add(entry.name, entry.kind)}"
        typer.echo(f"{entry.kind}/{entry.name:<26} {where}")


@assets_app.command("fetch")
def assets_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: every missing one).")] = None,
) -> None:
    """Download the missing models and sample media from their public sources (checked by SHA-256)."""
    from edge.assets import AssetMissing, asset_states, download
    from edge.assets_catalog import CATALOG, catalog_entry

    wanted = names or [s.entry.name for s in asset_states() if not s.present]
    unknown = [n for n in wanted if catalog_entry(n) is None]
    if unknown:
        _fail(f"unknown asset(s) {', '.join(unknown)}: one of {', '.join(a.name for a in CATALOG)}")
    failed = False
    for name in wanted:
        entry = catalog_entry(name)
        assert entry is not None
        try:
            typer.echo(f"{entry.kind}/{name}: {download(entry)}")
        except AssetMissing as error:
            typer.echo(f"error: {error}", err=True)
            failed = True
    if not wanted:
        typer.echo("every asset is present (smarteye assets list)")
    raise typer.Exit(1 if failed else 0)


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("docs/schemas"),
) -> None:
    """Write the JSON Schema of every MQTT message and of the edge config."""
    import json

    from smarteye.wire.messages import write_json_schemas

    paths = write_json_schemas(out)
    config_path = out / "edge-config.schema.json"
    config_path.write_text(json.dumps(EdgeConfig.model_json_schema(), indent=2, sort_keys=True) + "\n")
    for path in [*paths, config_path]:
        typer.echo(str(path))


ground_station_app = typer.Typer(help="The ground station: store, API and web UI for every edge node.",
                                  no_args_is_help=True)  # fmt: skip
app.add_typer(ground_station_app, name="ground-station")


def _ground_config(
    config: Path | None, database: str | None, mqtt: str | None, port: int | None, tls_self_signed: bool = False
) -> Any:
    from ground_station.config import GroundStationConfig

    overrides: dict[str, Any] = {"database_url": database} if database else {}
    if mqtt:
        overrides["mqtt"] = {"url": mqtt}
    if port:
        overrides["web"] = {"port": port}
    if tls_self_signed:
        overrides.setdefault("web", {})["tls_self_signed"] = True
    return load_layered(GroundStationConfig, config, overrides, STATION_ENV_PREFIX)


@ground_station_app.command("run")
def ground_station_run(
    config: ConfigFile = None,
    database: DatabaseUrl = None,
    mqtt: Annotated[str | None, typer.Option(help="Broker URL, mqtt://HOST:PORT.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port of the web UI and API.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    tls_self_signed: Annotated[
        bool, typer.Option(help="Serve HTTPS with a self-signed certificate, made on first run (web.tls_dir).")
    ] = False,
) -> None:
    """Run the ground station: aggregate every node over MQTT, store, serve the API and web UI."""
    _setup_logging(log_level)
    try:
        cfg = _ground_config(config, database, mqtt, port, tls_self_signed)
    except ConfigError as error:
        _fail(str(error))
        return
    from ground_station.service import GroundStation
    from ground_station.web.tls import TlsConfigError

    try:
        station = GroundStation(cfg)
    except TlsConfigError as error:  # a certificate file that is missing or not PEM: name the setting
        _fail(str(error))
        return
    if station.accounts.count_admins() == 0:
        typer.echo(
            "note: no admin yet; create one with: smarteye ground-station create-user NAME --role admin", err=True
        )
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        station.run_forever()
    _exit_after_clean_stop()


T = TypeVar("T")


def _account_change(config: Path | None, database: str | None, role: str, change: Callable[..., T]) -> tuple[T, str]:
    """Validate config and role, then run `change(accounts, role)` against the configured store."""
    from ground_station.auth.accounts import AccountError, Accounts
    from ground_station.auth.roles import Role
    from ground_station.store.store import Store

    try:
        cfg = _ground_config(config, database, None, None)
        chosen = Role(role)
    except ConfigError as error:
        _fail(str(error))
    except ValueError:
        _fail(f"--role {role!r}: choose one of {', '.join(r.value for r in Role)}")
    store = Store(cfg.database_url)
    try:
        return change(Accounts(store.engine), chosen), cfg.redacted_database_url
    except AccountError as error:
        _fail(str(error))
    finally:
        store.close()


@ground_station_app.command("create-user")
def ground_station_create_user(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, pilot, supervisor or viewer.")] = "viewer",
    config: ConfigFile = None,
    database: DatabaseUrl = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a user (the first admin too). The password is asked for, never defaulted."""

    def create(accounts: Any, chosen: Any) -> None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        accounts.create_user(username, password, chosen)

    _, where = _account_change(config, database, role, create)
    typer.echo(f"created {role} {username!r} in {where}")


@ground_station_app.command("create-token")
def ground_station_create_token(
    name: Annotated[str, typer.Argument(help="Its name; for an edge node's video uplink, the node's name.")],
    role: Annotated[str, typer.Option(help="edge (an edge node's video uplink), viewer, supervisor, …")] = "edge",
    config: ConfigFile = None,
    database: DatabaseUrl = None,
) -> None:
    """Create an API token and print it (shown once; the station keeps only its hash)."""
    (_, token), _ = _account_change(
        config, database, role, lambda accounts, chosen: accounts.create_token(name, chosen, "cli")
    )
    typer.echo(token)


def main() -> None:  # pragma: no cover - entry point
    sys.exit(app())

"""The `smarteye` command line."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from edge.config.node import ConfigError, load_config, parse_config

app = typer.Typer(
    help="SmartEye: edge video-AI for drones and site cameras.", no_args_is_help=True, pretty_exceptions_enable=False
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _fail(message: str, code: int = 2) -> None:
    for line in message.splitlines():
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the node the same clean way as Ctrl-C."""
    raise KeyboardInterrupt


def quick_config(sources: list[str], model: str | None, mqtt: str | None, node: str | None) -> dict:
    """A config mapping from the quick-start flags; `--source name=URL` names a stream."""
    entries = []
    for index, text in enumerate(sources, start=1):
        name, sep, url = text.partition("=")
        if not sep or "://" in name or not name:
            name, url = f"cam{index}", text
        entries.append({"name": name, "url": url})
    data: dict = {"sources": entries}
    if node:
        data["node"] = node
    if model:
        data["detector"] = {"model": model}
    if mqtt:
        data["mqtt"] = {"url": mqtt}
    return data


@app.command()
def edge(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="URL or name=URL (repeatable).")] = None,
    model: Annotated[str | None, typer.Option(help="Model file or name (e.g. yolov8n.pt).")] = None,
    mqtt: Annotated[str | None, typer.Option(help="Broker URL, mqtt://HOST:PORT.")] = None,
    node: Annotated[str | None, typer.Option(help="Node name.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run an edge node: sources → YOLO → tracking → MQTT events."""
    _setup_logging(log_level)
    try:
        if config is not None:
            cfg = load_config(config)
            overrides = quick_config(source or [], model, mqtt, node)
            if source or model or mqtt or node:
                merged = cfg.model_dump(mode="json", exclude_unset=True)
                for key, value in overrides.items():
                    if isinstance(value, dict) and isinstance(merged.get(key), dict):
                        merged[key] = {**merged[key], **value}
                    else:
                        merged[key] = value
                cfg = parse_config(merged, f"{config} + command line")
        elif source:
            cfg = parse_config(quick_config(source, model, mqtt, node), "command line")
        else:
            _fail("give --config FILE or at least one --source URL")
            return
    except ConfigError as error:
        _fail(str(error))
        return

    from edge.detect.detector import ModelError
    from edge.node import EdgeNode

    try:
        edge_node = EdgeNode(cfg)
    except ModelError as error:
        _fail(str(error))
        return
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        edge_node.run_forever()


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level of the components.")] = "warning",
) -> None:
    """The whole system on embedded defaults and the sample media, with live events in the terminal."""
    _setup_logging(log_level)
    from edge.demo import run_demo

    try:
        run_demo(duration)
    except (FileNotFoundError, RuntimeError, ConfigError) as error:
        _fail(str(error))


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Folder for the JSON Schema files.")] = Path("docs/schemas"),
) -> None:
    """Write the JSON Schema of every MQTT message and of the edge config."""
    import json

    from edge.config.node import EdgeConfig
    from edge.messages import write_json_schemas

    paths = write_json_schemas(out)
    config_path = out / "edge-config.schema.json"
    config_path.write_text(json.dumps(EdgeConfig.model_json_schema(), indent=2, sort_keys=True) + "\n")
    for path in [*paths, config_path]:
        typer.echo(str(path))


def main() -> None:  # pragma: no cover - entry point
    sys.exit(app())

"""Reading YAML config files into pydantic models, with errors phrased for the operator (file, field,
problem), and layering the command line and the environment over a file. Used by the edge node's and
the ground station's configs alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator (file, field, problem)."""


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def format_validation_error(error: ValidationError, origin: str) -> str:
    """One line per problem: `origin: sources[1].url: message`."""
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {_location(item['loc'])}: {message}")
    return "\n".join(lines)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: Any, origin: str) -> M:
    """Validate an already-parsed mapping against `model`, turning pydantic's errors into ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, origin)) from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML config file's top-level mapping (empty file: empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{error.object[error.start]:02x} at offset {error.start} (line {line}); "
            "save the file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_layered(
    model: type[M], path: Path | None, command_line: dict[str, Any], env_prefix: str, origin: str = "defaults"
) -> M:
    """`model` from, highest first: the command line, `<env_prefix>FIELD__SUBFIELD` environment variables,
    the YAML file, the defaults. Nested sections merge key by key; a list (e.g. sources) is replaced whole.

    pydantic-settings does the layering (its sources and deep merge), so precedence is the library's, not ours.
    """
    from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

    file_data = read_yaml(path) if path is not None else {}

    class Layered(model, BaseSettings):  # type: ignore[valid-type, misc]
        model_config = SettingsConfigDict(env_prefix=env_prefix, env_nested_delimiter="__", extra="forbid")

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:  # fmt: skip
            return (
                InitSettingsSource(settings_cls, command_line),
                env_settings,
                InitSettingsSource(settings_cls, file_data),
            )

    layers = [str(path) if path else origin]
    if any(key.startswith(env_prefix) for key in os.environ):
        layers.append("environment")
    if command_line:
        layers.append("command line")
    where = " + ".join(layers)
    try:
        merged = Layered().model_dump(exclude_unset=True)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, where)) from None
    return parse_model(model, merged, where)


def load_model(model: type[M], path: Path) -> M:
    """Read a YAML file and validate it against `model` (errors name the file, field and problem)."""
    return parse_model(model, read_yaml(path), str(path))

"""The base of every config and wire model: an unknown field is an error that names it.

A typo in a YAML key, or a payload of another schema, must fail loudly rather than be dropped: the setting the
user meant would otherwise silently keep its default. Below both the wire contract and config loading (it
imports neither), so either can use it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that refuses fields it does not declare."""

    model_config = ConfigDict(extra="forbid")

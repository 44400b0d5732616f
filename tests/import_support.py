"""Helpers the import's reading process must find by name (it is another process)."""

from __future__ import annotations

from typing import Any


def broken_expand(line: dict[str, Any]) -> list[dict[str, Any]]:
    """A mapping's expand with a bug: not a refusal of the line, a failure."""
    raise KeyError("purposes")

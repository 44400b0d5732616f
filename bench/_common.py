"""Shared helpers for the benchmarks: JSON output."""

from __future__ import annotations

import json
import platform
import sys
from typing import Any


def emit(name: str, results: dict[str, Any]) -> None:
    """Print one benchmark's results as JSON, with the machine it ran on."""
    payload = {
        "benchmark": name,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "results": results,
    }
    print(json.dumps(payload, indent=2, sort_keys=True))

"""The test suite's JetStream follower (``tests/nats_follow.py``) for the benchmarks, which run
as scripts from ``bench/`` (so ``tests/`` is not on the import path by itself)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

from nats_follow import BlockingNatsFollower  # noqa: E402

__all__ = ["BlockingNatsFollower"]

"""Helpers shared by tests (importable as ``support``; see pytest ``pythonpath``)."""

from __future__ import annotations

import os
from pathlib import Path

from consentry.config import Settings

FIXTURES = Path(__file__).parent / "fixtures"
MINI = FIXTURES / "mini.yaml"
PG_URL = os.environ.get(
    "CONSENTRY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TEST_SECRET = "test-secret-" + "x" * 40


def make_settings(database_url: str, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        catalogue=MINI,
        jwt_secret=TEST_SECRET,
        **extra,  # type: ignore[arg-type]
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

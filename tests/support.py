"""Helpers shared by tests (importable as ``support``; see pytest ``pythonpath``)."""

from __future__ import annotations

import os
from pathlib import Path

from consentry.config import Settings
from consentry.storage import pseudonyms
from consentry.storage.database import Database

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


def ref_of(db: Database, subject_id: str) -> str:
    """The reference of a subject's live chain (random: looked up, never computed)."""
    with db.read() as conn:
        ref = pseudonyms.resolve(conn, subject_id)
    assert ref is not None, f"no chain for {subject_id!r}"
    return ref

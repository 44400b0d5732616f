"""Empty databases for the benchmarks: a new SQLite file, or a new PostgreSQL schema per run
(dropped afterwards), so that runs of a day compare (none writes into what another left)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg


def plain_pg(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


class Target:
    """One empty database per run: a new SQLite file, or a new PostgreSQL schema."""

    def __init__(self, url: str, tmp: Path, name: str = "bench") -> None:
        self.base = url
        self.tmp = tmp
        self.name = name  # of the files and schemas made
        self.schemas: list[str] = []

    def fresh(self) -> str:
        if self.base.startswith("sqlite"):
            return f"sqlite:///{self.tmp / f'{self.name}-{uuid.uuid4().hex[:8]}.db'}"
        schema = f"bench_{self.name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(plain_pg(self.base), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        sep = "&" if "?" in self.base else "?"
        return f"{self.base}{sep}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        if not self.schemas:
            return
        with psycopg.connect(plain_pg(self.base), autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

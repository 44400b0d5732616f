"""Shared fixtures: the test catalogue, databases (SQLite and PostgreSQL), a wired container.

PostgreSQL tests use a fresh schema per test on CONSENTRY_TEST_POSTGRES_URL. When the server is
not reachable they skip and say so, unless CONSENTRY_REQUIRE_POSTGRES=1 (CI), where they fail.

The suite runs on every core (``scripts/test.sh``: pytest-xdist), so each test keeps to its own
schema, NATS stream, port and temporary folder. A test that stops or restarts a service the other
tests share is marked ``serial``: ``--serial=exclude`` leaves it out of the parallel pass and
``--serial=only`` runs just those tests, alone, afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import CatalogueIndex
from nats_support import nats_names, nats_url  # noqa: F401 (fixtures for NATS tests)
from support import MINI, PG_URL, make_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--serial",
        choices=("include", "exclude", "only"),
        default="include",
        help="tests marked serial (they restart shared services): run them with the rest "
        "(include, the default), leave them out (exclude: the parallel pass) or run only them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = config.getoption("--serial")
    if mode == "include":
        return
    wanted = mode == "only"
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if (item.get_closest_marker("serial") is not None) == wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def mini_catalogue() -> Catalogue:
    return load_catalogue(MINI)


@pytest.fixture(scope="session")
def mini_index(mini_catalogue: Catalogue) -> CatalogueIndex:
    return CatalogueIndex(mini_catalogue)


def _postgres_or_skip() -> str:
    plain = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at {PG_URL}: {exc}"
        if os.environ.get("CONSENTRY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return plain


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database URL whose search_path is a brand-new schema, dropped afterwards."""
    plain = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'consentry.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def container(database_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(database_url))
    yield c
    c.close()


@pytest.fixture
def sqlite_container(sqlite_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(sqlite_url))
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as tc:
        yield tc


@pytest.fixture
def admin_key(container: Container) -> str:
    return container.keys.create(["admin"])

"""A full disk or an unreachable database answers 503 problem+json, writes nothing partial, and
the server carries on by itself once the database is back."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from ledger_audit import audit
from live_server import LiveServer, free_port, server_env
from support import bearer, make_settings

PROBLEM = "application/problem+json"
NO_LIMITS: dict[str, Any] = {"rate_limit_per_key": 0, "rate_limit_per_subject": 0}


# The notice version a grant names (the current one of each permission used here).
SHOWN = {"ads": "3", "recs": "2", "email": "1"}


def _toggle(i: int, pid: str = "ads") -> dict[str, str]:
    if i % 2 == 0:
        return {"state": "granted", "notice_version": SHOWN[pid]}
    return {"state": "denied"}


def _assert_unavailable(answer: Any) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["retry-after"].isdigit()
    assert answer.json()["status"] == 503


# -- SQLite: a full disk ------------------------------------------------------------------------
def test_a_full_sqlite_database_answers_503_and_leaves_no_partial_write(sqlite_url: str) -> None:
    """``PRAGMA max_page_count`` caps the file at its current size: the disk is "full"."""
    container = bootstrap(make_settings(sqlite_url, **NO_LIMITS))
    key = bearer(container.keys.create(["subjects:write", "subjects:read"]))
    accepted: list[str] = []
    with TestClient(create_app(container), raise_server_exceptions=False) as api:
        for i in range(5):
            answer = api.put(f"/v1/subjects/full-{i}/permissions/ads", json=_toggle(0), headers=key)
            accepted.append(answer.json()["event_id"])

        def cap(dbapi_conn: Any, _: Any) -> None:
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

        engines = {container.db.write_engine, container.db.read_engine}
        for engine in engines:
            event.listen(engine, "connect", cap)
            engine.dispose()  # connections are kept open: the next ones are capped
        refused = 0
        for i in range(300):
            body = {**_toggle(i, "recs"), "options": {"padding": "x" * 1000}}
            answer = api.put(f"/v1/subjects/full-{i % 7}/permissions/recs", json=body, headers=key)
            if answer.status_code == 200:
                accepted.append(answer.json()["event_id"])
                continue
            _assert_unavailable(answer)
            assert answer.json()["code"] == "database_unavailable"
            refused += 1
            if refused >= 3:
                break
        assert refused >= 3, "the capped database never filled up"
        # Reads still work while writes cannot.
        assert api.get("/v1/subjects/full-1/permissions", headers=key).status_code == 200
        for engine in engines:
            event.remove(engine, "connect", cap)
            engine.dispose()
        again = api.put(
            "/v1/subjects/full-1/permissions/email", json=_toggle(0, "email"), headers=key
        )
        assert again.status_code == 200
        accepted.append(again.json()["event_id"])
    container.close()
    result = audit(sqlite_url)
    assert result.event_ids == set(accepted)
    result.assert_consistent()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the PRAGMA test covers")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_real_full_disk_answers_503_and_the_server_recovers_when_space_returns(
    tiny_disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tiny_disk / 'consentry.db'}"
    env = server_env(url, CONSENTRY_RATE_LIMIT_PER_KEY="0", CONSENTRY_RATE_LIMIT_PER_SUBJECT="0")
    server = LiveServer(env, tmp_path / "server.log")
    made = server.cli("keys", "create", "--scope", "subjects:write")
    assert made.returncode == 0, made.stderr
    server.start()
    accepted: list[str] = []
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {made.stdout.strip()}"}
        ) as api:
            filler = tiny_disk / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as out:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
                    os.fsync(out.fileno())
            refused = 0
            for i in range(2000):
                body = {**_toggle(i), "options": {"padding": "y" * 1000}}
                answer = api.put(f"/v1/subjects/disk-{i % 13}/permissions/ads", json=body)
                if answer.status_code == 200:
                    accepted.append(answer.json()["event_id"])
                    continue
                _assert_unavailable(answer)
                refused += 1
                if refused >= 3:
                    break
            assert refused >= 3, "the disk never filled up"
            filler.unlink()
            again = api.put("/v1/subjects/disk-1/permissions/email", json=_toggle(0, "email"))
            assert again.status_code == 200, again.text
            accepted.append(again.json()["event_id"])
    finally:
        server.stop()
    log = server.log.read_text()
    assert " 500 " not in log and "unexpected error" not in log  # every failure was a 503
    result = audit(url)
    assert result.event_ids == set(accepted)
    result.assert_consistent()


# -- PostgreSQL: unreachable, then back ----------------------------------------------------------
class Proxy:
    """A TCP relay to PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[str, Proxy]]:
    url = make_url(postgres_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.up()
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
    proxy.down()


@pytest.mark.postgres
def test_an_unreachable_postgres_answers_503_and_the_server_recovers_by_itself(
    proxied: tuple[str, Proxy],
) -> None:
    url, proxy = proxied
    container: Container = bootstrap(make_settings(url, **NO_LIMITS))
    key = bearer(container.keys.create(["admin"]))
    accepted: list[str] = []
    with TestClient(create_app(container), raise_server_exceptions=False) as api:
        first = api.put("/v1/subjects/pg-1/permissions/ads", json=_toggle(0), headers=key)
        assert first.status_code == 200
        accepted.append(first.json()["event_id"])
        proxy.down()
        for i in range(1, 4):
            _assert_unavailable(
                api.put("/v1/subjects/pg-1/permissions/ads", json=_toggle(i), headers=key)
            )
        _assert_unavailable(api.get("/v1/subjects/pg-1/history", headers=key))
        _assert_unavailable(
            api.patch(
                "/v1/subjects/pg-2/permissions",
                json={"all": "granted", "notice_versions": {"ads": "3"}},
                headers=key,
            )
        )
        decision = {
            "subject": "pg-1",
            "purpose": "delivery.location",
            "categories": ["device.location.precise"],
        }
        _assert_unavailable(api.post("/v1/decisions", json=decision, headers=key))
        assert api.get("/healthz").status_code == 503
        proxy.up()
        back = api.put("/v1/subjects/pg-1/permissions/ads", json=_toggle(1), headers=key)
        assert back.status_code == 200, back.text
        accepted.append(back.json()["event_id"])
        assert api.get("/healthz").status_code == 200
    container.close()
    result = audit(url)
    assert result.event_ids == set(accepted), "a write answered 503 left something behind"
    result.assert_consistent()

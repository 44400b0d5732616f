"""A new user's path, with the real server process: serve, create a key, grant and withdraw,
kill the server, restart it, find nothing lost; tamper with the ledger and see verify fail."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from support import MINI, TEST_SECRET

CLI = [sys.executable, "-m", "consentry"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port)], env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    env.pop("CONSENTRY_DEMO", None)
    srv = Server(env, tmp_path / "server.log")
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=server.env, capture_output=True, text=True, timeout=60)


def test_nothing_is_lost_across_a_kill_and_restart(server: Server, database_url: str) -> None:
    server.start()
    made = cli(
        server,
        "keys",
        "create",
        "--scope",
        "subjects:read",
        "--scope",
        "subjects:write",
        "--scope",
        "decide",
    )
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as api:
        assert (
            api.put(
                "/v1/subjects/cust-1/permissions/recs",
                json={"state": "granted", "notice_version": "2"},
            ).status_code
            == 200
        )
        assert (
            api.put(
                "/v1/subjects/cust-1/permissions/ads",
                json={"state": "granted", "notice_version": "3"},
            ).status_code
            == 200
        )
        assert (
            api.put("/v1/subjects/cust-1/permissions/ads", json={"state": "denied"}).status_code
            == 200
        )
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as api:
        states = {
            p["id"]: p for p in api.get("/v1/subjects/cust-1/permissions").json()["permissions"]
        }
        assert states["recs"]["state"] == "granted" and states["ads"]["state"] == "denied"
        history = api.get("/v1/subjects/cust-1/history").json()["events"]
        assert [(e["permission"], e["state"]) for e in history] == [
            ("ads", "denied"),
            ("ads", "granted"),
            ("recs", "granted"),
        ]
        decision = api.post(
            "/v1/decisions",
            json={
                "subject": "cust-1",
                "purpose": "recommendations",
                "categories": ["behaviour.browsing"],
            },
        )
        assert decision.json()["allowed"] is True
    verified = cli(server, "ledger", "verify")
    assert verified.returncode == 0 and "3 event(s) verified" in verified.stdout
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET state = 'granted' WHERE seq = 3"))
    engine.dispose()
    tampered = cli(server, "ledger", "verify")
    assert tampered.returncode == 1
    assert "subject 'cust-1' event seq 3" in tampered.stderr

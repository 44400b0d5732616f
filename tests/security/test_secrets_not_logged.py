"""The real server's log holds no secret: not the keys and tokens callers send (even in a URL),
not the signing secrets it was configured with, not the database password."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from live_server import LiveServer, server_env

pytestmark = pytest.mark.postgres


@pytest.fixture
def configured(postgres_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    password = "db-pw-" + secrets.token_urlsafe(16)
    url = make_url(postgres_url).set(password=password).render_as_string(hide_password=False)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    found = {
        "jwt secret": "jwt-" + secrets.token_urlsafe(40),
        "database password": password,
        # The key's base64 body (its PEM armour lines are not secret).
        "receipt key": pem.decode().splitlines()[1],
    }
    env = server_env(
        url, CONSENTRY_JWT_SECRET=found["jwt secret"], CONSENTRY_RECEIPT_SIGNING_KEY=pem.decode()
    )
    server = LiveServer(env, tmp_path / "server.log")
    yield server, found
    server.stop()


def test_the_server_log_holds_no_key_token_or_configured_secret(
    configured: tuple[LiveServer, dict[str, str]],
) -> None:
    server, secrets_ = configured
    server.start()
    made = server.cli("keys", "create", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    token = server.cli("token", "cust-log-1").stdout.strip()
    forged = jwt.encode({"sub": "cust-log-1", "exp": 4102444800}, "not-the-secret-" + "z" * 30)
    secrets_ |= {
        "service key": key,
        "subject token": token,
        "token signature": token.rsplit(".", 1)[1],
        "forged token": forged,
        "unknown key": "csk_" + secrets.token_hex(8) + "_" + secrets.token_urlsafe(32),
    }
    service = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        put = http.put(
            "/v1/subjects/cust-log-1/permissions/ads",
            json={"state": "granted", "notice_version": "3"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert put.status_code == 200
        event = put.json()["event_id"]
        assert http.get("/v1/subjects/cust-log-1/permissions", headers=service).status_code == 200
        assert (
            http.get(f"/v1/subjects/cust-log-1/receipts/{event}", headers=service).status_code
            == 200
        )
        for bad in (forged, secrets_["unknown key"]):
            bad_auth = {"Authorization": f"Bearer {bad}"}
            assert http.get("/v1/subjects/cust-log-1/history", headers=bad_auth).status_code == 401
        # The page takes a token in its URL once: the access log line must not keep it.
        opened = http.get(f"/permissions?lang=en&token={token}", follow_redirects=False)
        assert opened.status_code == 303
        assert http.get(f"/permissions?token={forged}").status_code == 401
        assert http.get(f"/v1/catalog?key={key}").status_code == 200
    server.stop()
    log = server.log.read_text()
    assert "GET /v1/subjects/~/permissions" in log  # the access log was captured
    assert "cust-log-1" not in log  # subject ids are not written (erasure leaves none here)
    assert "token=[redacted]" in log
    leaked = [name for name, value in secrets_.items() if value in log]
    assert not leaked, f"secrets in the server log: {leaked}"

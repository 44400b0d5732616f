"""Limits and credential handling, over real sockets against ``consentry serve`` (a subprocess):
body and header sizes, rate limits under floods, inputs that used to answer 500, login CSRF,
proxy headers, log redaction, redirects and subject-token lifetime and audience."""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from live_server import LiveServer, server_env
from support import TEST_SECRET

SID = "cust-live-1"
ADS = f"/v1/subjects/{SID}/permissions/ads"
MB = 1024 * 1024


def _token(sub: str, **claims: Any) -> str:
    now = datetime.now(UTC)
    body: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10), **claims}
    return jwt.encode(body, TEST_SECRET, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _start(tmp_path: Path, name: str, **env: str) -> LiveServer:
    server = LiveServer(
        server_env(f"sqlite:///{tmp_path / name}.db", **env), tmp_path / f"{name}.log"
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live-limits")


@pytest.fixture(scope="module")
def live(module_tmp: Path) -> Iterator[LiveServer]:
    server = _start(module_tmp, "plain")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> dict[str, str]:
    created = live.cli("keys", "create", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    return _bearer(created.stdout.strip())


def _peak_rss(server: LiveServer) -> int:
    """The server process's peak resident set (VmHWM), in bytes."""
    assert server.proc is not None
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert found is not None
    return int(found.group(1)) * 1024


def _chunked_put(
    server: LiveServer, path: str, headers: dict[str, str], total: int, block: int = 64 * 1024
) -> tuple[int, bytes, int]:
    """PUT ``total`` bytes with Transfer-Encoding: chunked over a raw socket, stopping as soon
    as the server answers or closes. (status, body, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "Content-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    opening = b'{"state":"granted","notice_version":"3","options":{"pad":"'
    piece = b"%x\r\n%s\r\n" % (block, b"a" * block)
    sent = 0
    answer = b""
    try:
        sock.sendall(head.encode() + b"%x\r\n%s\r\n" % (len(opening), opening))
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered (or closed) before the body ended
            sock.sendall(piece)
            sent += block
        else:
            closing = b'"}}'
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(closing), closing))
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    try:
        while b"\r\n\r\n" not in answer or not _complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, answer.partition(b"\r\n\r\n")[2], sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.I)
    return found is not None and len(body) >= int(found.group(1))


# -- 1. body limit --------------------------------------------------------------------------
def test_an_unauthenticated_chunked_100_mb_upload_is_refused_without_being_read(
    live: LiveServer,
) -> None:
    before = _peak_rss(live)
    status, body, sent = _chunked_put(live, ADS, {}, 100 * MB)
    assert status == 413, body[:300]
    assert b'"code":"body_too_large"' in body
    assert sent < 20 * MB  # refused once the limit passed: the rest was never sent
    growth = _peak_rss(live) - before
    assert growth < 20 * MB, f"server peak RSS grew {growth / MB:.1f} MB"
    assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_a_chunked_10_mb_body_with_a_write_key_is_refused_and_nothing_is_stored(
    live: LiveServer, admin: dict[str, str]
) -> None:
    status, body, _ = _chunked_put(live, ADS, admin, 10 * MB)
    assert status == 413, body[:300]
    history = httpx.get(f"{live.url}/v1/subjects/{SID}/history", headers=admin)
    assert history.status_code == 200 and history.json()["events"] == []


def test_a_chunked_body_within_the_limit_is_read_and_applied(
    live: LiveServer, admin: dict[str, str]
) -> None:
    status, body, _ = _chunked_put(live, "/v1/subjects/cust-live-2/permissions/ads", admin, 0)
    assert status == 200, body[:300]
    assert b'"state":"granted"' in body


# -- 6. header size -------------------------------------------------------------------------
def test_a_request_head_over_64_kb_gets_431_and_the_server_keeps_answering(
    live: LiveServer,
) -> None:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=30)
    answer = b""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        for _ in range(40 * 16):  # up to 40 MB, 64 KB at a time, until the server answers
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(b"a" * 64 * 1024)
        answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"headers_too_large" in answer
    assert httpx.get(f"{live.url}/healthz").status_code == 200


@pytest.mark.parametrize("split", [0, 1024], ids=["head-and-body-together", "body-end-apart"])
def test_a_large_body_read_with_a_head_boundary_is_not_taken_for_a_long_head(
    live: LiveServer, admin: dict[str, str], split: int
) -> None:
    import json

    check = {"subject": SID, "purpose": "advertising", "categories": ["behaviour.browsing"]}
    body = json.dumps({"checks": [check] * 1000}).encode()
    assert len(body) > 64 * 1024
    head = (
        "POST /v1/decisions/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {admin['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        if split:  # the head and a little body, then the rest: its read ends the message
            sock.sendall(head + body[:split])
            time.sleep(0.2)
        sock.sendall((b"" if split else head) + body[split:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]


# -- 3. inputs that answered 500 ------------------------------------------------------------
def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("PUT", ADS, None),  # options nested 500 deep (filled in below)
        ("PUT", ADS, b'{"state":"granted","options":{"note":"\\ud800"}}'),
        ("GET", "/v1/admin/violations?since=9999-12-31T23:59:59-14:00", None),
        ("POST", "/v1/uses", b'{"uses":[{"subject":"\\ud800","purpose":"p","categories":["c"]}]}'),
    ],
    ids=["options-500-deep", "lone-surrogate", "since-overflow", "surrogate-in-uses"],
)
def test_inputs_that_used_to_crash_a_route_get_a_4xx_problem(
    live: LiveServer, admin: dict[str, str], method: str, path: str, content: bytes | None
) -> None:
    import json

    if content is None and method == "PUT":
        content = json.dumps({"state": "granted", "options": _nested(500)}).encode()
    headers = {**admin, "Content-Type": "application/json"}
    with httpx.Client(base_url=live.url) as client:
        response = client.request(method, path, content=content, headers=headers)
        assert 400 <= response.status_code < 500, response.text[:300]
        assert response.headers["content-type"] == "application/problem+json"
        assert client.get("/healthz").status_code == 200  # the same connection still answers


# -- 6. redaction and redirects -------------------------------------------------------------
def test_a_percent_encoded_token_parameter_is_redacted_from_the_access_log(
    live: LiveServer,
) -> None:
    secret = _token(SID)
    httpx.get(f"{live.url}/permissions?tok%65n={secret}", follow_redirects=False)
    httpx.get(f"{live.url}/v1/catalog?%6Bey={secret}&api%5Fkey={secret}")
    time.sleep(0.3)
    log = live.log.read_text()
    assert "tok%65n=[redacted]" in log
    assert secret not in log


def test_a_trailing_slash_never_redirects_to_the_host_the_client_named(live: LiveServer) -> None:
    response = httpx.get(
        f"{live.url}/v1/catalog/", headers={"Host": "evil.example.org"}, follow_redirects=False
    )
    assert "evil.example.org" not in response.headers.get("location", "")
    assert response.status_code == 404


# -- 4. login CSRF --------------------------------------------------------------------------
def test_a_link_with_another_customers_token_never_replaces_the_signed_in_session(
    live: LiveServer, admin: dict[str, str]
) -> None:
    victim, attacker = "cust-victim-1", "cust-attacker-1"
    with httpx.Client(base_url=live.url) as browser:
        signed_in = browser.get(f"/permissions?token={_token(victim)}", follow_redirects=False)
        assert signed_in.status_code == 303 and browser.cookies.get("consentry_session")
        own = browser.cookies.get("consentry_session")
        lured = browser.get(f"/permissions?token={_token(attacker)}", follow_redirects=False)
        assert lured.status_code == 303
        assert "set-cookie" not in lured.headers
        assert browser.cookies.get("consentry_session") == own
        page = browser.get("/permissions")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        switched = browser.post(
            "/permissions/ads",
            data={"state": "granted", "csrf": csrf.group(1)},
            headers={"Accept": "application/json"},
        )
        assert switched.status_code == 200, switched.text[:300]
    mine = httpx.get(f"{live.url}/v1/subjects/{victim}/history", headers=admin).json()
    theirs = httpx.get(f"{live.url}/v1/subjects/{attacker}/history", headers=admin).json()
    assert [e["permission"] for e in mine["events"]] == ["ads"]
    assert theirs["events"] == []


# -- 6. subject tokens ----------------------------------------------------------------------
def test_subject_tokens_past_the_maximum_lifetime_are_refused(live: LiveServer) -> None:
    path = f"{live.url}/v1/subjects/{SID}/permissions"
    now = datetime.now(UTC)
    month = _token(SID, exp=now + timedelta(days=30))
    assert httpx.get(path, headers=_bearer(month)).status_code == 401
    assert httpx.get(path, headers=_bearer(_token(SID))).status_code == 200


@pytest.fixture(scope="module")
def proxied(module_tmp: Path) -> Iterator[LiveServer]:
    server = _start(
        module_tmp,
        "proxied",
        CONSENTRY_FORWARDED_ALLOW_IPS="127.0.0.1",
        CONSENTRY_JWT_ISSUER="https://id.example.com",
        CONSENTRY_JWT_AUDIENCE="consentry",
    )
    yield server
    server.stop()


def test_issuer_and_audience_are_required_when_configured(proxied: LiveServer) -> None:
    path = f"{proxied.url}/v1/subjects/{SID}/permissions"
    good = _token(SID, iss="https://id.example.com", aud="consentry")
    assert httpx.get(path, headers=_bearer(good)).status_code == 200
    for claims in ({"iss": "https://id.example.com"}, {"aud": "consentry"}, {}):
        assert httpx.get(path, headers=_bearer(_token(SID, **claims))).status_code == 401
    wrong = _token(SID, iss="https://id.example.com", aud="someone-else")
    assert httpx.get(path, headers=_bearer(wrong)).status_code == 401


# -- 5. proxy headers -------------------------------------------------------------------------
def _session_cookie(server: LiveServer, token: str, headers: dict[str, str]) -> str:
    response = httpx.get(
        f"{server.url}/permissions?token={token}", headers=headers, follow_redirects=False
    )
    assert response.status_code == 303, response.text[:300]
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie")
    return cookie.lower()


def test_the_session_cookie_is_secure_behind_a_tls_proxy_the_server_trusts(
    proxied: LiveServer,
) -> None:
    token = _token(SID, iss="https://id.example.com", aud="consentry")
    cookie = _session_cookie(proxied, token, {"X-Forwarded-Proto": "https"})
    assert "; secure" in cookie and "httponly" in cookie


def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted(live: LiveServer) -> None:
    cookie = _session_cookie(live, _token(SID), {"X-Forwarded-Proto": "https"})
    assert "; secure" not in cookie


# -- 2 and 6. rate limits under floods --------------------------------------------------------
@pytest.fixture(scope="module")
def limited(module_tmp: Path) -> Iterator[LiveServer]:
    server = _start(
        module_tmp,
        "limited",
        CONSENTRY_RATE_LIMIT_PER_KEY="5",
        CONSENTRY_RATE_LIMIT_KEY_BURST="20",
        CONSENTRY_RATE_LIMIT_PER_SUBJECT="2",
        CONSENTRY_RATE_LIMIT_SUBJECT_BURST="10",
    )
    yield server
    server.stop()


def _flood(server: LiveServer, path: str, stop: threading.Event, codes: list[int]) -> None:
    with httpx.Client(base_url=server.url) as client:
        n = 0
        while not stop.is_set():
            n += 1
            bad = {} if n % 2 else {"Authorization": f"Bearer csk_{n:064x}"}
            codes.append(client.get(path, headers=bad).status_code)


def test_a_flood_of_anonymous_and_bad_credentials_never_makes_a_customer_answer_429(
    limited: LiveServer,
) -> None:
    created = limited.cli("keys", "create", "--scope", "admin")
    admin = _bearer(created.stdout.strip())
    alice = "cust-alice-1"
    path = f"/v1/subjects/{alice}/history"
    stop = threading.Event()
    codes: list[int] = []
    floods = [threading.Thread(target=_flood, args=(limited, path, stop, codes)) for _ in range(4)]
    for thread in floods:
        thread.start()
    try:
        while len(codes) < 200:
            time.sleep(0.05)
        own = _bearer(_token(alice))
        with httpx.Client(base_url=limited.url) as client:
            for state in ("granted", "denied") * 5:
                response = client.put(
                    f"/v1/subjects/{alice}/permissions/ads",
                    json={"state": state, "notice_version": "3"},
                    headers=own,
                )
                assert response.status_code == 200, response.text
            for _ in range(5):
                assert client.get(path, headers=admin).status_code == 200
    finally:
        stop.set()
        for thread in floods:
            thread.join()
    # Rotating bad keys bought no fresh bucket: the flood itself was limited.
    assert codes.count(429) > len(codes) // 2
    assert set(codes) <= {401, 429}

"""Erasure forgets: after it, no table, no byte of the SQLite file and no line of a PostgreSQL
dump holds the subject's id, any digest of it the code could compute, an option value, a device
id or a user agent sent before; replays, old cookies and the id itself lead nowhere."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.ledger import verify
from consentry.storage import deliveries
from consentry.storage.tables import metadata
from support import TEST_SECRET, bearer, make_settings

SID = "cust-erase-7c41-ondine"
OPTION = "Ondine's tablet in Namur"
CHANNEL = "ondine-namur@example.org"
DEVICE = "device-ondine-tablet-91"
AGENT = "OndineBrowser/9.4 (example)"
# The digests of the id any version of the code derives: plain, and under the ledger's prefix.
DIGESTS = [
    hashlib.sha256(SID.encode()).hexdigest(),
    hashlib.sha256(b"consentry.subject.v1:" + SID.encode()).hexdigest(),
]


def _token(sub: str) -> str:
    exp = datetime.now(UTC) + timedelta(minutes=5)
    return jwt.encode({"sub": sub, "exp": exp}, TEST_SECRET, algorithm="HS256")


def _needles() -> list[str]:
    return [SID, OPTION, CHANNEL, DEVICE, AGENT, *DIGESTS]


def _every_cell(container: Container) -> str:
    cells: list[str] = []
    with container.db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                cells.extend(str(v) for v in row)
    return "\n".join(cells)


def _live_everything(client: TestClient, container: Container) -> tuple[dict[str, str], str]:
    """The subject as a busy customer leaves it: choices with options and a channel, a device,
    a jurisdiction, a stored language and time zone, access reports, an opt-out delivery,
    idempotent answers stored for a service key and for the subject, and a page session.
    Returns the service key's headers and the page cookie."""
    service = bearer(container.keys.create(["decide", "subjects:read", "subjects:write"]))
    agent = {"User-Agent": AGENT}
    first = client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2", "options": {"device": OPTION}},
        headers={**service, **agent, "Idempotency-Key": "idem-service-1"},
    )
    assert first.status_code == 200, first.text
    mine = {**bearer(_token(SID)), **agent}
    own = client.put(
        f"/v1/subjects/{SID}/permissions/ads",
        json={"state": "granted", "notice_version": "3", "options": {"note": OPTION}},
        headers={**mine, "Idempotency-Key": "idem-own-1"},
    )
    assert own.status_code == 200, own.text
    withdrawn = client.put(
        f"/v1/subjects/{SID}/permissions/ads", json={"state": "denied"}, headers=service
    ).json()
    container.consents.change(
        SID, [Change("email", ChoiceState.GRANTED)], Context(source="app", channel=CHANNEL)
    )
    device = client.put(
        f"/v1/subjects/{SID}/devices/{DEVICE}",
        json={
            "platform": "android",
            "app_version": "5.1",
            "os_permissions": {"location": "precise"},
        },
        headers={**service, **agent},
    )
    assert device.status_code == 200, device.text
    client.put(f"/v1/subjects/{SID}", json={"jurisdiction": "BE"}, headers=service)
    settings = {"locale": "fr", "time_zone": "Europe/Brussels"}
    assert client.put(f"/v1/subjects/{SID}/preferences", json=settings, headers=mine).is_success
    reporter = bearer(container.keys.create(["uses:write"], name="recommendations-service"))
    use = {"subject": SID, "purpose": "order_fulfilment", "categories": ["order.address"]}
    assert client.post("/v1/uses", json={"uses": [use]}, headers=reporter).status_code == 200
    payload = json.dumps({"type": "opt_out", "subject": SID, "note": OPTION})
    with container.db.write() as conn:
        deliveries.enqueue(
            conn,
            [deliveries.NewDelivery(withdrawn["event_id"], SID, "adnet", payload)],
            datetime.now(UTC),
        )
    signin = client.get(f"/permissions?token={_token(SID)}", headers=agent, follow_redirects=False)
    assert signin.status_code == 303
    cookie = client.cookies.get("consentry_session")
    assert cookie
    assert client.get("/permissions", headers=agent).status_code == 200
    container.consents.change("someone-else", [Change("recs", ChoiceState.GRANTED)], Context())
    before = _every_cell(container)
    assert all(n in before for n in (SID, OPTION, DEVICE)), "the scenario stored nothing?"
    return service, cookie


def _erase(client: TestClient) -> None:
    erased = client.delete(f"/v1/subjects/{SID}", headers=bearer(_token(SID)))
    assert erased.status_code == 200, erased.text
    body = erased.json()
    day = datetime.fromisoformat(body["erased_at"]).strftime("%B %Y")
    said = body["statement"]  # what was erased and when, in plain words
    assert said.startswith("On ") and day in said and "every personal value" in said
    assert "3 current choices" in said and "1 device report" in said
    assert "1 stored page setting" in said
    assert body["subject_ref"][:12] in said and "can never be read again" in said


def _after_erasure_nothing_leads_back(
    client: TestClient, container: Container, service: dict[str, str], cookie: str
) -> None:
    cells = _every_cell(container)
    for needle in _needles():
        assert needle not in cells, needle
    assert "someone-else" in cells  # only the erased subject is gone
    result = verify(container.db)
    assert result.broken is None and result.subjects == 2
    history = client.get(f"/v1/subjects/{SID}/history", headers=service).json()
    assert history["events"] == []
    client.cookies.clear()
    client.cookies.set("consentry_session", cookie)
    old_cookie = client.get("/permissions")
    assert old_cookie.status_code == 401  # signed out: the session ended with the erasure
    replay = client.put(
        f"/v1/subjects/{SID}/permissions/recs",
        json={"state": "granted", "notice_version": "2", "options": {"device": OPTION}},
        headers={**service, "Idempotency-Key": "idem-service-1"},
    )
    assert replay.status_code == 200, replay.text
    client.cookies.clear()
    again = client.get(f"/v1/subjects/{SID}/history", headers=service).json()["events"]
    assert [e["seq"] for e in again] == [1]  # answered as a new request, on a new chain
    assert replay.json()["changed"] is True and replay.json()["event_id"] == again[0]["event_id"]


def test_after_erasure_no_table_and_no_byte_of_the_sqlite_file_leads_back(
    sqlite_container: Container,
) -> None:
    container = sqlite_container
    path = Path(urllib.parse.urlparse(container.db.url).path)
    with TestClient(create_app(container)) as client:
        service, cookie = _live_everything(client, container)
        _erase(client)
        data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        for needle in _needles():
            assert needle.encode() not in data, needle
        _after_erasure_nothing_leads_back(client, container, service, cookie)


@pytest.mark.postgres
def test_after_erasure_no_table_and_no_line_of_a_postgresql_dump_leads_back(
    postgres_url: str,
) -> None:
    container = bootstrap(make_settings(postgres_url))
    schema = urllib.parse.unquote(postgres_url).rsplit("search_path=", 1)[1]
    plain = postgres_url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://")
    try:
        with TestClient(create_app(container)) as client:
            service, cookie = _live_everything(client, container)
            _erase(client)
            dump = subprocess.run(
                ["pg_dump", "--data-only", "--schema", schema, plain],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
            assert "COPY" in dump and "someone-else" in dump
            for needle in _needles():
                assert needle not in dump, needle
            _after_erasure_nothing_leads_back(client, container, service, cookie)
    finally:
        container.close()


def test_logout_ends_every_session_of_the_subject_and_old_cookies_answer_signed_out(
    sqlite_container: Container,
) -> None:
    with (
        TestClient(create_app(sqlite_container)) as laptop,
        TestClient(create_app(sqlite_container)) as phone,
    ):
        for browser in (laptop, phone):
            browser.get(f"/permissions?token={_token(SID)}")
            assert browser.get("/permissions").status_code == 200
        kept = phone.cookies.get("consentry_session")
        page = laptop.get("/permissions")
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
        assert csrf is not None
        out = laptop.post("/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
        assert phone.get("/permissions").status_code == 401  # the other browser too
        phone.cookies.set("consentry_session", kept or "")
        assert phone.get("/permissions").status_code == 401


def test_the_evidence_pack_of_an_erased_chain_says_what_was_erased_and_when(
    sqlite_container: Container, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from consentry.cli import app
    from support import MINI

    with TestClient(create_app(sqlite_container)) as client:
        _live_everything(client, sqlite_container)
        erased = client.delete(f"/v1/subjects/{SID}", headers=bearer(_token(SID))).json()
    env = {
        "CONSENTRY_DATABASE_URL": sqlite_url,
        "CONSENTRY_CATALOGUE": str(MINI),
        "CONSENTRY_JWT_SECRET": TEST_SECRET,
    }
    monkeypatch.delenv("CONSENTRY_DEMO", raising=False)
    page = CliRunner().invoke(app, ["report", "--ref", erased["subject_ref"]], env=env)
    assert page.exit_code == 0, page.stderr
    html = page.stdout
    assert "every personal value of this customer was erased" in html
    assert datetime.fromisoformat(erased["erased_at"]).strftime("%B %Y") in html
    assert "Hash chain intact: 5 event(s)" in html and "subject erased" in html
    for needle in _needles():
        assert needle not in html, needle
    missing = CliRunner().invoke(app, ["report", "--ref", "ab" * 32], env=env)
    assert missing.exit_code == 1 and "no ledger chain" in missing.stderr

"""`consentry demo` as a newcomer runs it: a demo customer withdraws a sharing permission on the
page, the partners concerned receive a signed opt-out and acknowledge it, and the page says so;
the demo partners' receiver refuses what is not signed with the partner secret."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.demo.partners import SECRET_ENV
from consentry.events.webhooks import EVENT_HEADER, SIGNATURE_HEADER, sign
from live_server import free_port
from sdk.live import eventually

SECRET = "demo-partner-secret-for-tests-" + "p" * 20
CUSTOMER, SHARING = "demo-bram", "sharing.ad_partners"  # Bram shares with ad partners at first


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    url: str
    partners_url: str
    log: Path

    def console(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def service_key(self) -> str:
        found = re.search(r"Service key:\s+(\S+)", self.console())
        assert found is not None, self.console()
        return found.group(1)

    def received(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.partners_url}/received", timeout=5)
        assert answer.status_code == 200
        return dict(answer.json())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    where = tmp_path_factory.mktemp("demo")
    port, partners_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env[SECRET_ENV] = SECRET
    log = where / "console.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "consentry", "demo", "--port", str(port)]
            + ["--partners-port", str(partners_port), "--database", str(where / "demo.db")],
            env=env,
            cwd=where,
            stdout=out,
            stderr=out,
        )
    demo = Demo(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{partners_port}", log)

    def up() -> bool:
        assert proc.poll() is None, demo.console()
        try:
            return httpx.get(f"{demo.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert eventually(up, timeout=60), demo.console()
        yield demo
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _sign_in(client: httpx.Client, subject: str) -> str:
    """Pick the demo customer on /demo/login; returns the Permissions page's CSRF token."""
    login = client.get("/demo/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert csrf is not None, login.text
    client.post("/demo/login", data={"subject": subject, "csrf": csrf.group(1)})
    page = client.get("/permissions", params={"lang": "en"})
    assert page.status_code == 200, page.text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert token is not None
    return token.group(1)


def _recipient_line(page: str, name: str) -> str:
    """The recipient entry of ``name`` in the page's "who receives your data" list."""
    start = page.index(f'<p class="recipient-head"><span class="r-name">{name}</span>')
    return page[start : page.index("</li>", start)]


def test_withdrawing_a_sharing_permission_reaches_the_partners_who_acknowledge_it(
    demo: Demo,
) -> None:
    with httpx.Client(base_url=demo.url, follow_redirects=True, timeout=10) as client:
        csrf = _sign_in(client, CUSTOMER)
        switch = client.post(
            f"/permissions/{SHARING}", data={"state": "denied", "csrf": csrf, "lang": "en"}
        )
        assert switch.status_code == 200

        def opt_outs() -> dict[str, dict[str, Any]]:
            return {
                r["recipient"]: r
                for r in demo.received()["received"]
                if r["subject"] == CUSTOMER and r["permission"] == SHARING
            }

        # Both ad partners the permission names got a verified opt-out, once each.
        assert eventually(lambda: opt_outs().keys() == {"adlytics", "bannerfield"}, timeout=30)
        got = opt_outs()["adlytics"]
        assert got["kind"] == "consentry.opt_out" and got["reason"] == "withdrawal"
        assert got["status"] == 200 and not got["repeat"]
        assert eventually(
            lambda: (
                f"[partner adlytics] received an opt-out of {SHARING} for {CUSTOMER}"
                in demo.console()
            )
        )

        # consentry recorded the acknowledgement: the API and the customer's page both say so.
        def acknowledged() -> set[str]:
            answer = client.get(
                f"/v1/subjects/{CUSTOMER}/deliveries",
                headers={"Authorization": f"Bearer {demo.service_key()}"},
            )
            assert answer.status_code == 200, answer.text
            return {
                r["recipient"] for r in answer.json()["recipients"] if r["status"] == "acknowledged"
            }

        assert eventually(lambda: acknowledged() == {"adlytics", "bannerfield"}, timeout=30)
        page = client.get("/permissions", params={"lang": "en"}).text
        line = _recipient_line(page, "Adlytics Network Inc")
        assert "Opt-out sent on" in line and "acknowledged on" in line

    inbox = httpx.get(f"{demo.partners_url}/", timeout=5)
    assert inbox.status_code == 200 and "Adlytics Network Inc" in inbox.text
    assert f"an opt-out of {SHARING} for {CUSTOMER}" in inbox.text


def _post(
    demo: Demo, recipient: str, event: str, body: bytes, signature: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", EVENT_HEADER: event}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return httpx.post(
        f"{demo.partners_url}/webhooks/{recipient}", content=body, headers=headers, timeout=5
    )


def test_the_demo_partners_refuse_a_delivery_that_is_not_validly_signed(demo: Demo) -> None:
    event = str(uuid.uuid4())
    opt_out = {"type": "consentry.opt_out", "event_id": event, "subject": "demo-clara"}
    body = json.dumps({**opt_out, "permission": "ads.personalised", "reason": "gpc"}).encode()
    an_hour_ago = int(time.time()) - 3600
    refused = {
        "unsigned": _post(demo, "adlytics", event, body, None),
        "another secret": _post(demo, "adlytics", event, body, sign("not-it", body)),
        "another body": _post(demo, "adlytics", event, body + b" ", sign(SECRET, body)),
        "replayed": _post(demo, "adlytics", event, body, sign(SECRET, body, an_hour_ago)),
    }
    for why, answer in refused.items():
        assert answer.status_code == 401, why
        assert answer.headers["content-type"] == "application/problem+json"
    assert _post(demo, "nobody", event, body, sign(SECRET, body)).status_code == 404

    def received() -> list[str]:
        return [r["recipient"] for r in demo.received()["received"] if r["event_id"] == event]

    assert received() == []
    assert eventually(lambda: "[partner adlytics] refused a delivery (401)" in demo.console())
    # The same body, signed now with the partner secret, is what a partner acknowledges.
    assert _post(demo, "adlytics", event, body, sign(SECRET, body)).status_code == 200
    assert received() == ["adlytics"]


def test_the_demo_stops_promptly_on_ctrl_c_while_services_hold_long_polls(demo: Demo) -> None:
    # Runs last in this module: it stops the demo. The simulated services follow the change
    # feed with long polls; shutdown cuts those after its grace period instead of waiting.
    headers = {"Authorization": f"Bearer {demo.service_key()}"}

    def services_at_work() -> bool:
        answer = httpx.get(f"{demo.url}/v1/subjects/{CUSTOMER}/uses", headers=headers, timeout=5)
        return answer.status_code == 200 and bool(answer.json()["groups"])

    assert eventually(services_at_work, timeout=30), demo.console()
    demo.proc.send_signal(signal.SIGINT)
    # The grace period is 2 s; waiting for the long polls used to take up to ~25 s.
    assert demo.proc.wait(timeout=15) is not None, demo.console()

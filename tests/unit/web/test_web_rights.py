"""The page's rights and standards flows over HTTP, in-process: Global Privacy Control, signed
receipts, opt-out deliveries, export, erasure with its confirmation step, the re-consent prompt,
expired and auto-reset grants, and the rules that apply. Chromium drives the same flows in
tests/e2e/test_permissions_page.py."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import CatalogueIndex
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.events.embedded import relay_config
from consentry.events.publisher import FeedPublisher
from consentry.events.relay import Relay, build_relay
from consentry.services.consents import ConsentService
from consentry.services.receipt_signing import (
    ReceiptInvalid,
    load_receipt_keys,
    new_signing_key_pem,
    verify_receipt_file,
)
from consentry.services.uses import UseReport
from consentry.storage.tables import webhook_deliveries
from support import TEST_SECRET, make_settings
from webhook_receiver import SECRET, SECRET_ENV, Receiver, receiving, webhook_catalogue

GPC = {"Sec-GPC": "1"}
GPC_DONE = "Your browser asked us not to sell or share your data — done."


def token(sub: str) -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def sign_in(client: TestClient, sub: str = "cust-1", **headers: str) -> str:
    """Open the page with a subject token; returns the page's CSRF token."""
    page = client.get("/permissions", params={"token": token(sub), "lang": "en"}, headers=headers)
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def signing_container(database_url: str) -> Iterator[Container]:
    """SQLite and PostgreSQL, with a receipt signing key."""
    c = bootstrap(make_settings(database_url, receipt_signing_key=new_signing_key_pem()))
    yield c
    c.close()


@pytest.fixture
def web(signing_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(signing_container), raise_server_exceptions=True) as tc:
        yield tc


def events(container: Container, sub: str = "cust-1") -> list[tuple[str, str, str, str]]:
    """(permission, state, source, notice version) of the subject's events, newest first."""
    return [
        (e.permission_id, e.state, e.source, e.notice_version)
        for e in container.queries.history(sub, 100).events
    ]


def effective(container: Container, sub: str = "cust-1") -> dict[str, bool]:
    return {v.id: v.effective for v in container.queries.permissions(sub)}


# -- Global Privacy Control ----------------------------------------------------------------------
def test_sec_gpc_1_on_a_page_request_opts_out_of_sale_and_sharing_and_says_so(
    web: TestClient, signing_container: Container
) -> None:
    signing_container.rights.set_jurisdiction("cust-1", "US-CA")  # sale is opt-out there
    assert effective(signing_container)["sale"]
    sign_in(web)
    page = web.get("/permissions?lang=en")
    assert GPC_DONE not in page.text  # no signal yet, nothing to confirm
    page = web.get("/permissions?lang=en", headers=GPC)
    assert GPC_DONE in page.text
    assert not effective(signing_container)["sale"]
    assert ("sale", "denied", "gpc", "1") in events(signing_container)
    # The state shows the opt-out: confirmed on later requests without the header too.
    assert GPC_DONE in web.get("/permissions?lang=en").text
    french = web.get("/permissions?lang=fr").text
    assert "Votre navigateur nous a demandé de ne pas vendre ni partager vos données" in french
    # Honoured once: the signal on every request writes nothing more.
    before = len(events(signing_container))
    web.get("/permissions/history?lang=en", headers=GPC)
    assert len(events(signing_container)) == before


@pytest.mark.parametrize("value", ["0", "true", " 1", "1, 1"])
def test_only_exactly_1_is_a_gpc_signal(
    web: TestClient, signing_container: Container, value: str
) -> None:
    signing_container.rights.set_jurisdiction("cust-1", "US-CA")
    sign_in(web)
    page = web.get("/permissions?lang=en", headers={"Sec-GPC": value})
    assert GPC_DONE not in page.text and effective(signing_container)["sale"]


def test_a_later_choice_to_allow_sale_again_ends_the_gpc_confirmation(
    web: TestClient, signing_container: Container
) -> None:
    signing_container.rights.set_jurisdiction("cust-1", "US-CA")
    csrf = sign_in(web, **GPC)
    assert not effective(signing_container)["sale"]
    web.post("/permissions/sale", data={"state": "granted", "csrf": csrf, "lang": "en"})
    assert effective(signing_container)["sale"]
    assert GPC_DONE not in web.get("/permissions?lang=en").text


# -- signed receipts -----------------------------------------------------------------------------
def test_the_history_receipt_is_the_signed_iso_27560_receipt_and_verifies(
    web: TestClient, signing_container: Container
) -> None:
    consents = signing_container.consents
    mine = consents.change("cust-1", [Change("email", ChoiceState.GRANTED)], Context("app", "fr"))
    sign_in(web)
    event_id = mine.entries[0].event_id
    assert f"/permissions/history/{event_id}/receipt.json" in web.get("/permissions/history").text
    download = web.get(f"/permissions/history/{event_id}/receipt.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="consent-receipt-{event_id}.json"'
    )
    keys = load_receipt_keys(signing_container.settings).verifying_keys()
    verified = verify_receipt_file(download.content, keys)
    receipt = verified.receipt
    assert receipt["record_id"] == event_id and receipt["pii_principal_id"] == "cust-1"
    assert receipt["conforms_to"] == "ISO/IEC TS 27560:2023"
    assert receipt["privacy_notice"]["title"] == "Offres par e-mail"
    assert receipt["events"][0]["event_type"] == "consent_given"
    assert receipt["collection_method"]["source"] == "app"
    tampered = download.content.replace(b"consent_given", b"consent_refused")
    with pytest.raises(ReceiptInvalid):
        verify_receipt_file(tampered, keys)


def test_another_subjects_event_has_no_receipt_here(
    web: TestClient, signing_container: Container
) -> None:
    theirs = signing_container.consents.change(
        "cust-2", [Change("email", ChoiceState.GRANTED)], Context("web")
    )
    sign_in(web)
    other = web.get(f"/permissions/history/{theirs.entries[0].event_id}/receipt.json?lang=en")
    assert other.status_code == 404
    assert "No such receipt" in other.text and "consent_given" not in other.text


def test_without_a_signing_key_the_receipt_link_answers_503_and_says_why(
    sqlite_container: Container,
) -> None:
    done = sqlite_container.consents.change(
        "cust-1", [Change("email", ChoiceState.GRANTED)], Context("web")
    )
    with TestClient(create_app(sqlite_container)) as client:
        sign_in(client)
        answer = client.get(f"/permissions/history/{done.entries[0].event_id}/receipt.json")
    assert answer.status_code == 503
    assert "Receipts are not available right now" in answer.text


# -- opt-out deliveries to third parties ---------------------------------------------------------
@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with receiving() as r:
        yield r


@pytest.fixture
def hooked(sqlite_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Container]:
    """The mini catalogue with a webhook for adnet (the ad network that gets "ads" data)."""
    settings = Settings(
        database_url=sqlite_url,
        catalogue=webhook_catalogue(tmp_path, receiver.url, ["adnet"]),
        jwt_secret=TEST_SECRET,
        webhook_max_attempts=3,
    )
    c = bootstrap(settings)
    yield c
    c.close()


def adnet_line(client: TestClient) -> str:
    html = client.get("/permissions?lang=en").text
    found = re.search(r'<p class="small delivery">([^<]+)</p>', html)
    assert found is not None, "no delivery line on the page"
    return found.group(1)


def test_a_withdrawal_shows_pending_then_sent_and_acknowledged_for_the_recipient(
    hooked: Container, receiver: Receiver
) -> None:
    consents = hooked.consents
    with TestClient(create_app(hooked)) as client:
        sign_in(client)
        assert '<p class="small delivery">' not in client.get("/permissions?lang=en").text
        consents.change("cust-1", [Change("ads", ChoiceState.GRANTED)], Context("web"))
        consents.change("cust-1", [Change("ads", ChoiceState.DENIED)], Context("web"))
        # The relay planned the delivery; nothing has been sent yet.
        Relay(hooked.db, FeedPublisher(), catalogue=hooked.catalogue).drain()
        assert adnet_line(client) == "Opt-out pending: not delivered yet."
        relay = build_relay(hooked.db, hooked.catalogue, relay_config(hooked.settings))
        try:
            receiver.answer([500])  # reached, but not acknowledged: retried later
            relay.drain()
            assert adnet_line(client).endswith("; acknowledgement pending.")
            assert len(receiver.bodies("/adnet")) == 1
            with hooked.db.write_engine.begin() as conn:  # due again now (skip the backoff)
                conn.execute(webhook_deliveries.update().values(next_attempt_at=datetime.now(UTC)))
            relay.drain()
        finally:
            relay.close()
        line = adnet_line(client)
        assert re.fullmatch(r"Opt-out sent on .+ UTC, acknowledged on .+ UTC\.", line), line
        french = client.get("/permissions?lang=fr").text
        assert "Opposition envoyée le" in french and "confirmée le" in french


# -- export --------------------------------------------------------------------------------------
def test_download_my_data_streams_json_and_csv_of_ones_own_record(
    web: TestClient, signing_container: Container
) -> None:
    consents = signing_container.consents
    consents.change("cust-1", [Change("email", ChoiceState.GRANTED)], Context("web", "en"))
    consents.change("cust-2", [Change("recs", ChoiceState.GRANTED)], Context("web", "en"))
    sign_in(web)
    page = web.get("/permissions?lang=en").text
    assert 'action="/permissions/export"' in page and 'name="format" value="csv"' in page
    as_json = web.get("/permissions/export", params={"format": "json"})
    assert as_json.status_code == 200
    assert as_json.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    assert as_json.headers["cache-control"] == "no-store"
    body = json.loads(as_json.content)
    assert body["subject"] == "cust-1"
    assert [h["permission"] for h in body["history"]] == ["email"]
    as_csv = web.get("/permissions/export", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["permission"], r["state"]) for r in rows] == [("email", "granted")]
    assert web.get("/permissions/export", params={"format": "xml"}).status_code == 422


def test_export_needs_a_session(web: TestClient) -> None:
    assert web.get("/permissions/export").status_code == 401


# -- erasure -------------------------------------------------------------------------------------
def test_delete_my_data_confirms_first_then_erases_and_signs_out(
    web: TestClient, signing_container: Container
) -> None:
    consents = signing_container.consents
    consents.change("cust-1", [Change("email", ChoiceState.GRANTED)], Context("web", "en"))
    signing_container.uses.record(
        [UseReport("cust-1", "marketing.email", ("profile.contact",))], "svc"
    )
    csrf = sign_in(web)
    assert 'href="/permissions/delete?lang=en"' in web.get("/permissions?lang=en").text
    confirm = web.get("/permissions/delete?lang=fr")
    assert confirm.status_code == 200
    for words in ("Ce qui est supprimé", "Ce qui est conservé comme preuve", "Annuler"):
        assert words in confirm.text
    assert 'action="/permissions/delete"' in confirm.text
    assert effective(signing_container)["email"]  # looking at the confirmation erases nothing
    forged = web.post("/permissions/delete", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403 and effective(signing_container)["email"]
    done = web.post(
        "/permissions/delete", data={"csrf": csrf, "lang": "fr"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/permissions/deleted?lang=fr"
    assert 'consentry_session=""' in done.headers["set-cookie"]
    assert {v.state for v in signing_container.queries.permissions("cust-1")} == {"default"}
    # The id finds no chain any more.
    assert signing_container.queries.history("cust-1", 1).events == []
    assert signing_container.uses.for_subject("cust-1")[0] == []
    shown = web.get("/permissions/deleted?lang=fr")
    assert shown.status_code == 200 and "Vos données ont été supprimées" in shown.text
    assert web.get("/permissions").status_code == 401  # signed out


def test_the_deleted_page_is_only_shown_right_after_an_erasure(web: TestClient) -> None:
    answer = web.get("/permissions/deleted?lang=en", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/permissions?lang=en"


# -- re-consent after a material notice change ---------------------------------------------------
def grant_on_old_notice(container: Container, sub: str, pid: str, version: str) -> None:
    """A grant recorded while the notice was still at ``version`` (before the catalogue
    moved on): the same ledger, written through a service that has the older catalogue."""
    catalogue = container.catalogue
    perms = tuple(
        p.model_copy(update={"notice": p.notice.model_copy(update={"version": version})})
        if p.id == pid
        else p
        for p in catalogue.permissions
    )
    older: Catalogue = catalogue.model_copy(update={"permissions": perms})
    ConsentService(container.db, CatalogueIndex(older)).change(
        sub, [Change(pid, ChoiceState.GRANTED)], Context("web", "en")
    )


RECONSENT_BUTTONS = re.compile(
    r'<button type="submit" class="choice-button" name="state" value="(\w+)"[^>]*>([^<]+)</button>'
)


@pytest.mark.parametrize(("answer", "label"), [("denied", "No thanks"), ("granted", "Allow again")])
def test_a_material_change_is_asked_once_and_the_answer_is_kept(
    web: TestClient, signing_container: Container, answer: str, label: str
) -> None:
    grant_on_old_notice(signing_container, "cust-1", "ads", "2")
    csrf = sign_in(web)
    assert not effective(signing_container)["ads"]  # the old grant no longer counts
    page = web.get("/permissions?lang=en").text
    prompt = page[page.index('<section class="reconsent"') : page.index("</section>")]
    assert page.index('id="reconsent"') < page.index('id="summary"')  # at the top
    assert "Personalised ads" in prompt and "We changed what this covers" in prompt
    assert '<input type="hidden" name="v" value="3">' in prompt
    assert RECONSENT_BUTTONS.findall(prompt) == [
        ("denied", "No thanks"),
        ("granted", "Allow again"),
    ]
    posted = web.post(
        "/permissions/ads",
        data={"state": answer, "v": "3", "csrf": csrf, "lang": "en"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert events(signing_container)[0] == ("ads", answer, "web", "3")
    assert effective(signing_container)["ads"] is (answer == "granted")
    for _ in range(2):  # not asked again
        assert 'id="reconsent"' not in web.get("/permissions?lang=en").text
    assert label in page


def test_with_javascript_a_switch_answers_the_prompt_and_the_json_says_so(
    web: TestClient, signing_container: Container
) -> None:
    grant_on_old_notice(signing_container, "cust-1", "ads", "2")
    csrf = sign_in(web)
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    other = web.post("/permissions/recs", data={"state": "granted"}, headers=headers).json()
    assert other["reconsent"] == ["ads"]
    ads = next(p for p in other["permissions"] if p["id"] == "ads")
    # The badge says it changed (status); what changed is asked once, in the prompt.
    assert ads["status"] == "notice_changed" and ads["note"] is None
    answered = web.post("/permissions/ads", data={"state": "granted", "v": "3"}, headers=headers)
    body = answered.json()
    assert body["reconsent"] == []
    ads = next(p for p in body["permissions"] if p["id"] == "ads")
    assert (ads["checked"], ads["status"], ads["note"]) == (True, None, None)


def test_the_prompt_is_translated(web: TestClient, signing_container: Container) -> None:
    grant_on_old_notice(signing_container, "cust-1", "ads", "2")
    sign_in(web)
    page = web.get("/permissions?lang=fr").text
    assert "Nous avons modifié une chose que vous aviez autorisée" in page
    assert "Non merci" in page and "Autoriser à nouveau" in page


# -- expired and auto-reset grants; the rules that apply -----------------------------------------
def test_expired_and_auto_reset_grants_are_told_apart_from_refusals(
    web: TestClient, signing_container: Container
) -> None:
    consents = signing_container.consents
    consents.change("cust-1", [Change("recs", ChoiceState.GRANTED)], Context("web"))
    granted_on = datetime.now(UTC)
    assert signing_container.uses.auto_reset(timedelta(0)) == 1  # recs: granted, never used
    ended = datetime.now(UTC) - timedelta(hours=2)
    consents.change(
        "cust-1", [Change("email", ChoiceState.GRANTED, expires_at=ended)], Context("web")
    )
    consents.change("cust-1", [Change("location", ChoiceState.DENIED)], Context("web"))
    sign_in(web)
    html = web.get("/permissions?lang=en").text

    def card(pid: str) -> str:
        start = html.index(f'<article class="perm" id="p-{pid}"')
        return html[start : html.index("</article>", start)]

    assert "Expired on " in card("email") and ">Expired</span>" in card("email")
    since = f"not used since {granted_on:%B} {granted_on.day}, {granted_on.year}."
    assert since in card("recs") and ">Switched off automatically</span>" in card("recs")
    assert "perm-note" not in card("location") and "badge-status" not in card("location")


def test_the_page_says_which_rules_apply(web: TestClient, signing_container: Container) -> None:
    sign_in(web)
    assert "We do not know where you live" in web.get("/permissions?lang=en").text
    signing_container.rights.set_jurisdiction("cust-1", "BE")
    assert "You are in Belgium: nothing is used" in web.get("/permissions?lang=en").text
    assert "Pour vous (Belgique), rien n&#39;est utilisé" in web.get("/permissions?lang=fr").text


def test_an_auto_reset_grant_is_unused_since_its_last_reported_use(
    web: TestClient, signing_container: Container
) -> None:
    granted = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
    used = datetime(2025, 3, 2, 18, 30, tzinfo=UTC)
    past = ConsentService(signing_container.db, signing_container.index, clock=lambda: granted)
    past.change("cust-1", [Change("recs", ChoiceState.GRANTED)], Context("web"))
    report = UseReport("cust-1", "recommendations", ("behaviour.browsing",), "shop", used)
    signing_container.uses.record([report], "svc")
    uses = signing_container.uses
    assert uses.last_used("cust-1", "recs") == used
    assert uses.last_used("cust-1", "recs", before=used - timedelta(seconds=1)) is None
    assert uses.last_used("cust-2", "recs") is None
    assert uses.auto_reset(timedelta(days=30)) == 1
    sign_in(web)
    assert "because it was not used since March 2, 2025." in web.get("/permissions?lang=en").text
    assert "depuis le 2 mars 2025" in web.get("/permissions?lang=fr").text

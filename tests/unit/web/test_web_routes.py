"""The page's HTTP contract, in-process: sign-in, CSRF, toggles with and without JavaScript,
bulk choices, undo, receipts, languages. The browser suite drives the same routes in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.queries import SubjectQueries
from consentry.services.receipt_signing import (
    load_receipt_keys,
    new_signing_key_pem,
    verify_receipt_file,
)
from consentry.services.uses import UseReport
from support import TEST_SECRET, make_settings

JSON = {"Accept": "application/json"}


def token(sub: str, minutes: int = 10) -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


@pytest.fixture
def demo_container(sqlite_url: str) -> Iterator[Container]:
    c = bootstrap(make_settings(sqlite_url, demo=True))
    yield c
    c.close()


@pytest.fixture
def web(sqlite_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_container), raise_server_exceptions=True) as tc:
        yield tc


@pytest.fixture
def demo(demo_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(demo_container), raise_server_exceptions=True) as tc:
        yield tc


def sign_in(client: TestClient, sub: str = "cust-1") -> str:
    """Open the page with a subject token; returns the page's CSRF token."""
    page = client.get("/permissions", params={"token": token(sub), "lang": "en"})
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


def states(container: Container, sub: str = "cust-1") -> dict[str, str]:
    return {v.id: v.state for v in container.queries.permissions(sub)}


# -- signing in ------------------------------------------------------------------------------------
def test_without_a_session_the_page_asks_to_sign_in(web: TestClient) -> None:
    response = web.get("/permissions")
    assert response.status_code == 401
    assert "Sign in to see your permissions" in response.text
    assert "/demo/login" not in response.text


def test_in_the_demo_the_sign_in_page_links_to_the_demo_login(demo: TestClient) -> None:
    response = demo.get("/permissions")
    assert response.status_code == 401 and 'href="/demo/login"' in response.text


def test_demo_login_and_account_exist_only_in_the_demo(web: TestClient) -> None:
    assert web.get("/demo/login").status_code == 404
    assert web.post("/demo/login", data={"subject": "demo-amelie"}).status_code == 404
    assert web.get("/account").status_code == 404


def test_a_token_in_the_url_becomes_a_cookie_and_leaves_the_url(web: TestClient) -> None:
    response = web.get(
        "/permissions/history",
        params={"token": token("cust-1"), "lang": "fr"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/permissions/history?lang=fr"
    cookie = response.headers["set-cookie"]
    assert "consentry_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie
    assert response.headers["referrer-policy"] == "no-referrer"
    assert web.get("/permissions/history?lang=fr").status_code == 200


def test_the_cookie_is_secure_over_https(sqlite_container: Container) -> None:
    with TestClient(create_app(sqlite_container), base_url="https://testserver") as client:
        response = client.get(
            "/permissions", params={"token": token("cust-1")}, follow_redirects=False
        )
    assert "Secure" in response.headers["set-cookie"]


def test_a_bearer_subject_token_opens_the_page_and_sets_the_cookie(web: TestClient) -> None:
    response = web.get("/permissions", headers={"Authorization": f"Bearer {token('cust-1')}"})
    assert response.status_code == 200 and "consentry_session=" in response.headers["set-cookie"]
    assert web.get("/permissions").status_code == 200


def test_an_invalid_or_expired_token_is_refused(web: TestClient) -> None:
    assert web.get("/permissions", params={"token": token("cust-1", -1)}).status_code == 401
    assert web.get("/permissions", params={"token": "not-a-jwt"}).status_code == 401
    bad = web.get("/permissions", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "not valid or has expired" in bad.text


def test_demo_login_needs_its_form_token_and_a_demo_customer(demo: TestClient) -> None:
    page = demo.get("/demo/login")
    assert "Amélie Fontaine" in page.text and "amelie.fontaine@example.com" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    forged = demo.post("/demo/login", data={"subject": "demo-bram"}, follow_redirects=False)
    assert forged.headers["location"] == "/demo/login"
    stranger = {"subject": "cust-1", "csrf": csrf.group(1)}
    assert (
        demo.post("/demo/login", data=stranger, follow_redirects=False).headers["location"]
        == "/demo/login"
    )
    ok = demo.post(
        "/demo/login", data={"subject": "demo-bram", "csrf": csrf.group(1)}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/account"


@pytest.mark.parametrize(
    ("lang", "label"), [("en", "Your permissions"), ("fr", "Vos autorisations")]
)
def test_the_account_home_links_to_the_permissions_page(
    demo: TestClient, lang: str, label: str
) -> None:
    sign_in(demo, "demo-amelie")
    home = demo.get("/account", params={"lang": lang})
    assert "Hello, Amélie" in home.text or "Bonjour Amélie" in home.text
    link = re.search(r'<a class="account-link" href="([^"]+)">([^<]+)</a>', home.text)
    assert link is not None and link.group(1) == f"/permissions?lang={lang}"
    assert link.group(2) == label


# -- changing a permission -------------------------------------------------------------------------
def test_a_switch_post_without_the_csrf_token_changes_nothing(
    web: TestClient, sqlite_container: Container
) -> None:
    sign_in(web)
    response = web.post("/permissions/recs", data={"state": "granted"}, headers=JSON)
    assert response.status_code == 403
    form = web.post("/permissions/recs", data={"state": "granted", "csrf": "forged"})
    assert form.status_code == 403
    assert states(sqlite_container)["recs"] == "default"


def test_a_switch_with_javascript_gets_json_and_is_recorded_as_a_web_change(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    response = web.post(
        "/permissions/recs",
        data={"state": "granted", "lang": "fr", "v": "2"},
        headers={**JSON, "X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["message"]
        == "Enregistré\u00a0: vous avez activé «\u00a0Recommandations personnalisées\u00a0»."
    )
    recs = next(p for p in body["permissions"] if p["id"] == "recs")
    assert recs == {
        "id": "recs",
        "checked": True,
        "next_state": "denied",
        "state_text": "Activé",
        "note": None,
        "status": None,
    }
    assert body["reconsent"] == []
    assert body["undo"]["fields"] == [["set", "recs=denied"], ["slot", "recs"]]
    event = sqlite_container.queries.history("cust-1").events[0]
    assert (event.source, event.locale, event.notice_version) == ("web", "fr", "2")


def test_a_switch_without_javascript_redirects_back_with_a_confirmation_and_undo(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    posted = web.post(
        "/permissions/fraud",
        data={"state": "denied", "csrf": csrf, "lang": "en"},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/permissions?lang=en#p-fraud"
    assert states(sqlite_container)["fraud"] == "denied"
    page = web.get("/permissions?lang=en")
    assert "Saved: you object to “Fraud prevention”." in page.text
    assert '<input type="hidden" name="set" value="fraud=granted">' in page.text
    assert "Saved: you object" not in web.get("/permissions?lang=en").text  # shown once
    undone = web.post(
        "/permissions",
        data={"set": "fraud=granted", "slot": "fraud", "csrf": csrf, "lang": "en"},
        follow_redirects=False,
    )
    assert undone.status_code == 303 and states(sqlite_container)["fraud"] == "granted"
    assert "Undone: your previous choice is back." in web.get("/permissions?lang=en").text


def test_an_outdated_notice_is_not_granted(web: TestClient, sqlite_container: Container) -> None:
    csrf = sign_in(web)
    response = web.post(
        "/permissions/ads",
        data={"state": "granted", "v": "2"},
        headers={**JSON, "X-CSRF-Token": csrf},
    )
    assert response.status_code == 409
    assert "read it again" in response.json()["message"]
    assert states(sqlite_container)["ads"] == "default"


def test_contract_and_legal_obligation_cannot_be_switched(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    response = web.post(
        "/permissions/orders", data={"state": "denied"}, headers={**JSON, "X-CSRF-Token": csrf}
    )
    assert response.status_code == 422
    assert "orders" not in {
        e.permission_id for e in sqlite_container.queries.history("cust-1").events
    }
    unknown = web.post(
        "/permissions/nope", data={"state": "denied"}, headers={**JSON, "X-CSRF-Token": csrf}
    )
    assert unknown.status_code == 404


def test_accept_all_asks_first_naming_sale_and_transfers_and_refuse_all_refuses_everything(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    headers = {**JSON, "X-CSRF-Token": csrf}
    asked = web.post("/permissions", data={"all": "granted", "lang": "en"}, headers=headers)
    assert asked.status_code == 200 and "Before you accept everything" in asked.text
    assert "Your data is sold to a company that buys personal data." in asked.text
    assert "leaves the European Economic Area, to: United States." in asked.text
    assert set(states(sqlite_container).values()) == {"default"}  # nothing changed yet
    confirmed = {"all": "granted", "confirm": "all", "lang": "en"}
    accepted = web.post("/permissions", data=confirmed, headers=headers)
    assert accepted.json()["message"] == "Saved: you accepted all optional uses (5 changes)."
    after = states(sqlite_container)
    assert {after[p] for p in ("recs", "ads", "email", "sale", "location")} == {"granted"}
    assert after["fraud"] == "default"  # legitimate interest: on already, nothing to withdraw
    refused = web.post("/permissions", data={"all": "denied", "lang": "en"}, headers=headers)
    assert refused.json()["message"] == (
        "Saved: you refused everything you can refuse (6 changes)."
    )
    assert states(sqlite_container)["fraud"] == "denied"  # an objection, recorded
    undo = refused.json()["undo"]
    assert ["set", "recs=granted"] in undo["fields"] and ["slot", "all"] in undo["fields"]
    assert states(sqlite_container)["recs"] == "denied"
    form: dict[str, list[str]] = {}
    for name, value in undo["fields"]:
        form.setdefault(name, []).append(value)
    restore = web.post("/permissions", data=form, headers=headers)
    assert restore.json()["message"] == "Undone: your previous choice is back."
    assert states(sqlite_container)["recs"] == "granted"
    again = web.post("/permissions", data={"all": "denied", "lang": "en"}, headers=headers)
    assert again.json()["count"].startswith("0 of ")  # counter and switches agree
    assert not any(p["checked"] for p in again.json()["permissions"])


def test_accept_all_except_these_leaves_the_sensitive_uses_off(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    headers = {**JSON, "X-CSRF-Token": csrf}
    form = {"all": "granted", "confirm": "except", "lang": "en"}
    accepted = web.post("/permissions", data=form, headers=headers)
    assert accepted.json()["message"] == (
        "Saved: you accepted all except the uses named before (3 changes)."
    )
    after = states(sqlite_container)
    assert after["ads"] == after["sale"] == "default"
    assert {after[p] for p in ("recs", "email", "location")} == {"granted"}


def test_a_malformed_bulk_post_changes_nothing(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    headers = {**JSON, "X-CSRF-Token": csrf}
    assert web.post("/permissions", data={"all": "maybe"}, headers=headers).status_code == 422
    assert web.post("/permissions", data={"set": "recs=maybe"}, headers=headers).status_code == 422
    assert set(states(sqlite_container).values()) == {"default"}


def test_posting_without_a_session_changes_nothing(web: TestClient) -> None:
    response = web.post("/permissions/recs", data={"state": "granted"}, headers=JSON)
    assert response.status_code == 401
    form = web.post("/permissions/recs", data={"state": "granted"}, follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == "/permissions"


# -- history and receipts --------------------------------------------------------------------------
def test_history_lists_changes_with_source_and_a_signed_receipt_of_ones_own_events_only(
    sqlite_url: str,
) -> None:
    signed = bootstrap(make_settings(sqlite_url, receipt_signing_key=new_signing_key_pem()))
    consents = signed.consents
    mine = consents.change("cust-1", [Change("email", ChoiceState.GRANTED)], Context("app", "fr"))
    theirs = consents.change("cust-2", [Change("email", ChoiceState.GRANTED)], Context("web"))
    with TestClient(create_app(signed)) as web:
        sign_in(web)
        history = web.get("/permissions/history?lang=en").text
        assert "Offers by e-mail" in history and "Switched on" in history and ">App<" in history
        event_id = str(mine.entries[0].event_id)
        receipt = web.get(f"/permissions/history/{event_id}/receipt.json")
        other = web.get(f"/permissions/history/{theirs.entries[0].event_id}/receipt.json")
    assert receipt.status_code == 200
    assert receipt.headers["content-disposition"].startswith("attachment;")
    keys = load_receipt_keys(signed.settings).verifying_keys()
    body = verify_receipt_file(receipt.content, keys).receipt
    assert body["record_id"] == event_id and body["pii_principal_id"] == "cust-1"
    assert body["privacy_notice"]["title"] == "Offres par e-mail"
    assert body["ledger"]["hash"] == mine_hash(signed.queries, event_id)
    assert other.status_code == 404
    signed.close()


def mine_hash(queries: SubjectQueries, event_id: str) -> str:
    return next(e.hash for e in queries.history("cust-1").events if e.event_id == event_id)


def test_who_used_my_data_explains_that_nothing_is_reported_yet(web: TestClient) -> None:
    sign_in(web)
    page = web.get("/permissions/accesses?lang=en")
    assert page.status_code == 200 and "Nothing to show yet." in page.text


def test_who_used_my_data_lists_reported_uses_and_flags_violations(
    web: TestClient, sqlite_container: Container
) -> None:
    report = UseReport("cust-1", "recommendations", ("behaviour.browsing",), "shop")
    sqlite_container.uses.record([report, report], service="key:recs-service")
    sign_in(web)
    page = web.get("/permissions/accesses?lang=en").text
    assert "Nothing to show yet." not in page
    # Named by the switch's own title.
    assert "<strong>Personal recommendations</strong>" in page
    assert "Used by: Example Shop B.V." in page
    assert "Used 2 times" in page
    assert "2 of these uses did not respect your choices at the time" in page


def test_who_used_my_data_counts_the_uses_refused_because_the_switch_is_off_without_javascript(
    web: TestClient, sqlite_container: Container
) -> None:
    refrained = UseReport(
        "cust-1", "advertising", ("behaviour.browsing",), "adnet", outcome="refrained"
    )
    sqlite_container.uses.record([refrained] * 3, service="key:ads-service")
    sign_in(web)
    page = web.get("/permissions/accesses?lang=en").text
    assert "Refused because you said no" in page
    assert (
        "We did not use your data for “Personalised ads” 3 times this week, because it is off."
        in page
    )
    assert 'href="/permissions?lang=en&amp;open=ads#p-ads">See this switch</a>' in page
    assert "Used 3 times" not in page  # refused, not used
    assert "Nothing to show yet." not in page  # something is shown: the refusals


# -- languages -------------------------------------------------------------------------------------
def test_language_comes_from_the_query_then_the_stored_choice_then_accept_language(
    web: TestClient,
) -> None:
    sign_in(web)  # opened with ?lang=en: English is now the stored choice
    assert '<html lang="en">' in web.get("/permissions", headers={"Accept-Language": "fr"}).text
    web.cookies.delete("consentry_lang")  # nothing stored: the browser's language
    assert '<html lang="fr">' in web.get("/permissions", headers={"Accept-Language": "fr"}).text
    query = web.get("/permissions?lang=en", headers={"Accept-Language": "fr"}).text
    assert '<html lang="en">' in query
    web.cookies.delete("consentry_lang")
    # The mini catalogue has English and French only: German is not offered.
    german = web.get("/permissions", headers={"Accept-Language": "de, fr;q=0.5"}).text
    assert '<html lang="fr">' in german and 'hreflang="de"' not in german


def test_every_switch_has_role_switch_and_the_catalogue_title_as_its_name(
    web: TestClient, sqlite_container: Container
) -> None:
    sign_in(web)
    html = web.get("/permissions?lang=fr").text
    catalog = web.get("/v1/catalog?locale=fr").json()["permissions"]
    for perm in catalog:
        switch = f'id="sw-{perm["id"]}" role="switch"'
        if perm["toggleable"]:
            assert switch in html
            assert f'<h3 class="perm-title" id="t-{perm["id"]}">{perm["title"]}</h3>' in html
        else:
            assert switch not in html

"""The customer's stored language and time zone on the page: precedence, the switcher that
stores the choice, the time zone control, times in the stored zone, the readable export."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.web import i18n
from support import TEST_SECRET

OFFERED = ("en", "fr", "nl", "de")
MOMENT = datetime(2026, 1, 5, 14, 3, tzinfo=UTC)
SID = "cust-prefs-yannick"


def token(sub: str = SID) -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


@pytest.fixture
def web(sqlite_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_container), raise_server_exceptions=True) as tc:
        yield tc


def sign_in(client: TestClient, *, lang: str = "en") -> str:
    page = client.get("/permissions", params={"token": token(), "lang": lang})
    assert page.status_code == 200, page.text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert found is not None
    return found.group(1)


def plain(text: str) -> str:
    """CLDR puts a narrow no-break space before AM/PM."""
    return text.replace("\u202f", " ")


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="(\w+)"', html)
    assert found is not None
    return found.group(1)


# -- precedence (pure) -----------------------------------------------------------------------------
def test_the_stored_language_beats_the_query_the_browser_and_accept_language() -> None:
    chosen = i18n.negotiate("nl", "de", OFFERED, "en", stored="fr", remembered="en")
    assert chosen == "fr"


def test_without_a_stored_language_the_query_then_this_browser_then_accept_language() -> None:
    assert i18n.negotiate("nl", "de", OFFERED, "en", remembered="en") == "nl"
    assert i18n.negotiate(None, "de", OFFERED, "en", remembered="en") == "en"
    assert i18n.negotiate(None, "de", OFFERED, "en") == "de"


def test_a_stored_language_no_longer_offered_falls_through_to_the_next() -> None:
    assert i18n.negotiate("nl", None, OFFERED, "en", stored="es") == "nl"
    assert i18n.negotiate(None, "de", ("en", "fr"), "en", stored="de") == "en"


# -- times in a zone (pure) ------------------------------------------------------------------------
def test_times_default_to_utc_and_say_so() -> None:
    assert plain(i18n.translator("en").datetime(MOMENT)) == "January 5, 2026, 2:03:00 PM UTC"


@pytest.mark.parametrize(
    ("locale", "zone", "expected"),
    [
        ("en", "Europe/Amsterdam", "January 5, 2026, 3:03:00 PM GMT+01:00"),
        ("en", "America/New_York", "January 5, 2026, 9:03:00 AM GMT-05:00"),
        ("fr", "Europe/Paris", "5 janvier 2026, 15:03:00 UTC+01:00"),
        ("de", "Asia/Kolkata", "5. Januar 2026, 19:33:00 GMT+05:30"),
    ],
)
def test_times_in_the_stored_zone_name_their_offset(locale: str, zone: str, expected: str) -> None:
    assert plain(i18n.translator(locale, zone).datetime(MOMENT)) == expected


def test_the_day_is_the_day_in_the_zone() -> None:
    late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert i18n.translator("en").date(late) == "January 5, 2026"
    assert i18n.translator("en", "Europe/Berlin").date(late) == "January 6, 2026"


def test_a_zone_this_system_does_not_know_shows_utc() -> None:
    assert i18n.translator("en", "Mars/Olympus_Mons").datetime(MOMENT).endswith("UTC")


# -- the page -------------------------------------------------------------------------------------
def test_the_switcher_stores_the_language_for_the_account(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    picked = web.post(
        "/permissions/language",
        data={"csrf": csrf, "lang": "fr", "back": "/permissions/history"},
        follow_redirects=False,
    )
    assert picked.status_code == 303
    assert picked.headers["location"] == "/permissions/history?lang=fr"
    assert sqlite_container.preferences.get(SID).locale == "fr"
    # Another device: no cookie but the session's, an English browser, even an English link.
    web.cookies.delete("consentry_lang")
    english = {"Accept-Language": "en"}
    assert lang_of(web.get("/permissions?lang=en", headers=english).text) == "fr"


def test_the_switcher_refuses_a_post_without_its_csrf_token_and_foreign_targets(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    forged = web.post("/permissions/language", data={"lang": "fr"}, follow_redirects=False)
    assert forged.status_code == 403
    assert sqlite_container.preferences.get(SID).locale is None
    away = web.post(
        "/permissions/language",
        data={"csrf": csrf, "lang": "fr", "back": "//evil.example.com/x"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/permissions?lang=fr"
    summary = web.post(
        "/permissions/language",
        data={"csrf": csrf, "lang": "en", "back": "/permissions/export?format=html&token=x"},
        follow_redirects=False,
    )
    assert summary.headers["location"] == "/permissions/export?lang=en&format=html"
    unknown = web.post(
        "/permissions/language", data={"csrf": csrf, "lang": "xx"}, follow_redirects=False
    )
    assert unknown.status_code == 303 and sqlite_container.preferences.get(SID).locale == "en"


def test_signed_out_pages_keep_the_language_links(web: TestClient) -> None:
    page = web.get("/permissions?lang=fr")
    assert 'hreflang="en"' in page.text and 'action="/permissions/language"' not in page.text


def test_the_time_zone_control_stores_the_zone_and_times_follow_it(
    web: TestClient, sqlite_container: Container
) -> None:
    sqlite_container.consents.change(
        SID, [Change("recs", ChoiceState.GRANTED, notice_version="2")], Context("web", "en")
    )
    csrf = sign_in(web)
    page = web.get("/permissions?lang=en").text
    assert 'id="zone-select"' in page and 'value="UTC" selected' in page
    saved = web.post(
        "/permissions/time-zone",
        data={"csrf": csrf, "lang": "en", "time_zone": "America/New_York"},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("#time-zone")
    page = web.get("/permissions?lang=en").text
    assert 'data-time-zone="America/New_York"' in page
    assert "Saved: your time zone is now New York." in page
    history = web.get("/permissions/history?lang=en").text
    assert re.search(r"GMT-0[45]:00</time>", history)


def test_an_unknown_time_zone_is_refused_and_the_stored_one_kept(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    sqlite_container.preferences.update(SID, time_zone="Europe/Amsterdam")
    headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
    refused = web.post("/permissions/time-zone", data={"time_zone": "Moon/Base"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_preference"
    first = web.post(
        "/permissions/time-zone", data={"time_zone": "Asia/Tokyo", "first": "1"}, headers=headers
    )
    assert first.status_code == 204
    assert sqlite_container.preferences.get(SID).time_zone == "Europe/Amsterdam"


def test_the_readable_export_speaks_the_customers_language_and_lists_the_permissions(
    web: TestClient, sqlite_container: Container
) -> None:
    sqlite_container.consents.change(
        SID, [Change("recs", ChoiceState.GRANTED, notice_version="2")], Context("web", "fr")
    )
    sign_in(web)
    sqlite_container.preferences.update(SID, locale="fr", time_zone="Europe/Paris")
    page = web.get("/permissions/export?format=html&lang=en")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert lang_of(html) == "fr" and "Vos données chez" in html
    catalog = web.get("/v1/catalog?locale=fr").json()["permissions"]
    recs = next(p["title"] for p in catalog if p["id"] == "recs")
    assert html.count(f"<strong>{recs}</strong>") == 2  # as it stands, and in the history
    assert "UTC+01:00" in html and "Fuseau horaire" in html and "@media print" not in html
    assert "data-print" in html
    assert 'name="back" value="/permissions/export?format=html"' in html  # the switcher returns
    # Linked first, before the files, from the page's "Your data".
    rights = web.get("/permissions").text
    links = [rights.index(m) for m in ("format=html", 'value="json"', 'value="csv"')]
    assert links == sorted(links)


def test_after_erasure_signing_in_again_finds_no_stored_language_or_zone(
    web: TestClient, sqlite_container: Container
) -> None:
    csrf = sign_in(web)
    web.post("/permissions/language", data={"csrf": csrf, "lang": "fr"})
    sqlite_container.preferences.update(SID, time_zone="Asia/Tokyo")
    assert lang_of(web.get("/permissions").text) == "fr"
    erased = web.post("/permissions/delete", data={"csrf": csrf}, follow_redirects=False)
    assert erased.status_code == 303
    web.cookies.clear()  # a fresh browser: only the account could remember the choice
    again = web.get(
        "/permissions", params={"token": token()}, headers={"Accept-Language": "en"}
    ).text
    assert lang_of(again) == "en" and "data-time-zone" not in again
    assert 'value="UTC" selected' in again

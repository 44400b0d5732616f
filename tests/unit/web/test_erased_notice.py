"""The History tab says "Your earlier data was deleted on <date>" only when the platform's
sign-in token says so (``erased_on``); the day rides in the session cookie, nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.http.session import Session, Signer
from consentry.web import i18n
from consentry.web.activity import erased_notice
from support import TEST_SECRET, bearer

ERASED = "2025-03-14"
NOTICES = {
    "en": "Your earlier data was deleted on March 14, 2025.",
    "fr": "Vos données antérieures ont été supprimées le 14 mars 2025.",
    "nl": "Uw eerdere gegevens zijn verwijderd op 14 maart 2025.",
    "de": "Ihre früheren Daten wurden am 14. März 2025 gelöscht.",
}


def token(sub: str = "cust-1", **extra: object) -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10), **extra}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


@pytest.fixture
def web(sqlite_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_container), raise_server_exceptions=True) as tc:
        yield tc


def history(client: TestClient, lang: str = "en", **params: str) -> str:
    page = client.get("/permissions/history", params={"lang": lang, **params})
    assert page.status_code == 200, page.text
    return page.text


@pytest.mark.parametrize("lang", ["en", "fr"])  # the languages of the test catalogue
def test_the_notice_shows_with_the_claim(web: TestClient, lang: str) -> None:
    text = history(web, lang, token=token(erased_on=ERASED))
    assert NOTICES[lang] in text


@pytest.mark.parametrize("lang", sorted(NOTICES))
def test_the_notice_is_translated(lang: str) -> None:
    tr = i18n.translator(lang)
    day = erased_notice(tr, Session("cust-1", 0, "n", date.fromisoformat(ERASED)))
    assert tr.gettext("Your earlier data was deleted on %(date)s.", date=day) == NOTICES[lang]
    assert erased_notice(tr, Session("cust-1", 0, "n")) is None


def test_no_notice_without_the_claim(web: TestClient) -> None:
    assert "erased-notice" not in history(web, token=token())
    # A later sign-in without the claim starts a session without it.
    assert "erased-notice" in history(web, token=token(erased_on=ERASED))
    assert "erased-notice" not in history(web, token=token())


def test_a_bearer_sign_in_passes_the_claim_too(web: TestClient) -> None:
    page = web.get("/permissions/history", headers=bearer(token(erased_on=ERASED)))
    assert NOTICES["en"] in page.text
    assert "erased-notice" in history(web)  # the cookie it set carries the day


def test_a_token_with_a_day_in_the_future_is_refused(web: TestClient) -> None:
    later = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    page = web.get("/permissions/history", params={"token": token(erased_on=later)})
    assert page.status_code == 401


def test_the_day_is_stored_nowhere_on_the_server(
    web: TestClient, sqlite_container: Container, sqlite_url: str
) -> None:
    sqlite_container.consents.change("cust-1", [Change("recs", ChoiceState.DENIED)], Context())
    assert NOTICES["en"] in history(web, token=token(erased_on=ERASED))
    sqlite_container.db.dispose()  # checkpoint the WAL into the file
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert ERASED.encode() not in stored and b"20250314" not in stored


def test_the_session_cookie_carries_the_day_signed() -> None:
    signer = Signer("s" * 32)
    session, cookie = signer.new_session("cust-1", date(2025, 3, 14))
    assert signer.session(cookie) == session and session.erased_on == date(2025, 3, 14)
    plain, cookie = signer.new_session("cust-1")
    assert signer.session(cookie) == plain and plain.erased_on is None


def test_after_an_erasure_the_platform_passes_the_day_it_was_told(
    web: TestClient, sqlite_container: Container
) -> None:
    sqlite_container.consents.change("cust-1", [Change("recs", ChoiceState.DENIED)], Context())
    assert "history-item" in history(web, token=token())
    erased = web.delete("/v1/subjects/cust-1", headers=bearer(token()))
    assert erased.status_code == 200, erased.text
    day = erased.json()["erased_at"][:10]  # what the platform keeps with its account
    text = history(web, token=token(erased_on=day))
    assert "erased-notice" in text and "history-item" not in text

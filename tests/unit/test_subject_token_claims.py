"""The subject token's optional ``erased_on`` claim: a past or present day, or the token is
refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import jwt
import pytest

from consentry.services.tokens import ClaimInvalid, SubjectClaims, TokenService, erased_on
from support import TEST_SECRET, make_settings

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def test_a_missing_claim_is_no_day() -> None:
    assert erased_on(None, NOW) is None


@pytest.mark.parametrize(
    ("value", "day"),
    [("2026-11-20", date(2026, 11, 20)), ("2026-12-02", NOW.date()), ("2026-12-03", None)],
)
def test_a_day_up_to_today_somewhere_on_earth_is_accepted(value: str, day: date | None) -> None:
    # 10:00 UTC on 2 December is already 3 December at UTC+14.
    assert erased_on(value, NOW) == (day or date(2026, 12, 3))


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-04",
        "2027-01-01",
        "2026-02-30",
        "20261120",
        "2026-11-20T00:00:00Z",
        "",
        20261120,
        ["2026-11-20"],
        "2026-1-20 ",
    ],
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(ClaimInvalid):
        erased_on(value, NOW)


def _token(**extra: object) -> str:
    now = datetime.now(UTC)
    claims = {"sub": "cust-1", "iat": now, "exp": now + timedelta(minutes=5), **extra}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


def test_the_token_service_reads_the_claim_and_refuses_a_token_with_a_bad_one() -> None:
    tokens = TokenService(make_settings("sqlite://"))
    assert tokens.verify_claims(_token()) == SubjectClaims("cust-1", None)
    assert tokens.verify_claims(_token(erased_on="2025-03-14")) == SubjectClaims(
        "cust-1", date(2025, 3, 14)
    )
    assert tokens.verify(_token(erased_on="2025-03-14")) == "cust-1"
    tomorrow_everywhere = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert tokens.verify_claims(_token(erased_on=tomorrow_everywhere)) is None
    assert tokens.verify(_token(erased_on="14/03/2025")) is None

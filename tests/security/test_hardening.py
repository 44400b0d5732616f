"""Input limits, rate limiting, security headers, cookies and CSRF on the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import MAX_BYTES, CatalogueError, parse_catalogue
from consentry.config import DEMO_JWT_SECRET, InsecureSettings, Settings
from consentry.http.ratelimit import TokenBuckets
from consentry.storage.tables import api_keys
from support import bearer, make_settings

SID = "cust-hard-1"


def _client(container: Container, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(container), base_url=base_url, raise_server_exceptions=False)


@pytest.fixture
def box(sqlite_url: str) -> Iterator[Container]:
    container = bootstrap(make_settings(sqlite_url, max_batch=10))
    yield container
    container.close()


@pytest.fixture
def api(box: Container) -> Iterator[TestClient]:
    with _client(box) as client:
        yield client


@pytest.fixture
def admin(box: Container) -> dict[str, str]:
    return bearer(box.keys.create(["admin"]))


# -- input limits ---------------------------------------------------------------------------
def test_a_body_over_the_limit_is_refused_before_it_is_read(
    api: TestClient, admin: dict[str, str]
) -> None:
    response = api.put(
        f"/v1/subjects/{SID}/permissions/ads",
        content=b"{" + b" " * 1_000_001 + b"}",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_a_batch_over_the_limit_is_refused(api: TestClient, admin: dict[str, str]) -> None:
    check = {"subject": SID, "purpose": "advertising", "categories": ["behaviour.browsing"]}
    response = api.post("/v1/decisions/batch", json={"checks": [check] * 11}, headers=admin)
    assert response.status_code == 413 and response.json()["code"] == "batch_too_large"
    assert api.post("/v1/decisions/batch", json={"checks": [check] * 10}, headers=admin).is_success


@pytest.mark.parametrize(
    ("method", "path", "body", "extra"),
    [
        ("GET", "/v1/subjects/" + "s" * 201 + "/permissions", None, {}),
        ("PUT", f"/v1/subjects/{SID}/permissions/" + "p" * 101, {"state": "granted"}, {}),
        (
            "PUT",
            f"/v1/subjects/{SID}/permissions/ads",
            {"state": "granted", "notice_version": "3", "options": {f"o{i}": i for i in range(21)}},
            {},
        ),
        (
            "PUT",
            f"/v1/subjects/{SID}/permissions/ads",
            {"state": "granted", "notice_version": "3"},
            {"Idempotency-Key": "k" * 201},
        ),
        (
            "POST",
            "/v1/decisions",
            {"subject": "s" * 201, "purpose": "ads", "categories": ["x"]},
            {},
        ),
        ("POST", "/v1/decisions", {"subject": SID, "purpose": "ads", "categories": []}, {}),
        (
            "PUT",
            f"/v1/subjects/{SID}/devices/phone",
            {"platform": "ios", "app_version": "v" * 41, "os_permissions": {}},
            {},
        ),
    ],
    ids=[
        "subject-id",
        "permission-id",
        "options",
        "idempotency-key",
        "decision-subject",
        "no-categories",
        "app-version",
    ],
)
def test_strings_and_collections_past_their_limits_are_refused(
    api: TestClient,
    admin: dict[str, str],
    method: str,
    path: str,
    body: object,
    extra: dict[str, str],
) -> None:
    response = api.request(method, path, json=body, headers={**admin, **extra})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_a_catalogue_file_too_large_or_an_alias_bomb_is_refused_quickly() -> None:
    with pytest.raises(CatalogueError, match="over"):
        parse_catalogue("a: " + "x" * MAX_BYTES)
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        bomb += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    with pytest.raises(CatalogueError, match="aliases are expanded"):
        parse_catalogue(bomb)


# -- rate limiting --------------------------------------------------------------------------
def test_token_buckets_refill_at_their_rate() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        assert buckets.wait("k") == 0
        buckets.take("k")
    assert buckets.wait("k") == pytest.approx(0.5)
    assert buckets.wait("other") == 0
    now[0] += 0.5
    assert buckets.wait("k") == 0


def test_token_buckets_forget_the_least_recent_callers_past_their_bound() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_buckets=100)
    for i in range(1_000):
        buckets.take(f"caller-{i}")
    assert len(buckets._buckets) == 100


def test_a_credential_over_its_rate_gets_429_with_retry_after(sqlite_url: str) -> None:
    container = bootstrap(
        make_settings(
            sqlite_url, rate_limit_per_key=0.5, rate_limit_key_burst=3, rate_limit_per_subject=0
        )
    )
    first, second = (
        bearer(container.keys.create(["decide"])),
        bearer(container.keys.create(["decide"])),
    )
    body = {"subject": SID, "purpose": "advertising", "categories": ["behaviour.browsing"]}
    with _client(container) as api:
        answers = [api.post("/v1/decisions", json=body, headers=first) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        limited = answers[-1]
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert limited.headers["x-content-type-options"] == "nosniff"
        # Another key has its own bucket; health checks are never limited.
        assert api.post("/v1/decisions", json=body, headers=second).status_code == 200
        assert all(api.get("/healthz").status_code == 200 for _ in range(5))
    container.close()


def test_one_subject_hammered_from_many_keys_gets_429(sqlite_url: str) -> None:
    container = bootstrap(
        make_settings(
            sqlite_url,
            rate_limit_per_key=0,
            rate_limit_per_subject=0.5,
            rate_limit_subject_burst=2,
        )
    )
    keys = [bearer(container.keys.create(["subjects:read"])) for _ in range(3)]
    with _client(container) as api:
        codes = [api.get(f"/v1/subjects/{SID}/permissions", headers=k).status_code for k in keys]
        assert codes == [200, 200, 429]
        assert api.get("/v1/subjects/someone-else/permissions", headers=keys[2]).status_code == 200
    container.close()


def test_rate_limits_are_off_when_set_to_zero(sqlite_url: str) -> None:
    container = bootstrap(make_settings(sqlite_url, rate_limit_per_key=0, rate_limit_per_subject=0))
    with _client(container) as api:
        assert all(api.get("/v1/catalog").status_code == 200 for _ in range(50))
    container.close()


# -- headers ---------------------------------------------------------------------------------
def test_api_answers_forbid_sniffing_framing_and_referrers(api: TestClient) -> None:
    response = api.get("/v1/catalog")
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "strict-transport-security" not in headers  # plain http, hsts setting off


def test_answers_about_a_subject_are_never_cached(api: TestClient, admin: dict[str, str]) -> None:
    assert api.get(f"/v1/subjects/{SID}/permissions", headers=admin).headers["cache-control"] == (
        "no-store"
    )
    assert api.get(f"/v1/subjects/{SID}/permissions").headers["cache-control"] == "no-store"
    decision = {"subject": SID, "purpose": "advertising", "categories": ["behaviour.browsing"]}
    answer = api.post("/v1/decisions", json=decision, headers=admin)
    assert answer.headers["cache-control"] == "no-store"
    # The public notice may be cached; the well-known files say for how long themselves.
    assert "cache-control" not in api.get("/v1/catalog").headers
    assert "max-age" in api.get("/.well-known/gpc.json").headers["cache-control"]


def test_hsts_is_sent_over_https_and_when_the_setting_says_so(
    box: Container, sqlite_url: str
) -> None:
    with _client(box, "https://testserver") as secure:
        assert secure.get("/healthz").headers["strict-transport-security"].startswith("max-age=")
    behind_proxy = bootstrap(make_settings(sqlite_url, hsts=True))
    with _client(behind_proxy) as plain:
        assert "strict-transport-security" in plain.get("/healthz").headers
    behind_proxy.close()


def test_the_page_keeps_its_own_content_security_policy(api: TestClient) -> None:
    page = api.get("/permissions")  # the sign-in page
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    docs = api.get("/docs")
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"


# -- the page: cookies and CSRF ---------------------------------------------------------------
def _signed_in(box: Container, base_url: str) -> tuple[TestClient, str]:
    client = _client(box, base_url)
    token = box.tokens.issue(SID)
    response = client.get(f"/permissions?token={token}", follow_redirects=False)
    assert response.status_code == 303
    return client, response.headers["set-cookie"]


def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(box: Container) -> None:
    client, cookie = _signed_in(box, "https://testserver")
    with client:
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=lax"} <= flags


def test_a_page_change_without_its_csrf_token_is_refused(box: Container) -> None:
    client, _ = _signed_in(box, "http://testserver")
    with client:
        refused = client.post(
            "/permissions/ads",
            data={"state": "granted", "notice_version": "3"},
            headers={"Accept": "application/json"},
        )
        assert refused.status_code == 403 and refused.json()["code"] == "csrf"
        forged = client.post(
            "/permissions/ads",
            data={"state": "granted", "notice_version": "3", "csrf": "forged"},
            headers={"Accept": "application/json"},
        )
        assert forged.status_code == 403
    assert all(v.state == "default" for v in box.queries.permissions(SID))


def test_the_api_never_accepts_the_page_cookie(box: Container) -> None:
    """The API reads only the Authorization header, so a cross-site request that carries the
    page's cookie reaches nothing: no CSRF on the API."""
    client, _ = _signed_in(box, "http://testserver")
    with client:
        assert client.cookies.get("consentry_session")
        response = client.put(
            f"/v1/subjects/{SID}/permissions/ads", json={"state": "granted", "notice_version": "3"}
        )
        assert response.status_code == 401


# -- secrets at rest and in configuration -----------------------------------------------------
def test_service_keys_are_stored_only_as_hashes(box: Container) -> None:
    secret = box.keys.create(["decide"])
    with box.db.read() as conn:
        rows = [tuple(str(v) for v in r) for r in conn.execute(select(api_keys)).all()]
    assert rows and not any(secret in value for row in rows for value in row)
    assert box.keys.verify(secret) is not None
    assert box.keys.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


@pytest.mark.parametrize(
    "secret", [None, DEMO_JWT_SECRET, "short-secret"], ids=["none", "demo", "short"]
)
def test_the_server_refuses_to_start_with_a_missing_weak_or_demo_secret(
    secret: str | None,
) -> None:
    with pytest.raises(InsecureSettings):
        Settings(jwt_secret=secret, demo=False).check_secure()
    Settings(jwt_secret="s" * 32).check_secure()

"""Every API route × every kind of credential → the status its declared access rule implies.

Generated from the app's route table and ``consentry.http.access``: a new route without a rule
fails ``test_every_api_route_declares_who_may_call_it`` (with what to add), and a route whose
dependencies do not enforce its rule fails the matrix. Requests carry no body: authorization
runs before the body is validated, so an allowed call answers 2xx or 422 and changes nothing
that matters, while a refused one answers 401, 403 or 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.http import access
from consentry.http.access import SCOPE, SUBJECT_SCOPED, Access
from consentry.scopes import Scope
from consentry.storage.tables import api_keys
from support import TEST_SECRET, make_settings

SID = "victim-1"  # the subject every path names
OTHER = "intruder-1"  # a subject whose token tries to reach SID
NEVER_SEEN = "nobody-at-all-1"
# A value for each path parameter; a new route with a new parameter adds one here.
SAMPLES = {
    "sid": SID,
    "pid": "ads",
    "device_id": "phone-1",
    "event_id": str(uuid.uuid4()),
    "delivery_id": "1",
}
API_PREFIXES = ("/v1/", "/.well-known/", "/healthz", "/metrics")
ALLOWED = "allowed"
INVALID = (
    "none",
    "basic-auth",
    "empty-bearer",
    "unknown-key",
    "revoked-key",
    "expired-token",
    "forged-token",
    "alg-none-token",
    "token-without-exp",
)


def _receipt_key() -> str:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


@dataclass
class World:
    app: FastAPI
    client: TestClient
    container: Container
    credentials: dict[str, dict[str, str]]


def _token(sub: str, secret: str, *, expires: timedelta | None, alg: str = "HS256") -> str:
    claims: dict[str, Any] = {"sub": sub, "iat": datetime.now(UTC)}
    if expires is not None:
        claims["exp"] = datetime.now(UTC) + expires
    if alg == "none":  # unsigned: "alg": "none", empty signature
        return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    return jwt.encode(claims, secret, algorithm=alg)


def _credentials(container: Container) -> dict[str, dict[str, str]]:
    revoked = container.keys.create(["admin"], name="revoked")
    with container.db.write() as conn:
        conn.execute(
            update(api_keys)
            .values(revoked_at=datetime.now(UTC))
            .where(api_keys.c.name == "revoked")
        )
    hour = timedelta(hours=1)
    raw: dict[str, str | None] = {
        "none": None,
        "basic-auth": "Basic dXNlcjpwYXNzd29yZA==",
        "empty-bearer": "Bearer ",
        "unknown-key": "Bearer csk_0000000000000000_" + "A" * 43,
        "revoked-key": f"Bearer {revoked}",
        "expired-token": f"Bearer {_token(SID, TEST_SECRET, expires=-hour)}",
        "forged-token": f"Bearer {_token(SID, 'another-secret-' + 'y' * 40, expires=hour)}",
        "alg-none-token": f"Bearer {_token(SID, '', expires=hour, alg='none')}",
        "token-without-exp": f"Bearer {_token(SID, TEST_SECRET, expires=None)}",
        "own-token": f"Bearer {container.tokens.issue(SID)}",
        "other-subject-token": f"Bearer {container.tokens.issue(OTHER)}",
    }
    for scope in Scope:
        raw[f"key:{scope.value}"] = f"Bearer {container.keys.create([scope.value])}"
    return {name: ({"Authorization": v} if v else {}) for name, v in raw.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('authz') / 'authz.db'}"
    container = bootstrap(
        make_settings(
            url,
            receipt_signing_key=_receipt_key(),
            rate_limit_per_key=0,
            rate_limit_per_subject=0,
        )
    )
    for subject in (SID, OTHER):
        container.consents.change(subject, [Change("ads", ChoiceState.GRANTED)], Context())
    app = create_app(container)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(app, client, container, _credentials(container))
    container.close()


def expected(rule: Access, credential: str) -> int | str:
    """The answer the rule implies: ALLOWED (past authorization) or the refusal status."""
    if rule is Access.PUBLIC:
        return ALLOWED
    if credential in INVALID:
        return 401
    if credential == "own-token":
        return ALLOWED if rule in {Access.SUBJECT_READ, Access.SUBJECT_WRITE} else 403
    if credential == "other-subject-token":
        return 404 if rule in SUBJECT_SCOPED else 403
    scope = Scope(credential.removeprefix("key:"))
    return ALLOWED if scope in {SCOPE[rule], Scope.ADMIN} else 403


def _operations(app: FastAPI) -> list[tuple[str, str, access.Rule | None]]:
    """(METHOD, path, rule) for every operation in the OpenAPI schema and every API route."""
    found = dict(access.rules(app))
    schema_ops = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    ops = {k: v for k, v in found.items() if k in schema_ops or k[1].startswith(API_PREFIXES)}
    return sorted((m, p, r) for (m, p), r in ops.items())


def _fill(path: str) -> str:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    missing = [n for n in names if n not in SAMPLES]
    assert not missing, f"add a sample value for path parameter(s) {missing} to SAMPLES ({path})"
    return path.format(**SAMPLES)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    return client.request(method, _fill(path), headers=headers)


def _is_auth_404(response: Any) -> bool:
    return bool(response.status_code == 404 and response.json().get("detail") == "no such subject")


def test_every_api_route_declares_who_may_call_it(world: World) -> None:
    undeclared = [f"{m} {p}" for m, p, rule in _operations(world.app) if rule is None]
    assert not undeclared, (
        "these routes have no access rule: "
        + ", ".join(undeclared)
        + ". Declare one next to the route, e.g. "
        + '@router.get("/v1/...", openapi_extra=access.declare(Access.SUBJECT_READ)) '
        + "(consentry.http.access), or add it to access.RULES; the kinds are "
        + ", ".join(a.value for a in Access)
    )


def test_api_routes_are_all_in_the_openapi_schema(world: World) -> None:
    paths = world.app.openapi()["paths"]
    hidden = [f"{m} {p}" for m, p, _ in _operations(world.app) if m.lower() not in paths.get(p, {})]
    assert not hidden, f"API routes missing from /openapi.json (include_in_schema=False?): {hidden}"


def test_the_schema_names_each_operations_access_rule(world: World) -> None:
    paths = world.app.openapi()["paths"]
    for method, path, rule in _operations(world.app):
        operation = paths[path][method.lower()]
        assert rule is not None
        assert operation[access.EXTENSION] == rule.access.value
        if rule.access is Access.PUBLIC:
            assert operation["security"] == []
        else:
            assert {"401", "403"} <= operation["responses"].keys()


def _subject_routes(world: World) -> list[tuple[str, str]]:
    return [
        (m, p)
        for m, p, rule in _operations(world.app)
        if rule is not None and rule.access in SUBJECT_SCOPED
    ]


def test_another_subjects_resources_look_exactly_like_nonexistent_ones(world: World) -> None:
    """A subject token aimed at another subject learns nothing: the 404 for a subject with a
    history is byte for byte the 404 for one that never existed. The check runs before any
    database read, so its time does not depend on existence either."""
    intruder = world.credentials["other-subject-token"]
    for method, path in _subject_routes(world):
        existing = world.client.request(method, _fill(path), headers=intruder)
        ghost_path = _fill(path).replace(f"/{SID}", f"/{NEVER_SEEN}", 1)
        ghost = world.client.request(method, ghost_path, headers=intruder)
        assert existing.status_code == ghost.status_code == 404, (method, path)
        assert existing.content == ghost.content, (method, path)
        for name in ("content-type", "content-length", "cache-control"):
            assert existing.headers.get(name) == ghost.headers.get(name), (method, path, name)
    # ...and the intruder's attempts changed nothing of the victim's.
    views = {v.id: v.state for v in world.container.queries.permissions(SID)}
    assert views["ads"] in {"granted", "default"}


def test_every_route_answers_every_credential_as_its_rule_says(world: World) -> None:
    mismatches: list[str] = []
    checked = 0
    for method, path, rule in _operations(world.app):
        assert rule is not None, f"{method} {path} has no access rule"
        for name, headers in world.credentials.items():
            want = expected(rule.access, name)
            response = _call(world.client, method, path, headers)
            checked += 1
            got = response.status_code
            if want == ALLOWED:
                refused = got in (401, 403) or _is_auth_404(response)
                if refused or got >= 500 and got != 503:
                    mismatches.append(f"{method} {path} [{name}]: want allowed, got {got}")
                continue
            if got != want:
                mismatches.append(f"{method} {path} [{name}]: want {want}, got {got}")
                continue
            if not response.headers["content-type"].startswith("application/problem+json"):
                mismatches.append(f"{method} {path} [{name}]: refusal is not problem+json")
            if got == 401 and response.headers.get("www-authenticate") != "Bearer":
                mismatches.append(f"{method} {path} [{name}]: 401 without WWW-Authenticate")
    print(f"authorization matrix: {checked} route x credential checks")
    assert checked >= 20 * len(world.credentials)
    assert not mismatches, "\n".join(mismatches)


def test_a_route_without_a_rule_is_reported(world: World) -> None:
    app = create_app(world.container)

    @app.get("/v1/brand-new-thing")
    def brand_new() -> dict[str, str]:
        return {}

    assert access.rules(app)[("GET", "/v1/brand-new-thing")] is None
    assert ("GET", "/v1/brand-new-thing", None) in _operations(app)


def test_a_route_can_declare_its_rule_next_to_itself(world: World) -> None:
    app = create_app(world.container)

    @app.get("/v1/declared-thing", openapi_extra=access.declare(Access.DECIDE))
    def declared() -> dict[str, str]:
        return {}

    rule = access.rules(app)[("GET", "/v1/declared-thing")]
    assert rule is not None and rule.access is Access.DECIDE
    operation = app.openapi()["paths"]["/v1/declared-thing"]["get"]
    assert operation[access.EXTENSION] == "decide"

"""Who may call each HTTP route: one declared rule per method and path.

The rule is a declaration, not the enforcement: enforcement stays in the route's dependencies
(``SubjectReader``, ``Decider``...). The authorization matrix test
(``tests/security/test_authorization_matrix.py``) calls every route with every kind of
credential and checks that what the route does matches what is declared here, so a route
without a rule, or whose dependencies drift from its rule, fails the build.

Declare a rule next to the route (preferred)::

    @router.get("/v1/things", openapi_extra=access.declare(Access.DECIDE))

or, for a route whose module you do not own, in ``RULES`` below. The rule also documents the
route in ``/openapi.json``: ``x-consentry-access``, the bearer security requirement and the
problem responses (401/403/404/422/429/503 as ``application/problem+json``) it can answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from consentry.scopes import Scope

EXTENSION = "x-consentry-access"
PROBLEM = "application/problem+json"


class Access(StrEnum):
    """What a caller must present. A subject token is a JWT whose ``sub`` is the subject id."""

    PUBLIC = "public"  # nothing: a notice or a health check
    SUBJECT_READ = "subject-read"  # that subject's own token, or a key with subjects:read
    SUBJECT_WRITE = "subject-write"  # that subject's own token, or a key with subjects:write
    PLATFORM_WRITE = "platform-write"  # a key with subjects:write; the subject's token gets 403
    DECIDE = "decide"  # a key with decide
    USES_WRITE = "uses-write"  # a key with uses:write
    ADMIN = "admin"  # a key with admin


# The scope a service key needs (``admin`` always qualifies); None: no key needed.
SCOPE: dict[Access, Scope | None] = {
    Access.PUBLIC: None,
    Access.SUBJECT_READ: Scope.SUBJECTS_READ,
    Access.SUBJECT_WRITE: Scope.SUBJECTS_WRITE,
    Access.PLATFORM_WRITE: Scope.SUBJECTS_WRITE,
    Access.DECIDE: Scope.DECIDE,
    Access.USES_WRITE: Scope.USES_WRITE,
    Access.ADMIN: Scope.ADMIN,
}
# Routes under /v1/subjects/{sid}: another subject's token answers 404, as if it did not exist.
SUBJECT_SCOPED = frozenset({Access.SUBJECT_READ, Access.SUBJECT_WRITE, Access.PLATFORM_WRITE})


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    # Media types of the 200 answer when it is not JSON (documented in the OpenAPI schema).
    media: tuple[str, ...] = ()
    # Problem statuses the route answers beyond the usual ones (e.g. 410 for an expired cursor).
    statuses: tuple[int, ...] = ()


def declare(access: Access, *media: str) -> dict[str, Any]:
    """``openapi_extra`` for a route: ``@router.get(..., openapi_extra=declare(Access.X))``.
    Other answers than JSON: name their media types (``declare(Access.X, "text/csv")``); other
    statuses than the usual problems: ``responses={410: {...}}`` on the route, as FastAPI does."""
    extra: dict[str, Any] = {EXTENSION: access.value}
    if media:
        extra["x-consentry-media"] = list(media)
    return extra


_S = "/v1/subjects/{sid}"
_NDJSON = "application/x-ndjson"

# Rules for routes that do not declare their own. Key: (METHOD, path template).
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(Access.PUBLIC),
    ("GET", "/metrics"): Rule(Access.ADMIN, ("text/plain",)),
    ("GET", "/v1/catalog"): Rule(Access.PUBLIC),
    ("GET", "/.well-known/gpc.json"): Rule(Access.PUBLIC),
    ("GET", "/.well-known/consentry-keys.json"): Rule(Access.PUBLIC),
    ("GET", "/.well-known/consentry-checkpoints.json"): Rule(Access.PUBLIC),
    ("POST", "/v1/decisions"): Rule(Access.DECIDE),
    ("POST", "/v1/decisions/batch"): Rule(Access.DECIDE),
    ("GET", "/v1/changes"): Rule(Access.DECIDE, (_NDJSON,), (410,)),
    ("GET", "/v1/snapshot"): Rule(Access.DECIDE, (_NDJSON,)),
    ("POST", "/v1/uses"): Rule(Access.USES_WRITE),
    ("GET", "/v1/admin/violations"): Rule(Access.ADMIN),
    ("GET", "/v1/admin/deliveries"): Rule(Access.ADMIN),
    ("POST", "/v1/admin/deliveries/{delivery_id}/retry"): Rule(Access.ADMIN),
    ("GET", _S): Rule(Access.SUBJECT_READ),
    ("PUT", _S): Rule(Access.PLATFORM_WRITE),
    ("DELETE", _S): Rule(Access.SUBJECT_WRITE),
    ("GET", f"{_S}/permissions"): Rule(Access.SUBJECT_READ),
    ("PATCH", f"{_S}/permissions"): Rule(Access.SUBJECT_WRITE),
    ("PUT", f"{_S}/permissions/{{pid}}"): Rule(Access.SUBJECT_WRITE),
    ("GET", f"{_S}/history"): Rule(Access.SUBJECT_READ),
    ("GET", f"{_S}/devices"): Rule(Access.SUBJECT_READ),
    ("PUT", f"{_S}/devices/{{device_id}}"): Rule(Access.SUBJECT_WRITE),
    ("PUT", f"{_S}/objections/{{pid}}"): Rule(Access.SUBJECT_WRITE),
    ("PUT", f"{_S}/do-not-sell"): Rule(Access.SUBJECT_WRITE),
    ("GET", f"{_S}/export"): Rule(Access.SUBJECT_READ, ("application/json", "text/csv")),
    ("GET", f"{_S}/uses"): Rule(Access.SUBJECT_READ),
    ("GET", f"{_S}/signals"): Rule(Access.SUBJECT_READ),
    ("GET", f"{_S}/receipts/{{event_id}}"): Rule(Access.SUBJECT_READ),
    ("GET", f"{_S}/receipts/{{event_id}}/inclusion"): Rule(Access.SUBJECT_READ),
    ("GET", f"{_S}/deliveries"): Rule(Access.SUBJECT_READ),
}


def rule_of(route: APIRoute, method: str, path: str | None = None) -> Rule | None:
    """The route's own declaration, else the entry in ``RULES``; None when it has neither."""
    extra = route.openapi_extra or {}
    declared = extra.get(EXTENSION)
    if isinstance(declared, str):
        return Rule(Access(declared), tuple(extra.get("x-consentry-media", ())))
    return RULES.get((method.upper(), path or route.path))


def api_routes(app: FastAPI) -> Iterator[tuple[APIRoute, str]]:
    """Every API route with its full path (routers included in the app are expanded)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield route, str(context.path or route.path)


def rules(app: FastAPI) -> dict[tuple[str, str], Rule | None]:
    """Every API route's (METHOD, path) with its rule (None: undeclared)."""
    found: dict[tuple[str, str], Rule | None] = {}
    for route, path in api_routes(app):
        for method in sorted(route.methods or ()):
            found[(method, path)] = rule_of(route, method, path)
    return found


# -- the OpenAPI document ---------------------------------------------------------------------
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
}
_DESCRIPTIONS = {
    400: "Malformed request body.",
    401: "No credential, or an invalid, expired or revoked one.",
    403: "The credential lacks the scope this route needs.",
    404: "Not found (another subject's resources answer 404 too).",
    409: "Conflicts with the catalogue or the current state.",
    410: "Gone: start again from a fresh snapshot.",
    413: "Request body or batch too large.",
    422: "Invalid request.",
    429: "Rate limited: retry after the Retry-After header's seconds.",
    503: "The database is unavailable or too busy: retry.",
}
_WRITES = {"post", "put", "patch", "delete"}


def _statuses(method: str, operation: dict[str, Any], access: Access | None) -> set[int]:
    statuses = {429, 503}
    if access is not None and access is not Access.PUBLIC:
        statuses |= {401, 403}
    if access in SUBJECT_SCOPED or operation.get("parameters"):
        statuses |= {404, 422}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if method in _WRITES and access is not Access.PUBLIC:
        statuses.add(409)
    return statuses


def _document(schema: dict[str, Any], app: FastAPI) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A service key (csk_…) with scopes, or a subject token (JWT, sub = id).",
    }
    problem = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    declared = rules(app)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            rule = declared.get((method.upper(), path))
            access = rule.access if rule else None
            operation[EXTENSION] = access.value if access else "undeclared"
            operation["security"] = [] if access is Access.PUBLIC else [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            if rule and rule.media:
                ok = responses.setdefault("200", {"description": "Successful Response"})
                ok["content"] = {media: {} for media in rule.media}
            extra = set(rule.statuses) if rule else set()
            for status in sorted(_statuses(method, operation, access) | extra):
                responses.setdefault(str(status), {"description": _DESCRIPTIONS.get(status, "")})
            for status, entry in responses.items():
                if status.isdigit() and int(status) >= 400:  # every error is a problem document
                    entry["content"] = problem
    # FastAPI's own validation-error schemas are replaced by Problem above.
    for name in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(name, None)


def install(app: FastAPI) -> None:
    """Document each route's rule and problem responses in the app's OpenAPI schema."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = generate()  # FastAPI keeps it in app.openapi_schema too
            _document(schema, app)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

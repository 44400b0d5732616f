"""Errors as RFC 9457 ``application/problem+json``; never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from consentry.domain.errors import (
    ConcurrencyConflict,
    DomainError,
    IdempotencyMismatch,
    InvalidChange,
    NoticeOutdated,
    NotToggleable,
    UnknownPermission,
)

log = logging.getLogger("consentry.api")
PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


class Problem(Exception):
    def __init__(self, status: int, detail: str, *, code: str | None = None, **extra: Any) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        self.extra = extra
        super().__init__(detail)


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://consentry.example.org/problems/{code or status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    if code:
        body["code"] = code
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


_DOMAIN_STATUS: dict[type[DomainError], int] = {
    UnknownPermission: 404,
    NotToggleable: 409,
    NoticeOutdated: 409,
    IdempotencyMismatch: 422,
    InvalidChange: 422,
    ConcurrencyConflict: 503,
}


def _allowed(request: Request) -> str:
    """Every method some route accepts on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # The statement and its parameters (subject ids) stay out of the log: the driver's first
    # line says what went wrong.
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    first = (str(cause).strip().splitlines() or [""])[0][:200]
    log.warning("database unavailable: %s: %s", type(cause).__name__, first)
    return problem_response(
        503,
        "the database is unavailable; nothing was changed, retry shortly",
        code="database_unavailable",
        headers={"Retry-After": "2"},
    )


async def _out_of_range(_: Request, exc: Exception) -> JSONResponse:
    log.warning("value out of range for the database: %s", type(exc).__name__)
    return problem_response(422, "a value is out of range", code="out_of_range")


# What FastAPI raises (400) when decoding a JSON body fails other than by a syntax error.
_UNPARSABLE = "There was an error parsing the body"


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.detail, code=exc.code, headers=headers, **exc.extra)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        status = next((s for t, s in _DOMAIN_STATUS.items() if isinstance(exc, t)), 400)
        headers = {"Retry-After": "1"} if status == 503 else None
        return problem_response(status, str(exc), code=exc.code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        detail = "invalid request"
        if exc.errors():
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            detail = f"{where}: {err.get('msg', '')}" if where else str(err.get("msg", detail))
        return problem_response(422, detail, code="validation_error", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE:
            # JSON the decoder gave up on (nested deeper than it recurses): invalid input,
            # answered like every other invalid body.
            return problem_response(
                422,
                "the request body could not be read as JSON (nested too deep?)",
                code="validation_error",
            )
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed(request)}
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    # The database is down, full, restarting or out of connections: nothing was written
    # (the transaction did not commit), and retrying later is the right thing to do.
    for unavailable in (OperationalError, InterfaceError, DisconnectionError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    # A value the database cannot hold (an id past 64 bits, say) is the caller's error; routes
    # should bound their numbers, this is the safety net.
    for out_of_range in (DataError, OverflowError):
        app.add_exception_handler(out_of_range, _out_of_range)

    # Text that is not well-formed Unicode (a lone surrogate such as "\ud800" in a JSON
    # string) cannot be encoded, sealed or stored: the caller's error, nothing was written.
    @app.exception_handler(UnicodeEncodeError)
    async def _not_unicode(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return problem_response(
            422, "the request holds text that is not valid Unicode", code="validation_error"
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(500, "an unexpected error occurred; it has been logged")

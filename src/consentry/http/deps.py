"""Request dependencies: the container, the caller (service key or subject token), access rules.

The API routes and the storefront's routes declare who may call them with these; the page
(``web/``) takes only the container.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from consentry.bootstrap import Container
from consentry.http.credentials import Principal, authenticate
from consentry.http.problems import Problem
from consentry.scopes import Scope

SUBJECT_ID_PATTERN = r"^[A-Za-z0-9._:@\-]{1,200}$"


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    return await authenticate(container, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def _missing(scope: Scope) -> Problem:
    return Problem(403, f"this key lacks the {scope.value!r} scope", code="missing_scope")


def require(scope: Scope) -> object:
    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.has(scope):
            raise _missing(scope)
        return principal

    return Depends(_check)


SubjectId = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN, description="Subject id")]


def _subject_access(scope: Scope) -> object:
    async def _check(sid: SubjectId, principal: PrincipalDep) -> Principal:
        if principal.subject is not None:
            if principal.subject != sid:
                # 404, not 403: another subject's existence is not revealed.
                raise Problem(404, "no such subject", code="not_found")
            return principal
        if not principal.has(scope):
            raise _missing(scope)
        return principal

    return Depends(_check)


async def _platform_write(sid: SubjectId, principal: PrincipalDep) -> Principal:
    if principal.subject is not None:
        if principal.subject != sid:
            raise Problem(404, "no such subject", code="not_found")
        raise Problem(403, "only the platform may change this", code="platform_only")
    if not principal.has(Scope.SUBJECTS_WRITE):
        raise Problem(403, "this key lacks the 'subjects:write' scope", code="missing_scope")
    return principal


async def _decider(request: Request) -> Principal:
    """``require(Scope.DECIDE)`` with verified service keys remembered for a few seconds
    (``credentials.remembered_key``): the decision and feed endpoints are the hot path, and a
    key lookup is a database read. A revoked key stops working here within that time."""
    # The container straight from the app, not through the (sync, so threaded) ContainerDep.
    container: Container = request.app.state.container
    header = request.headers.get("authorization")
    principal = await authenticate(container, header, remember=True)
    if not principal.has(Scope.DECIDE):
        raise _missing(Scope.DECIDE)
    return principal


SubjectReader = Annotated[Principal, _subject_access(Scope.SUBJECTS_READ)]
SubjectWriter = Annotated[Principal, _subject_access(Scope.SUBJECTS_WRITE)]
# A key with subjects:write only: facts the platform knows better than the customer.
PlatformWriter = Annotated[Principal, Depends(_platform_write)]
# The decision and replication endpoints' dependency (see _decider).
Decider = Annotated[Principal, Depends(_decider)]
Admin = Annotated[Principal, require(Scope.ADMIN)]

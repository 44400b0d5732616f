"""Request dependencies: the container, the caller (service key or subject token), access rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from consentry.api.problems import Problem
from consentry.bootstrap import Container
from consentry.scopes import Scope
from consentry.services.keys import PREFIX

SUBJECT_ID_PATTERN = r"^[A-Za-z0-9._:@\-]{1,200}$"


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a platform service (by key) or a subject (by token)."""

    credential: str
    scopes: frozenset[Scope] = frozenset()
    subject: str | None = None
    name: str = ""  # a service key's label (``consentry keys create --name``)

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


async def verify_key(container: Container, token: str) -> Principal | None:
    """The principal of a service key (``csk_…``), or None when unknown or revoked."""
    key = await run_in_threadpool(container.keys.verify, token)
    if key is None:
        return None
    return Principal(credential=f"key:{key.key_id}", scopes=key.scopes, name=key.name)


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "send Authorization: Bearer <service key or subject token>")
    token = token.strip()
    if token.startswith(PREFIX):
        principal = await verify_key(container, token)
        if principal is None:
            raise Problem(401, "unknown or revoked API key", code="invalid_credentials")
        return principal
    subject = container.tokens.verify(token)
    if subject is None:
        raise Problem(401, "invalid or expired subject token", code="invalid_credentials")
    return Principal(credential=f"subject:{subject}", subject=subject)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: Scope) -> object:
    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.has(scope):
            raise Problem(403, f"this key lacks the {scope.value!r} scope", code="missing_scope")
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
            raise Problem(403, f"this key lacks the {scope.value!r} scope", code="missing_scope")
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


SubjectReader = Annotated[Principal, _subject_access(Scope.SUBJECTS_READ)]
SubjectWriter = Annotated[Principal, _subject_access(Scope.SUBJECTS_WRITE)]
# A key with subjects:write only: facts the platform knows better than the customer.
PlatformWriter = Annotated[Principal, Depends(_platform_write)]
Admin = Annotated[Principal, require(Scope.ADMIN)]

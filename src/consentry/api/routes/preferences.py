"""A subject's page settings over HTTP: the language and the IANA time zone the Permissions
page, receipts and exports use for them, on every device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from consentry.http import access
from consentry.http.access import Access
from consentry.http.deps import ContainerDep, SubjectId, SubjectReader, SubjectWriter
from consentry.services.preferences import KEEP, Preferences

router = APIRouter(tags=["subjects"])

Locale = Annotated[str | None, Field(max_length=20, examples=["fr"])]
TimeZone = Annotated[str | None, Field(max_length=64, examples=["Europe/Paris"])]


class PreferencesIn(BaseModel):
    """Fields left out stay as they are; ``null`` clears one."""

    model_config = ConfigDict(extra="forbid")
    locale: Locale = None
    time_zone: TimeZone = None


class PreferencesOut(BaseModel):
    subject: str
    locale: str | None
    time_zone: str | None


def _out(sid: str, prefs: Preferences) -> PreferencesOut:
    return PreferencesOut(subject=sid, locale=prefs.locale, time_zone=prefs.time_zone)


@router.get(
    "/v1/subjects/{sid}/preferences",
    response_model=PreferencesOut,
    openapi_extra=access.declare(Access.SUBJECT_READ),
)
def get_preferences(sid: SubjectId, _: SubjectReader, container: ContainerDep) -> PreferencesOut:
    """The subject's stored language and time zone (``null`` when none is stored: the page then
    follows the browser's language and shows times in UTC)."""
    return _out(sid, container.preferences.get(sid))


@router.put(
    "/v1/subjects/{sid}/preferences",
    response_model=PreferencesOut,
    openapi_extra=access.declare(Access.SUBJECT_WRITE),
)
def put_preferences(
    sid: SubjectId, body: PreferencesIn, _: SubjectWriter, container: ContainerDep
) -> PreferencesOut:
    """Store the subject's language (one of the catalogue's locales) and time zone (an IANA
    name such as ``Europe/Paris``). Anything else answers 422 and changes nothing."""
    given = body.model_fields_set
    prefs = container.preferences.update(
        sid,
        locale=body.locale if "locale" in given else KEEP,
        time_zone=body.time_zone if "time_zone" in given else KEEP,
    )
    return _out(sid, prefs)

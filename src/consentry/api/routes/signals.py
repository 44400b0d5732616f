"""GET /v1/subjects/{sid}/signals: the subject's current state as TCF, GPP and Consent Mode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from consentry.http.deps import ContainerDep, SubjectId, SubjectReader
from consentry.http.gpc import signal_sent
from consentry.http.problems import Problem
from consentry.standards.mapping import honoured_gpc, signals

router = APIRouter(tags=["signals"])


class ConsentModeOut(BaseModel):
    ad_storage: str
    analytics_storage: str
    ad_user_data: str
    ad_personalization: str
    functionality_storage: str
    personalization_storage: str
    security_storage: str


class SignalsOut(BaseModel):
    tcf: str | None
    gpp: str
    consent_mode: ConsentModeOut


@router.get("/v1/subjects/{sid}/signals", response_model=SignalsOut)
def get_signals(
    sid: SubjectId,
    _: SubjectReader,
    container: ContainerDep,
    request: Request,
    locale: Annotated[
        str | None, Query(pattern=r"^[a-z]{2}$", description="TCF ConsentLanguage")
    ] = None,
    gpc: Annotated[
        bool,
        Query(
            description="The browser's navigator.globalPrivacyControl, from a script that "
            "cannot send Sec-GPC itself (consentry.js): sets the GPP Gpc flag as the header does"
        ),
    ] = False,
) -> SignalsOut:
    """A consent bit is set only by an explicit grant that is in force; ``tcf`` is null when
    the catalogue has no TCF settings. GPP carries usnat (and tcfeuv2), with the GPC
    sub-section when this request or a current choice came with Global Privacy Control."""
    catalogue = container.catalogue
    if locale is not None and locale not in catalogue.locales:
        raise Problem(
            404, f"locale {locale!r} not offered; offered: {', '.join(catalogue.locales)}"
        )
    views = container.queries.permissions(sid)
    gpc = gpc or signal_sent(request.headers) or honoured_gpc(views)
    result = signals(catalogue, views, now=container.consents.clock(), language=locale, gpc=gpc)
    return SignalsOut(
        tcf=result.tcf,
        gpp=result.gpp,
        consent_mode=ConsentModeOut.model_validate(result.consent_mode),
    )

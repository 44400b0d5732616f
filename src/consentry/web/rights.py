"""The subject's rights on the page: a copy of their data (Art. 15 and 20) and erasure (Art. 17)
with its confirmation step. Same services as ``GET /v1/subjects/{sid}/export`` and
``DELETE /v1/subjects/{sid}``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from consentry.domain.planning import Context
from consentry.http.session import FLASH_COOKIE, SESSION_COOKIE, Session
from consentry.web import export_page, messages
from consentry.web.auth import SignedIn, session_for_change, signed_in_page
from consentry.web.pages import FormText, Web, WebDep, private

ERASED = "erased"

router = APIRouter(include_in_schema=False)


@router.get("/permissions/export")
def export(
    web: WebDep, format: Annotated[Literal["html", "json", "csv"], Query()] = "json"
) -> Response:
    """Everything we hold on the subject (Art. 15 and 20), streamed: a summary to read and
    print (HTML, in their language and time zone), or the files (JSON, CSV)."""

    def page(auth: SignedIn) -> Response:
        rights = web.container.rights
        subject = auth.session.subject
        if format == "html":
            return StreamingResponse(
                summary_page(web, auth.session), media_type="text/html; charset=utf-8"
            )
        if format == "csv":
            body, media = rights.export_csv(subject), "text/csv; charset=utf-8"
        else:
            body, media = rights.export_json(subject), "application/json"
        return StreamingResponse(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="my-data.{format}"'},
        )

    return signed_in_page(web, page)


def summary_page(web: Web, session: Session) -> Iterator[str]:
    """The export as a readable page: the same service data as the files, read as it is sent."""
    rights, catalogue, tr = web.container.rights, web.container.catalogue, web.tr
    subject = session.subject
    summary = rights.export_summary(subject)
    return web.stream(
        "export.html",
        session,
        made=tr.datetime(datetime.fromisoformat(summary["exported_at"])),
        zone=tr.zone_name(),
        language=tr.language_name(web.locale),
        permissions=export_page.permission_lines(catalogue, summary, tr),
        recipients=export_page.recipient_lines(summary, tr),
        devices=export_page.device_lines(catalogue, summary, tr),
        history=export_page.history_lines(catalogue, rights.history_items(subject), tr),
        uses=export_page.use_lines(catalogue, rights.use_items(subject), tr),
    )


@router.get("/permissions/delete")
def delete_page(web: WebDep) -> Response:
    """The confirmation step: what is deleted, what is kept as proof, confirm or cancel."""
    return signed_in_page(
        web, lambda auth: web.render("delete.html", session=auth.session, tab=None)
    )


@router.post("/permissions/delete")
def delete_data(web: WebDep, csrf: FormText = None, lang: FormText = None) -> Response:
    """Erasure (Art. 17), then the session ends: the page shows the confirmation signed out."""
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    web = web.in_locale(lang)
    web.container.rights.erase(session.subject, Context("web", web.locale))
    redirect = RedirectResponse(web.url("/permissions/deleted"), status_code=303)
    redirect.delete_cookie(SESSION_COOKIE, path="/")
    messages.set_flash(web, redirect, session, {"kind": ERASED, "slot": "all"})
    return private(redirect)


@router.get("/permissions/deleted")
def deleted_page(web: WebDep) -> Response:
    flash = web.signer.read_flash(web.request.cookies.get(FLASH_COOKIE))
    if flash is None or flash.get("kind") != ERASED:
        return private(RedirectResponse(web.url("/permissions"), status_code=303))
    return web.render("deleted.html")

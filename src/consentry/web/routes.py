"""The Permissions page: thin HTTP handlers over the same ConsentService the API uses.

Every change made here is one ``ConsentService.change`` call with ``source="web"``, so a click and
an API call leave the same proof. Forms work without JavaScript (post, then redirect with a
confirmation); ``static/permissions.js`` sends the same forms with fetch and gets JSON back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path
from fastapi.responses import JSONResponse, RedirectResponse, Response

from consentry.domain.errors import DomainError, NoticeOutdated
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.http.problems import problem_response
from consentry.http.session import SESSION_COOKIE, Session
from consentry.services import bulk
from consentry.services.receipt_signing import ReceiptKeyError
from consentry.services.receipts import ReceiptsUnavailable
from consentry.web import messages, rights, settings
from consentry.web.accept import sensitive_items
from consentry.web.activity import access_rows, erased_notice, history_rows, refused_rows
from consentry.web.auth import SignedIn, session_for_change, signed_in_page
from consentry.web.loading import page_model
from consentry.web.pages import STATIC_PREFIX, FormText, Web, WebDep, private, static_files
from consentry.web.receipt_page import receipt_view

__all__ = ["STATIC_PREFIX", "router", "static_files"]

log = logging.getLogger("consentry.web")

HISTORY_PAGE = 50
MAX_SET = 1000
STATES = ("granted", "denied")

router = APIRouter(include_in_schema=False)
router.include_router(rights.router)
router.include_router(settings.router)

PermissionId = Annotated[str, Path(min_length=1, max_length=100)]
EventId = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-]{1,64}$")]


def _message_page(web: Web, auth: SignedIn, status: int, heading: str, text: str) -> Response:
    return web.render(
        "message.html", session=auth.session, status=status, heading=heading, text=text
    )


def _no_receipt(web: Web, auth: SignedIn) -> Response:
    tr = web.tr
    return _message_page(
        web,
        auth,
        404,
        tr.gettext("No such receipt"),
        tr.gettext("This change is not in the history of your choices."),
    )


# -- the three tabs --------------------------------------------------------------------------------
@router.get("/permissions")
def permissions_page(web: WebDep) -> Response:
    def page(auth: SignedIn) -> Response:
        flash = messages.read_flash(web, auth.session)
        # A link to one switch ("Stop this"): its section opens, with or without the script.
        wanted = web.request.query_params.get("open", "")
        response = web.render(
            "permissions.html",
            session=auth.session,
            tab="overview",
            page=page_model(web, auth.session.subject),
            flash=messages.for_template(web, flash),
            open_id=wanted if web.container.catalogue.permission(wanted) else None,
            zones=settings.zone_choices(web.tr, web.stored.time_zone),
        )
        if flash is not None:
            messages.clear_flash(response)
        return response

    return signed_in_page(web, page)


@router.get("/permissions/history")
def history_page(web: WebDep) -> Response:
    cursor = web.request.query_params.get("cursor")
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 12):
        cursor = None

    def page(auth: SignedIn) -> Response:
        found = web.container.queries.history(auth.session.subject, HISTORY_PAGE, cursor)
        return web.render(
            "history.html",
            session=auth.session,
            tab="history",
            rows=history_rows(web.container.catalogue, found.events, web.tr),
            next_cursor=found.next_cursor,
            erased_on=erased_notice(web.tr, auth.session),
        )

    return signed_in_page(web, page)


@router.get("/permissions/accesses")
def accesses_page(web: WebDep) -> Response:
    def page(auth: SignedIn) -> Response:
        subject = auth.session.subject
        container = web.container
        groups, _ = container.uses.for_subject(subject)
        refused = container.uses.refused(subject)
        views = container.queries.permissions(subject) if refused else []
        return web.render(
            "accesses.html",
            session=auth.session,
            tab="accesses",
            accesses=access_rows(container.catalogue, groups, web.tr),
            refused=refused_rows(container.catalogue, refused, views, web.tr),
        )

    return signed_in_page(web, page)


@router.get("/permissions/history/{event_id}/receipt")
def receipt_page(event_id: EventId, web: WebDep) -> Response:
    """The receipt as a page a person reads (and prints), with the signed file beside it."""

    def page(auth: SignedIn) -> Response:
        found = web.container.queries.event(auth.session.subject, event_id)
        if found is None or not found[0].permission_id:
            return _no_receipt(web, auth)
        view = receipt_view(web.container.catalogue, found[0], web.tr)
        return web.render("receipt.html", session=auth.session, r=view)

    return signed_in_page(web, page)


@router.get("/permissions/history/{event_id}/receipt.json")
def receipt(event_id: EventId, web: WebDep) -> Response:
    """The signed consent receipt (ISO/IEC TS 27560, JWS): the bytes ``consentry receipt
    verify`` checks. Only the subject's own history is searched."""

    def page(auth: SignedIn) -> Response:
        tr = web.tr
        try:
            signed = web.container.receipts().issue(auth.session.subject, event_id)
        except (ReceiptsUnavailable, ReceiptKeyError) as exc:
            log.warning("a consent receipt could not be issued: %s", exc)
            return _message_page(
                web,
                auth,
                503,
                tr.gettext("Receipts are not available right now"),
                tr.gettext(
                    "We cannot sign receipts at the moment. Your choices are recorded all the "
                    "same; please try again later."
                ),
            )
        if signed is None:
            return _no_receipt(web, auth)
        return Response(
            signed.file_bytes(),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{signed.filename}"'},
        )

    return signed_in_page(web, page)


# -- changes ---------------------------------------------------------------------------------------
def _respond(web: Web, session: Session, flash: messages.Flash, status: int = 200) -> Response:
    """For the script: JSON with every switch's new state, the summary, the message and undo.
    Without it: back to the page (at the card that changed), with the confirmation."""
    slot = str(flash["slot"])
    if not web.wants_json:
        anchor = "choices" if slot == "all" else f"p-{slot}"
        redirect = RedirectResponse(web.url("/permissions") + f"#{anchor}", status_code=303)
        messages.set_flash(web, redirect, session, flash)
        return private(redirect)
    page = page_model(web, session.subject)
    undo = messages.undo_items(flash)
    body: dict[str, Any] = {
        "ok": status < 400,
        "slot": slot,
        "message": messages.message(web.container.catalogue, flash, web.tr),
        "summary": page.summary,
        "summary_html": web.fragment("_summary.html", page=page),
        "sections": {s.id: s.state_text for s in page.sections},
        "count": messages.count_text(page, web.tr),
        "permissions": [
            {
                "id": c.id,
                "checked": c.checked,
                "next_state": c.next_state,
                "state_text": c.state_text,
                "note": c.note,
                "status": c.status,
            }
            for c in page.toggleable
        ],
        # Changed notices still to ask about: an answer given with a switch ends the prompt.
        "reconsent": [item.id for item in page.reconsent],
        "undo": {
            "action": "/permissions",
            "label": web.tr.gettext("Undo"),
            "fields": [["set", u] for u in undo] + [["slot", slot]],
        }
        if undo
        else None,
    }
    return private(JSONResponse(body, status_code=status))


def _apply(
    web: Web, session: Session, changes: Sequence[Change], flash: messages.Flash
) -> Response:
    consents = web.container.consents
    before = {v.id: v for v in web.container.queries.permissions(session.subject)}
    try:
        outcome = consents.change(session.subject, changes, Context("web", web.locale))
    except NoticeOutdated:
        return _respond(web, session, {**flash, "kind": "outdated"}, 409)
    except DomainError:
        return _respond(web, session, {**flash, "kind": "error"}, 422)
    # What the customer sees change is the effective state (a default that was already off and
    # is now explicitly off changed nothing for them): count and undo only those.
    after = {v.id: v.effective for v in outcome.entries}
    flipped = [p for p in outcome.changed if p in before and before[p].effective != after[p]]
    undo = [f"{p}={'granted' if before[p].effective else 'denied'}" for p in flipped]
    if flash["kind"] == "undo":
        undo = []
    return _respond(web, session, {**flash, "count": len(flipped), "undo": undo})


def _choice(web: Web, pid: str, state: ChoiceState) -> Change:
    """A choice made on the page: a grant names the notice version the page shows."""
    perm = web.container.catalogue.permission(pid)
    shown = perm.notice.version if perm is not None and state is ChoiceState.GRANTED else None
    return Change(pid, state, notice_version=shown)


def _bulk(web: Web, session: Session, state: ChoiceState, confirm: str | None) -> Response:
    """Refuse all: one click, everything the customer can refuse. Accept all: first a page
    that names what is most sensitive, then "Accept all" or "Accept all except these"."""
    container = web.container
    catalogue = container.catalogue
    views = container.queries.permissions(session.subject)
    keep_off: set[str] = set()
    if state is ChoiceState.GRANTED:
        items = sensitive_items(catalogue, views, web.tr)
        if items and confirm not in ("all", "except"):
            return private(web.render("accept_all.html", session=session, items=items))
        if confirm == "except":
            keep_off = {item.id for item in items}
    changes = bulk.plan(catalogue, views, state, keep_off)
    flash: messages.Flash = {"kind": "all", "slot": "all", "state": state.value}
    if keep_off:
        flash["except"] = len(keep_off)
    return _apply(web, session, changes, flash)


@router.post("/permissions")
def change_many(
    web: WebDep,
    csrf: FormText = None,
    lang: FormText = None,
    slot: FormText = None,
    bulk: Annotated[str | None, Form(alias="all", max_length=20)] = None,
    choices: Annotated[list[str] | None, Form(alias="set")] = None,
    confirm: FormText = None,
) -> Response:
    """ "Refuse all" / "Accept all" (every consent permission, as PATCH ``all`` on the API), or
    several choices at once (what undo sends back)."""
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    web = web.in_locale(lang)
    if bulk in STATES:
        return _bulk(web, session, ChoiceState(bulk), confirm)
    pairs = [item.partition("=") for item in (choices or [])[: MAX_SET + 1]]
    if not pairs or len(pairs) > MAX_SET or any(s not in STATES or not p for p, _, s in pairs):
        return _respond(web, session, {"kind": "error", "slot": "all"}, 422)
    known = slot == "all" or web.container.catalogue.permission(slot or "") is not None
    changes = [_choice(web, pid, ChoiceState(state)) for pid, _, state in pairs]
    return _apply(web, session, changes, {"kind": "undo", "slot": slot if known else "all"})


@router.post("/permissions/{pid}")
def change_one(
    pid: PermissionId,
    web: WebDep,
    state: FormText = None,
    csrf: FormText = None,
    lang: FormText = None,
    v: FormText = None,
) -> Response:
    """One switch: the state it moves to, and the notice version the page showed (the proof)."""
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    web = web.in_locale(lang)
    if web.container.catalogue.permission(pid) is None or state not in STATES:
        if web.wants_json:
            return problem_response(404, "no such permission", code="not_found")
        return _respond(web, session, {"kind": "error", "slot": "all"}, 422)
    change = Change(pid, ChoiceState(state), notice_version=v or None)
    return _apply(web, session, [change], {"kind": "one", "slot": pid, "pid": pid, "state": state})


@router.post("/logout")
def logout(web: WebDep, csrf: FormText = None) -> Response:
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    web.container.sessions.end_all(session.subject)  # every browser of the subject signs out
    target = "/demo/login" if web.container.settings.demo else "/permissions"
    redirect = RedirectResponse(target, status_code=303)
    redirect.delete_cookie(SESSION_COOKIE, path="/")
    return private(redirect)

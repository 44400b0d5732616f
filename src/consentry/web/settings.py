"""The customer's page settings, stored for their account so every device follows them: the
language picked with the switcher, and the time zone the page shows times in (picked in "Your
data", or the browser's own, sent once by the page's script when none is stored)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from consentry.domain.errors import InvalidPreference
from consentry.http.problems import problem_response
from consentry.http.session import Session
from consentry.services.preferences import known_zone
from consentry.web import messages
from consentry.web.auth import session_for_change
from consentry.web.i18n import Translator, translator
from consentry.web.pages import FormText, WebDep, page_url, private

router = APIRouter(include_in_schema=False)

# Where the switcher may send the customer back to: the page's own paths only.
BACK = re.compile(r"^/(permissions|account)(/[A-Za-z0-9._\-]+)*$")
KEPT_PARAMS = frozenset({"format", "cursor", "open"})
# The zones offered in the no-script control; the browser's own (or one set through the API)
# is offered too when it is not among them.
COMMON_ZONES = (
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Luxembourg",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Copenhagen",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Athens",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Sao_Paulo",
    "Africa/Casablanca",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)
ZONE_SLOT = "zone"


def zone_choices(tr: Translator, current: str | None) -> list[dict[str, str | bool]]:
    """The time zone select: each zone named as a person knows it, with its offset now."""
    names = list(COMMON_ZONES)
    if current and current not in names and known_zone(current):
        names.insert(0, current)
    now = datetime.now(UTC)
    out: list[dict[str, str | bool]] = []
    for name in names:
        zone_tr = translator(tr.locale, name)
        label = tr.gettext("Coordinated Universal Time") if name == "UTC" else zone_tr.zone_name()
        offset = now.astimezone(zone_tr.zone).strftime("%z")
        out.append(
            {
                "id": name,
                "label": f"{label} · UTC{offset[:3]}:{offset[3:]}"
                + ("" if name == "UTC" else f" ({name})"),
                "selected": name == (current or "UTC"),
            }
        )
    return out


def _back(back: str | None, locale: str) -> str:
    """The page the switcher was used on, in the new language (with the few parameters that
    say what it showed: the summary's format, the history's page, an opened switch)."""
    path, _, query = (back or "").partition("?")
    if not BACK.match(path):
        return page_url("/permissions", locale)
    kept = {k: v for k, v in parse_qsl(query) if k in KEPT_PARAMS and len(v) <= 100}
    return page_url(path, locale, **kept)


@router.post("/permissions/language")
def choose_language(
    web: WebDep, csrf: FormText = None, lang: FormText = None, back: FormText = None
) -> Response:
    """The language switcher of a signed-in customer: the choice is stored for the account,
    so the page speaks it on every device from now on."""
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    if lang not in web.offered():
        return private(RedirectResponse(_back(back, web.locale), status_code=303))
    web.container.preferences.update(session.subject, locale=lang)
    redirect = RedirectResponse(_back(back, lang), status_code=303)
    web.remember_locale(redirect, lang)  # this browser's signed-out pages too
    return private(redirect)


@router.post("/permissions/time-zone")
def choose_time_zone(
    web: WebDep,
    csrf: FormText = None,
    lang: FormText = None,
    time_zone: FormText = None,
    first: FormText = None,
) -> Response:
    """The time zone picked in "Your data" (no script needed), or the browser's own sent by
    the page's script with ``first=1``: kept only when none is stored yet."""
    session = session_for_change(web, csrf)
    if not isinstance(session, Session):
        return session
    web = web.in_locale(lang)
    zone = (time_zone or "").strip()
    try:
        if first:
            web.container.preferences.first_time_zone(session.subject, zone)
        else:
            web.container.preferences.update(session.subject, time_zone=zone)
    except InvalidPreference as exc:
        if web.wants_json:
            return problem_response(422, str(exc), code=exc.code)
        flash: messages.Flash = {"kind": "error", "slot": ZONE_SLOT}
    else:
        if web.wants_json:
            return private(Response(status_code=204))
        flash = {"kind": "zone", "slot": ZONE_SLOT}
    redirect = RedirectResponse(web.url("/permissions") + "#time-zone", status_code=303)
    messages.set_flash(web, redirect, session, flash)
    return private(redirect)

"""Confirmations after a change, and the one-shot cookie that carries them across a redirect.

A flash holds what happened (kind, permission, state, count, what undo would restore), never
the words: the words are rendered in the page's language when it is shown.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.http.session import FLASH_COOKIE, FLASH_TTL, Session
from consentry.web.i18n import Translator
from consentry.web.pages import Web
from consentry.web.view_model import PageModel

Flash = dict[str, Any]


def message(catalogue: Catalogue, flash: Flash, tr: Translator) -> str:
    kind = flash.get("kind")
    if kind == "one":
        perm = catalogue.permission(str(flash.get("pid")))
        if perm is None:
            return tr.gettext("Saved.")
        title = catalogue.text(perm.notice.title, tr.locale)
        granted = flash.get("state") == "granted"
        if perm.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
            if granted:
                return tr.gettext("Saved: you no longer object to “%(title)s”.", title=title)
            return tr.gettext("Saved: you object to “%(title)s”.", title=title)
        if granted:
            return tr.gettext("Saved: “%(title)s” is on.", title=title)
        return tr.gettext("Saved: “%(title)s” is off.", title=title)
    if kind == "all":
        count = int(flash.get("count", 0))
        granted = flash.get("state") == "granted"
        if count == 0:
            if granted:
                return tr.gettext("Nothing to change: everything you accepted was already on.")
            return tr.gettext("Nothing to change: everything you can refuse was already off.")
        if granted and flash.get("except"):
            return tr.ngettext(
                "Saved: you accepted all except the uses named before (%(num)d change).",
                "Saved: you accepted all except the uses named before (%(num)d changes).",
                count,
            )
        if granted:
            return tr.ngettext(
                "Saved: you accepted all optional uses (%(num)d change).",
                "Saved: you accepted all optional uses (%(num)d changes).",
                count,
            )
        return tr.ngettext(
            "Saved: you refused everything you can refuse (%(num)d change).",
            "Saved: you refused everything you can refuse (%(num)d changes).",
            count,
        )
    if kind == "undo":
        return tr.gettext("Undone: your previous choice is back.")
    if kind == "zone":
        return tr.gettext("Saved: your time zone is now %(zone)s.", zone=tr.zone_name())
    if kind == "outdated":
        return tr.gettext(
            "This text has just changed. Please read it again before switching it on."
        )
    return tr.gettext("This could not be saved. Please try again.")


def count_text(page: PageModel, tr: Translator) -> str:
    return tr.ngettext(
        "%(on)d of %(num)d uses you can switch off is on.",
        "%(on)d of %(num)d uses you can switch off are on.",
        page.consent_total,
        on=page.consent_on,
    )


def undo_items(flash: Flash) -> list[str]:
    return [u for u in flash.get("undo", []) if isinstance(u, str)]


def is_error(flash: Flash) -> bool:
    return flash.get("kind") in ("error", "outdated")


def for_template(web: Web, flash: Flash | None) -> dict[str, Any] | None:
    if flash is None:
        return None
    return {
        "slot": str(flash.get("slot", "all")),
        "message": message(web.container.catalogue, flash, web.tr),
        "undo": undo_items(flash),
        "error": is_error(flash),
    }


def set_flash(web: Web, response: Response, session: Session, flash: Flash) -> None:
    response.set_cookie(
        FLASH_COOKIE,
        web.signer.flash({**flash, "sub": session.subject}),
        max_age=FLASH_TTL,
        httponly=True,
        samesite="lax",
        secure=web.secure,
        path="/",
    )


def read_flash(web: Web, session: Session) -> Flash | None:
    flash = web.signer.read_flash(web.request.cookies.get(FLASH_COOKIE))
    if flash is None or flash.get("sub") != session.subject:
        return None
    return flash


def clear_flash(response: Response) -> None:
    """Shown once: a reload does not confirm the change again."""
    response.delete_cookie(FLASH_COOKIE, path="/")

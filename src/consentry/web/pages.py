"""Rendering the page: one request's language and signer, the templates, and response headers."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.staticfiles import StaticFiles

from consentry.bootstrap import Container
from consentry.http.deps import ContainerDep
from consentry.http.session import LANG_COOKIE, LANG_TTL, SESSION_COOKIE, Session, Signer
from consentry.services.preferences import Preferences
from consentry.web import i18n

# A short text field of the page's forms (CSRF token, language, choice).
FormText = Annotated[str | None, Form(max_length=200)]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"
_NOT_BACK = frozenset({"lang", "token"})
STREAM_PIECE = 64_000

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@functools.cache
def static_url(name: str) -> str:
    # A content hash in the URL lets browsers cache the file and still see every change.
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


def page_url(path: str, lang: str, **params: str) -> str:
    """A link inside the page, carrying its language (so ?lang= keeps winning over the header)."""
    return f"{path}?{urlencode({'lang': lang, **params})}"


def private(response: Response) -> Response:
    """Headers for a page that shows one person's data (and may carry a token in its URL)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


@dataclass(frozen=True, slots=True)
class Web:
    """One request to the page: the wired services, the cookie signer, the page language and
    the customer's stored settings (language, time zone: times are shown in that zone)."""

    request: Request
    container: Container
    signer: Signer
    locale: str
    stored: Preferences = Preferences()

    @property
    def tr(self) -> i18n.Translator:
        return i18n.translator(self.locale, self.stored.time_zone)

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"

    @property
    def wants_json(self) -> bool:
        return "application/json" in self.request.headers.get("accept", "")

    def offered(self) -> tuple[str, ...]:
        catalogue = self.container.catalogue
        return i18n.offered(catalogue.locales) or (catalogue.default_locale,)

    def in_locale(self, lang: str | None) -> Web:
        """The same request in the language a form says it was shown in, if offered."""
        return replace(self, locale=lang) if lang in self.offered() else self

    def url(self, path: str, **params: str) -> str:
        return page_url(path, self.locale, **params)

    def fragment(self, template: str, **context: Any) -> str:
        """A piece of a page (for the script to put in place), in the page's language."""
        tr = self.tr
        return templates.get_template(template).render(
            _=tr.gettext, ngettext=tr.ngettext, **context
        )

    def context(self, session: Session | None, **context: Any) -> dict[str, Any]:
        """What every template of the page gets: words, languages, the controller, the
        session's CSRF token, links in this language."""
        tr = self.tr
        catalogue = self.container.catalogue
        languages = [
            {
                "code": code,
                "name": tr.language_name(code),
                "url": page_url(self.request.url.path, code),
                "current": code == self.locale,
            }
            for code in self.offered()
        ]
        return {
            "_": tr.gettext,
            "ngettext": tr.ngettext,
            "locale": self.locale,
            "languages": languages,
            "controller": catalogue.controller,
            "controller_country": tr.country(catalogue.controller.country),
            "demo": self.container.settings.demo,
            "session": session,
            "csrf": self.signer.csrf_token(session.nonce) if session else "",
            "here": self.here(),
            "time_zone": self.stored.time_zone,
            "url": self.url,
            "static": static_url,
            **context,
        }

    def here(self) -> str:
        """This page's path and query, without its language or a token (the switcher's way
        back)."""
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k not in _NOT_BACK]
        return self.request.url.path + (f"?{urlencode(params)}" if params else "")

    def render(
        self,
        template: str,
        *,
        session: Session | None = None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        html = templates.get_template(template).render(self.context(session, **context))
        response = HTMLResponse(html, status_code=status)
        private(response)
        if self.request.query_params.get("lang") == self.locale:
            self.remember_locale(response, self.locale)
        return response

    def stream(self, template: str, session: Session, **context: Any) -> Iterator[str]:
        """A long page, rendered as it is sent (its lists may be read lazily), in pieces of
        about 64 KB."""
        parts = templates.get_template(template).generate(self.context(session, **context))
        pending: list[str] = []
        size = 0
        for part in parts:
            pending.append(part)
            size += len(part)
            if size >= STREAM_PIECE:
                yield "".join(pending)
                pending, size = [], 0
        yield "".join(pending)

    def remember_locale(self, response: Response, locale: str) -> None:
        """The customer's language from now on (picked with ?lang or the language menu)."""
        if locale in self.offered() and self.request.cookies.get(LANG_COOKIE) != locale:
            response.set_cookie(
                LANG_COOKIE,
                locale,
                max_age=LANG_TTL,
                httponly=True,
                samesite="lax",
                secure=self.secure,
                path="/",
            )


def get_web(request: Request, container: ContainerDep) -> Web:
    signer: Signer | None = getattr(request.app.state, "web_signer", None)
    if signer is None:
        signer = Signer(container.settings.jwt_secret_value())
        request.app.state.web_signer = signer
    catalogue = container.catalogue
    # The signed-in customer's stored settings (a well-signed session cookie names them; the
    # page itself still checks that the session is open).
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    stored = container.preferences.get(session.subject) if session else Preferences()
    locale = i18n.negotiate(
        request.query_params.get("lang"),
        request.headers.get("accept-language"),
        i18n.offered(catalogue.locales) or (catalogue.default_locale,),
        catalogue.default_locale,
        stored=stored.locale,
        remembered=request.cookies.get(LANG_COOKIE),
    )
    return Web(request, container, signer, locale, stored)


WebDep = Annotated[Web, Depends(get_web)]

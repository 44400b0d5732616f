"""Who is looking at the page: a subject JWT (``?token=`` or Bearer) or the session cookie.

A token starts a session (an HttpOnly, SameSite=Lax cookie, Secure over https) and, when it came
in the URL, a redirect drops it from there so it stays out of history, logs and referrers. A
token in the URL never replaces a live session of another subject (login CSRF). Every
form post must carry the session's CSRF token (a form field, or the X-CSRF-Token header).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from fastapi.responses import RedirectResponse, Response

from consentry.http import credentials, gpc
from consentry.http.problems import problem_response
from consentry.http.session import SESSION_COOKIE, SESSION_TTL, Session
from consentry.services.signals import honour_gpc
from consentry.web.pages import Web, private


def start_session(
    web: Web, response: Response, subject: str, erased_on: date | None = None
) -> Session:
    session, cookie = web.signer.new_session(subject, erased_on)
    web.container.sessions.open(session.nonce, subject, SESSION_TTL)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_TTL,
        httponly=True,
        samesite="lax",
        secure=web.secure,
        path="/",
    )
    return session


def sign_in_page(web: Web, *, expired: bool = False) -> Response:
    response = web.render("signin.html", status=401, expired=expired)
    response.headers["WWW-Authenticate"] = 'Bearer realm="consentry"'
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: Session
    # Set when the session was started by this very request (Bearer): its cookie to pass on.
    new_cookie: Response | None = None

    def finish(self, response: Response) -> Response:
        if self.new_cookie is not None:
            for key, value in self.new_cookie.raw_headers:
                if key == b"set-cookie":
                    response.raw_headers.append((key, value))
        return private(response)


def authenticate(web: Web) -> SignedIn | Response:
    """The signed-in subject, or the response to send instead (sign-in page, token redirect)."""
    request = web.request
    token = request.query_params.get("token")
    if token is not None:
        claims = web.container.tokens.verify_claims(token)
        if claims is None:
            return sign_in_page(web, expired=True)
        subject = claims.subject
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        redirect = RedirectResponse(
            request.url.path + (f"?{query}" if query else ""), status_code=303
        )
        current = web.signer.session(request.cookies.get(SESSION_COOKIE))
        if current is None or current.subject == subject:
            start_session(web, redirect, subject, claims.erased_on)
        # else: a link carrying another customer's token never replaces the session this
        # browser holds (login CSRF: the next change would land in the link owner's ledger);
        # the customer stays signed in as themselves. Signing out first lets the link work.
        return private(redirect)
    bearer = credentials.bearer(web.request.headers.get("authorization"))
    if bearer is not None:
        claims = web.container.tokens.verify_claims(bearer)
        if claims is None:
            return sign_in_page(web, expired=True)
        carrier = Response()
        return SignedIn(start_session(web, carrier, claims.subject, claims.erased_on), carrier)
    session = live_session(web)
    if session is None:
        return sign_in_page(web)
    return SignedIn(session)


def live_session(web: Web) -> Session | None:
    """The cookie's session, when it is well signed and still open on the server (logout and
    erasure close every session of the subject, wherever its cookies are)."""
    session = web.signer.session(web.request.cookies.get(SESSION_COOKIE))
    if session is None or not web.container.sessions.alive(session.nonce, session.subject):
        return None
    return session


def signed_in(web: Web) -> SignedIn | Response:
    """As ``authenticate``, with the browser's Global Privacy Control honoured first: a
    ``Sec-GPC: 1`` page request opts the signed-in subject out of sale and sharing."""
    auth = authenticate(web)
    if isinstance(auth, SignedIn):
        honour_gpc(
            web.container.consents,
            web.container.queries,
            auth.session.subject,
            gpc.signal(web.request.headers),
        )
    return auth


def signed_in_page(web: Web, page: Callable[[SignedIn], Response]) -> Response:
    """``page`` for the signed-in subject (``signed_in``), its response finished for them (the
    new session cookie, no caching); or the response to send instead (sign-in, token redirect)."""
    auth = signed_in(web)
    if not isinstance(auth, SignedIn):
        return auth
    return auth.finish(page(auth))


def session_for_change(web: Web, csrf: str | None) -> Session | Response:
    """The session of a form post whose CSRF token matches it, or the refusal to send."""
    session = live_session(web)
    if session is None:
        if web.wants_json:
            return problem_response(401, "sign in again", code="no_session")
        return RedirectResponse("/permissions", status_code=303)
    token = web.request.headers.get("x-csrf-token") or csrf
    if not web.signer.csrf_ok(session.nonce, token):
        if web.wants_json:
            return problem_response(403, "reload the page and try again", code="csrf")
        return web.render("error.html", session=session, status=403)
    return session

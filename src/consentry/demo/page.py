"""The demo's sign-in and account home: only with ``settings.demo`` (404 otherwise).

A real platform signs its customers in itself and opens the page with a subject token; the demo
lets anyone pick one of the invented demo customers instead.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from consentry.demo.customers import DEMO_CUSTOMERS
from consentry.http.problems import problem_response
from consentry.http.session import LOGIN_COOKIE
from consentry.storefront.device import COOKIE as DEVICE_COOKIE
from consentry.storefront.device import Devices
from consentry.storefront.routes import merge_device
from consentry.web.auth import SignedIn, authenticate, start_session
from consentry.web.pages import FormText, Web, WebDep, private

router = APIRouter(include_in_schema=False)


def _not_demo(web: Web) -> Response | None:
    return None if web.container.settings.demo else problem_response(404, "not found")


@router.get("/demo/login")
def login_page(web: WebDep) -> Response:
    if (missing := _not_demo(web)) is not None:
        return missing
    # No session yet, so the form's token is tied to a short-lived cookie instead.
    nonce = secrets.token_urlsafe(16)
    response = web.render(
        "demo_login.html", customers=DEMO_CUSTOMERS, login_csrf=web.signer.csrf_token(nonce)
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=web.secure,
        path="/demo/login",
    )
    return response


@router.post("/demo/login")
def login(web: WebDep, subject: FormText = None, csrf: FormText = None) -> Response:
    if (missing := _not_demo(web)) is not None:
        return missing
    nonce = web.request.cookies.get(LOGIN_COOKIE, "")
    known = {c.subject_id for c in DEMO_CUSTOMERS}
    if not nonce or not web.signer.csrf_ok(nonce, csrf) or subject not in known:
        return RedirectResponse("/demo/login", status_code=303)
    redirect = RedirectResponse("/account", status_code=303)
    start_session(web, redirect, str(subject))
    devices = Devices(web.container.settings)
    device = devices.read(web.request.cookies.get(DEVICE_COOKIE))
    if device is not None:  # choices made on this browser before signing in
        merge_device(web.container, device, str(subject))
    # The customer's account language is their stored preference.
    customer = next(c for c in DEMO_CUSTOMERS if c.subject_id == subject)
    web.remember_locale(redirect, customer.locale)
    redirect.delete_cookie(LOGIN_COOKIE, path="/demo/login")
    return private(redirect)


@router.get("/account")
def account_page(web: WebDep) -> Response:
    if (missing := _not_demo(web)) is not None:
        return missing
    auth = authenticate(web)
    if not isinstance(auth, SignedIn):
        return auth
    subject = auth.session.subject
    customer = next((c for c in DEMO_CUSTOMERS if c.subject_id == subject), None)
    name = customer.name.split(" ")[0] if customer else subject
    return auth.finish(web.render("account.html", session=auth.session, name=name))

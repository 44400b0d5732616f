"""The page's signed cookies: sessions, CSRF tokens and flash messages."""

from __future__ import annotations

import time

import pytest

from consentry.http.session import SESSION_TTL, Signer


def test_a_session_round_trips_and_a_tampered_one_is_refused() -> None:
    signer = Signer("secret-" + "x" * 40)
    session, cookie = signer.new_session("cust-1")
    assert signer.session(cookie) == session
    body, mac = cookie.split(".")
    assert signer.session(body[:-2] + "AA." + mac) is None
    assert signer.session(cookie + "x") is None
    assert signer.session("garbage") is None and signer.session(None) is None
    assert Signer("another-secret-" + "y" * 40).session(cookie) is None


def test_a_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = Signer("secret-" + "x" * 40)
    _, cookie = signer.new_session("cust-1")
    later = time.time() + SESSION_TTL + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert signer.session(cookie) is None


def test_csrf_token_is_tied_to_the_session() -> None:
    signer = Signer("secret-" + "x" * 40)
    first, _ = signer.new_session("cust-1")
    second, _ = signer.new_session("cust-1")
    token = signer.csrf_token(first.nonce)
    assert signer.csrf_ok(first.nonce, token)
    assert not signer.csrf_ok(second.nonce, token)
    assert not signer.csrf_ok(first.nonce, None) and not signer.csrf_ok(first.nonce, "")


def test_a_flash_cannot_pass_for_a_session() -> None:
    signer = Signer("secret-" + "x" * 40)
    flash = signer.flash({"sub": "cust-1", "n": "x", "kind": "one"})
    assert signer.read_flash(flash) is not None
    assert signer.session(flash) is None


def test_without_a_shared_secret_each_process_has_its_own_key() -> None:
    _, cookie = Signer(None).new_session("cust-1")
    assert Signer(None).session(cookie) is None

"""The SDK's public surface: what ``consentry.sdk`` exports, its errors, its dependencies."""

from __future__ import annotations

import subprocess
import sys

import consentry.sdk as sdk
from consentry.domain.decisions import Decision as ServerDecision
from consentry.domain.decisions import decide


def test_public_names_are_pinned() -> None:
    assert sdk.__all__ == [
        "AuthenticationError",
        "Check",
        "Consentry",
        "ConsentryError",
        "CursorExpired",
        "Decision",
        "Denied",
        "PermissionDenied",
        "ProtocolError",
        "Reason",
        "ServerError",
        "Stats",
        "StreamCursorLost",
        "TransportError",
    ]
    assert all(hasattr(sdk, name) for name in sdk.__all__)


def test_sdk_classes_present_themselves_as_consentry_sdk() -> None:
    assert sdk.Consentry.__module__ == "consentry.sdk"
    assert repr(sdk.Denied).startswith("<class 'consentry.sdk.Denied'")


def test_every_error_is_a_consentry_error() -> None:
    errors = [getattr(sdk, n) for n in sdk.__all__ if n.endswith("Error") or n == "Denied"]
    errors += [sdk.PermissionDenied, sdk.CursorExpired]
    assert all(issubclass(e, sdk.ConsentryError) for e in errors)
    for status_error in (sdk.AuthenticationError, sdk.PermissionDenied, sdk.CursorExpired):
        assert issubclass(status_error, sdk.ServerError)


def test_sdk_decisions_are_the_servers_decisions() -> None:
    assert sdk.Decision is ServerDecision
    assert decide.__module__ == "consentry.domain.decisions"


def test_importing_the_sdk_and_its_nats_follower_pulls_no_server_dependency_nor_nats() -> None:
    code = (
        "import sys, consentry.sdk, consentry.sdk._nats\n"
        "heavy = {'fastapi', 'sqlalchemy', 'starlette', 'uvicorn', 'psycopg', 'alembic', 'nats'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"

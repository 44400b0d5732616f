"""``consentry tcf|gpp|receipt``: consent strings as JSON, and offline receipt verification.

JSON field names are the spec's field names in snake case (``cmp_id``, ``vendor_list_version``,
``purposes_consent`` ...); id sets are sorted lists, times ISO 8601 UTC. Exit codes: 0 done,
1 a receipt failed verification, 2 bad input (a malformed string, file or key set).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from consentry.cli.standards_json import gpp_to_json, tc_from_json, tc_to_json
from consentry.standards import StandardsError, decode_gpp, decode_tc_string, encode_tc_string

tcf_app = typer.Typer(help="IAB TCF v2.2/2.3 TC strings.", no_args_is_help=True)
gpp_app = typer.Typer(help="IAB Global Privacy Platform strings.", no_args_is_help=True)
receipt_app = typer.Typer(help="Signed consent receipts.", no_args_is_help=True)


T = TypeVar("T")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _print_decoded(
    value: str, what: str, decode: Callable[[str], T], to_json: Callable[[T], Any]
) -> None:
    """Print the JSON of ``value`` decoded, or fail naming ``what`` it is not."""
    try:
        decoded = decode(value.strip())
    except StandardsError as exc:
        _fail(f"not a valid {what}: {exc}")
    _print(to_json(decoded))


# ---------------------------------------------------------------------------------- commands

StringArg = Annotated[str, typer.Argument(help="The encoded string.")]


@tcf_app.command("decode")
def tcf_decode(value: StringArg) -> None:
    """Print a TC string's fields as JSON."""
    _print_decoded(value, "TC string", decode_tc_string, tc_to_json)


@tcf_app.command("encode")
def tcf_encode(
    file: Annotated[str, typer.Argument(help="JSON file (as printed by decode), or - for stdin.")],
) -> None:
    """Encode the JSON fields of a TC string (the output of ``tcf decode``)."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
    try:
        tc = tc_from_json(json.loads(text))
        typer.echo(encode_tc_string(tc))
    except (ValueError, TypeError) as exc:  # JSON, field and encoder errors alike
        _fail(f"cannot encode {file}: {exc}")


@gpp_app.command("decode")
def gpp_decode(value: StringArg) -> None:
    """Print a GPP string's sections as JSON (tcfeuv2 and usnat decoded; others kept raw)."""
    _print_decoded(value, "GPP string", decode_gpp, gpp_to_json)


def _key_set(source: str | None) -> dict[str, Any]:
    from consentry.config import Settings
    from consentry.services.receipt_signing import (
        ReceiptKeyError,
        load_receipt_keys,
        parse_jwks,
    )

    try:
        if source is None:
            keys = load_receipt_keys(Settings()).verifying_keys()
            if not keys:
                _fail("no keys to verify with: pass --keys (a JWK set file or URL)")
            return dict(keys)
        if source.startswith(("https://", "http://")):
            import httpx

            response = httpx.get(source, timeout=10.0, follow_redirects=True)
            response.raise_for_status()
            document = response.json()
        else:
            document = json.loads(Path(source).read_text(encoding="utf-8"))
        return dict(parse_jwks(document))
    except (OSError, ValueError, ReceiptKeyError) as exc:
        _fail(f"cannot use the key set {source or '(settings)'}: {exc}")
    except Exception as exc:  # httpx transport and status errors
        _fail(f"cannot fetch the key set {source}: {exc}")


@receipt_app.command("verify")
def receipt_verify(
    file: Annotated[Path, typer.Argument(help="Receipt file as downloaded (or a bare JWS).")],
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            help="JWK set file or URL (/.well-known/consentry-keys.json). Default: the keys "
            "configured for this server (CONSENTRY_RECEIPT_*).",
        ),
    ] = None,
) -> None:
    """Check a receipt offline; exit 1 if anything in it changed since it was issued."""
    from consentry.services.receipt_signing import ReceiptInvalid, verify_receipt_file

    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    verifying = _key_set(keys)
    try:
        verified = verify_receipt_file(data, verifying)
    except ReceiptInvalid as exc:
        _fail(f"receipt INVALID: {exc}", 1)
    receipt = verified.receipt
    events = receipt.get("events") or [{}]
    notice = receipt.get("privacy_notice") or {}
    typer.echo(
        f"receipt ok: record {receipt.get('record_id')} ({events[0].get('event_type')} on "
        f"{notice.get('notice_id')} v{notice.get('version')}, {events[0].get('event_time')}), "
        f"signed with key {verified.kid}"
    )


@receipt_app.command("keygen")
def receipt_keygen() -> None:
    """Print a new Ed25519 private key (PEM) for CONSENTRY_RECEIPT_SIGNING_KEY."""
    from consentry.services.receipt_signing import new_signing_key_pem

    typer.echo(new_signing_key_pem(), nl=False)

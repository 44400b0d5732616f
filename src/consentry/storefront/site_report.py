"""The signed report of ``consentry verify-site``: written as a file, read back by the evidence
pack. Signed as a compact JWS with the receipt key (Ed25519, ``receipt_signing``); the file is
``{"report": …, "jws": …}`` and the JWS payload is the report as canonical JSON, so a changed
report no longer matches its signature."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentry.services.receipt_signing import (
    ReceiptInvalid,
    ReceiptKeys,
    canonical_json,
    strict_json,
    verify_jws,
)

DEFAULT_DIR = Path("site-checks")
KIND = "consentry-site-check/1"


def signed_file(report: Mapping[str, Any], keys: ReceiptKeys) -> tuple[bytes, bool]:
    """The file's bytes and whether it is signed (no receipt key: unsigned, ``jws`` null)."""
    jws = keys.sign(canonical_json(dict(report))) if keys.signer is not None else None
    text = json.dumps({"report": report, "jws": jws}, indent=2, ensure_ascii=False) + "\n"
    return text.encode(), jws is not None


@dataclass(frozen=True, slots=True)
class SiteCheck:
    path: Path
    report: dict[str, Any]
    signature: str  # "valid", "unsigned" or why it does not verify


def read(path: Path, keys: ReceiptKeys) -> SiteCheck | None:
    """A report file and the state of its signature; None when it is not a site check."""
    try:
        document = strict_json(path.read_bytes(), str(path))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        return None
    report: dict[str, Any] = document["report"]
    if report.get("kind") != KIND:
        return None
    jws = document.get("jws")
    if jws is None:
        return SiteCheck(path, report, "unsigned")
    try:
        _, payload = verify_jws(str(jws), keys.verifying_keys())
    except ReceiptInvalid as exc:
        return SiteCheck(path, report, f"invalid: {exc}")
    if payload != canonical_json(report):
        return SiteCheck(path, report, "invalid: the report differs from what was signed")
    return SiteCheck(path, report, "valid")


def in_period(folder: Path, keys: ReceiptKeys, start: str, end: str) -> list[SiteCheck]:
    """The site checks in ``folder`` that finished in [start, end) (ISO 8601 UTC strings)."""
    if not folder.is_dir():
        return []
    found = [read(p, keys) for p in sorted(folder.glob("*.json"))]
    return [
        c for c in found if c is not None and start <= str(c.report.get("finished_at", "")) < end
    ]

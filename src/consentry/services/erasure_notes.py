"""What an erasure did, in words a data protection officer understands, and the same signed
(an erasure receipt: the customer's proof, with no id in it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consentry.services.receipt_signing import ReceiptKeys, canonical_json

ERASURE_RECEIPT = "consentry.erasure.v1"
_WHAT = {
    "permission_states": ("current choice", "current choices"),
    "devices": ("device report", "device reports"),
    "access_reports": ("access report", "access reports"),
    "idempotency_keys": ("stored API answer", "stored API answers"),
    "sessions": ("signed-in session", "signed-in sessions"),
    "preferences": ("stored page setting", "stored page settings"),
    "webhook_deliveries": ("pending partner notice", "pending partner notices"),
    "outbox_redacted": ("change message (redacted)", "change messages (redacted)"),
}


def _count(n: int, words: tuple[str, str]) -> str:
    return f"{n} {words[0] if n == 1 else words[1]}"


def statement(ref: str, erased_at: datetime, events: int, removed: Mapping[str, int]) -> str:
    when = erased_at.strftime("%d %B %Y at %H:%M UTC").lstrip("0")
    gone = [_count(n, _WHAT[k]) for k, n in removed.items() if n and k in _WHAT]
    listed = ", ".join(gone) if gone else "no stored values beyond the ledger"
    return (
        f"On {when}, every personal value of this customer was erased ({listed}). "
        "The customer's id no longer leads to anything in consentry: signing in again with it "
        f"starts afresh. What remains is the ledger chain {ref[:12]}… ({events} events, the "
        "last one recording this erasure). It still proves which permissions were granted or "
        "refused and when, and its hashes still verify; but the option values and contact "
        "channel in it can never be read again (the key that sealed them was destroyed), and "
        "nothing links the chain to the customer any more. Keep this statement with its "
        "reference to show the erasure later (consentry report --ref)."
    )


def receipt(
    keys: ReceiptKeys,
    *,
    ref: str,
    event_id: str,
    seq: int,
    erased_at: datetime,
    removed: Mapping[str, int],
) -> dict[str, Any] | None:
    """The signed erasure receipt (None when receipt signing is off)."""
    if keys.signer is None:
        return None
    record = {
        "type": ERASURE_RECEIPT,
        "subject_ref": ref,
        "event_id": event_id,
        "seq": seq,
        "erased_at": erased_at.isoformat(),
        "removed": dict(removed),
        "statement": statement(ref, erased_at, seq, removed),
    }
    return {"receipt": record, "jws": keys.sign(canonical_json(record))}

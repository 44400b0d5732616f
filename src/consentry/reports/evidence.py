"""``consentry report``: evidence packs as self-contained HTML pages.

- ``--subject SID``: what was shown to one customer, what they chose, when, from where, with the
  hash chain verified;
- ``--from DATE --to DATE``: what the ledger recorded in a period, counted per permission, notice
  version, language and source, with the wording of every notice version shown in the period and
  the whole ledger verified. It names no customer (counts and pseudonymous references only)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jinja2 import Environment, FileSystemLoader, select_autoescape

from consentry.bootstrap import Container
from consentry.domain.catalogue import Catalogue
from consentry.domain.events import EventKind
from consentry.domain.views import view_to_json
from consentry.services import erasure_notes
from consentry.services.ledger import verify
from consentry.services.receipt_signing import ReceiptKeyError, load_receipt_keys
from consentry.services.rights import rules_for
from consentry.storage import pseudonyms
from consentry.storage import repository as repo
from consentry.storage.period import PeriodCount, period_counts, period_totals

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    autoescape=select_autoescape(["html", "j2"]),
)


def _keys(container: Container) -> dict[str, Ed25519PublicKey] | None:
    """The keys that check the ledger's checkpoints (None: receipts and checkpoints are off)."""
    try:
        return load_receipt_keys(container.settings).verifying_keys() or None
    except ReceiptKeyError:
        return None


def subject_report(container: Container, subject_id: str) -> str:
    cat = container.catalogue
    state = container.queries.state(subject_id)
    permissions = [
        {
            **view_to_json(v),
            "title": cat.text(container.index.permissions[v.id].notice.title, cat.default_locale),
            "legal_basis": container.index.permissions[v.id].legal_basis.value,
        }
        for v in container.queries.permissions(subject_id)
    ]
    with container.db.read() as conn:
        ref = pseudonyms.resolve(conn, subject_id)
    return _ENV.get_template("evidence.html.j2").render(
        subject=subject_id,
        ref=ref,
        controller=cat.controller,
        catalogue_version=cat.catalogue_version,
        jurisdiction=state.jurisdiction,
        rules=rules_for(state.jurisdiction),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        verification=verify(container.db, subject_id, keys=_keys(container)),
        permissions=permissions,
        history=list(container.rights.history_items(subject_id)),
    )


def erased_report(container: Container, ref: str) -> str | None:
    """The evidence pack of a chain whose subject was erased, by its reference (from the
    erasure's answer or receipt): what it still proves, and what can no longer be read.
    None when there is no such chain."""
    with container.db.read() as conn:
        heads = list(repo.subject_heads_by_ref(conn, ref))
        chain = list(repo.chain(conn, ref)) if heads else []
    if not heads:
        return None
    erased = next((e for e in chain if e.kind is EventKind.SUBJECT_ERASED), None)
    removed: dict[str, int] = {}
    statement = (
        erasure_notes.statement(ref, erased.occurred_at, erased.seq, removed)
        if erased is not None
        else None
    )
    return _ENV.get_template("erased.html.j2").render(
        ref=ref,
        controller=container.catalogue.controller,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        verification=verify(container.db, keys=_keys(container), ref=ref),
        linked=heads[0].subject_id is not None,
        erased_at=erased.occurred_at.isoformat(timespec="seconds") if erased else None,
        statement=statement,
        history=chain,
    )


def _shown_notices(cat: Catalogue, counts: list[PeriodCount]) -> list[dict[str, object]]:
    """Each (permission, notice version, language) shown in the period, with its wording."""
    seen: dict[tuple[str, str, str], int] = {}
    for c in counts:
        if c.permission_id:
            key = (c.permission_id, c.notice_version, c.locale or cat.default_locale)
            seen[key] = seen.get(key, 0) + c.events
    shown: list[dict[str, object]] = []
    for (pid, version, locale), n in sorted(seen.items()):
        perm = cat.permission(pid)
        wording = perm.notice.wording(version) if perm else None
        shown.append(
            {
                "permission": pid,
                "version": version,
                "locale": locale,
                "events": n,
                "title": cat.text(wording.title, locale) if wording else None,
                "text": cat.text(wording.text, locale) if wording else None,
                "known": perm is not None,
            }
        )
    return shown


def period_report(
    container: Container, start: datetime, end: datetime, site_checks: Path | None = None
) -> str:
    """The period pack: ``start <= occurred_at < end`` (UTC-aware datetimes). ``site_checks``:
    a folder of ``consentry verify-site`` reports; those finished in the period are included,
    each with the state of its signature."""
    from consentry.services.receipt_signing import load_receipt_keys
    from consentry.storefront.site_report import DEFAULT_DIR, in_period

    stamp = "%Y-%m-%dT%H:%M:%SZ"
    checks = in_period(
        site_checks or DEFAULT_DIR,
        load_receipt_keys(container.settings),
        start.astimezone(UTC).strftime(stamp),
        end.astimezone(UTC).strftime(stamp),
    )
    cat = container.catalogue
    with container.db.read() as conn:
        counts = period_counts(conn, start, end)
        totals = period_totals(conn, start, end)
    groups: dict[str, list[PeriodCount]] = {}
    for c in counts:
        groups.setdefault(c.permission_id or "", []).append(c)
    permissions = []
    for pid, rows in groups.items():
        perm = cat.permission(pid) if pid else None
        permissions.append(
            {
                "id": pid or "(subject-wide events)",
                "title": cat.text(perm.notice.title, cat.default_locale) if perm else None,
                "legal_basis": perm.legal_basis.value if perm else None,
                "rows": rows,
            }
        )
    return _ENV.get_template("period.html.j2").render(
        controller=cat.controller,
        catalogue_version=cat.catalogue_version,
        start=start.isoformat(timespec="seconds"),
        end=end.isoformat(timespec="seconds"),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        verification=verify(container.db, keys=_keys(container)),
        totals=totals,
        permissions=permissions,
        notices=_shown_notices(cat, counts),
        site_checks=checks,
    )

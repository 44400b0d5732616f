"""``consentry report --subject SID``: what was shown, what was chosen, when, from where, with
the hash chain verified — as one self-contained HTML page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from consentry.bootstrap import Container
from consentry.domain.events import subject_ref
from consentry.services.consents import view_to_json
from consentry.services.ledger import verify
from consentry.services.rights import rules_for

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    autoescape=select_autoescape(["html", "j2"]),
)


def subject_report(container: Container, subject_id: str) -> str:
    cat = container.catalogue
    state = container.consents.state(subject_id)
    permissions = [
        {
            **view_to_json(v),
            "title": cat.text(container.index.permissions[v.id].notice.title, cat.default_locale),
            "legal_basis": container.index.permissions[v.id].legal_basis.value,
        }
        for v in container.consents.permissions(subject_id)
    ]
    return _ENV.get_template("evidence.html.j2").render(
        subject=subject_id,
        ref=subject_ref(subject_id),
        controller=cat.controller,
        catalogue_version=cat.catalogue_version,
        jurisdiction=state.jurisdiction,
        rules=rules_for(state.jurisdiction),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        verification=verify(container.db, subject_id),
        permissions=permissions,
        history=list(container.rights.history_items(subject_id)),
    )

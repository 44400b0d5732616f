"""Regenerate the sample evidence packs in docs/evidence/ from the demo catalogue and customers.

    .venv/bin/python scripts/evidence_samples.py

Uses a throw-away SQLite database; the customers and companies are the invented demo ones."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.reports.evidence import period_report, subject_report
from consentry.services.demo import seed

OUT = Path(__file__).resolve().parents[1] / "docs" / "evidence"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/evidence.db", demo=True)
        container = bootstrap(settings)
        try:
            seed(container)
            amelie = "demo-amelie"
            container.consents.change(
                amelie,
                [Change("marketing.email", ChoiceState.GRANTED, notice_version="1")],
                Context(source="app", locale="fr", channel="Example app 5.12 (Android)"),
            )
            container.consents.change(
                amelie, [Change("marketing.email", ChoiceState.DENIED)], Context(source="web")
            )
            container.consents.change(
                amelie,
                [Change("sharing.ad_partners", ChoiceState.DENIED)],
                Context(source="gpc", locale="fr"),
            )
            subject_html = subject_report(container, amelie)
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            period_html = period_report(container, today, today + timedelta(days=1))
        finally:
            container.close()
    (OUT / "subject-demo-amelie.html").write_text(subject_html, encoding="utf-8")
    (OUT / "period-one-day.html").write_text(period_html, encoding="utf-8")
    print(f"wrote {OUT / 'subject-demo-amelie.html'} and {OUT / 'period-one-day.html'}")


if __name__ == "__main__":
    main()

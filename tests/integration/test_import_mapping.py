"""Mapping files: the worked examples of docs/import.md import as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from consentry.bootstrap import bootstrap
from consentry.cli import app
from consentry.config import Settings
from consentry.domain.imports import InvalidRecord
from consentry.services.import_mapping import MappingError, load_mapping
from ledger_audit import audit
from support import TEST_SECRET

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "import"
MARKETPLACE = ROOT / "catalogues" / "marketplace.yaml"


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONSENTRY_DATABASE_URL", database_url)
    monkeypatch.setenv("CONSENTRY_CATALOGUE", str(MARKETPLACE))
    monkeypatch.setenv("CONSENTRY_JWT_SECRET", TEST_SECRET)
    return database_url


def states(url: str, subject: str) -> dict[str, tuple[str, str, str | None]]:
    container = bootstrap(Settings(database_url=url, catalogue=MARKETPLACE))
    try:
        return {
            v.id: (v.state, v.notice_version, v.source)
            for v in container.queries.permissions(subject)
            if v.state != "default"
        }
    finally:
        container.close()


def test_the_onetrust_style_example_imports_one_record_per_mapped_purpose(url: str) -> None:
    result = runner.invoke(
        app,
        ["import", str(DOCS / "onetrust-sample.jsonl"), "--mapping", str(DOCS / "onetrust.yaml")],
    )
    assert result.exit_code == 0, result.output
    # 3 receipts: 6 purposes, one unmapped (skipped) and one NO_CHOICE (no choice to record).
    assert "4 record(s) imported" in result.stdout
    assert states(url, "customer-1001") == {
        "marketing.email": ("denied", "2", "import:onetrust"),  # withdrawn in September
        "ads.personalised": ("denied", "1", "import:onetrust"),
    }
    assert states(url, "customer-1002") == {
        "analytics.product": ("granted", "1", "import:onetrust")
    }
    audit(url).assert_consistent()
    again = runner.invoke(
        app,
        ["import", str(DOCS / "onetrust-sample.jsonl"), "--mapping", str(DOCS / "onetrust.yaml")],
    )
    assert "0 record(s) imported, 4 already in the ledger" in again.stdout


def test_the_fides_style_example_maps_notice_history_ids_to_permission_and_version(
    url: str,
) -> None:
    result = runner.invoke(
        app, ["import", str(DOCS / "fides-sample.jsonl"), "--mapping", str(DOCS / "fides.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "3 record(s) imported" in result.stdout
    assert states(url, "customer-2001") == {
        "marketing.email": ("granted", "1", "import:fides"),
        "sale.data_buyers": ("denied", "1", "import:fides"),
    }
    assert states(url, "customer-2002") == {"marketing.email": ("granted", "2", "import:fides")}


def test_an_unmapped_id_is_a_numbered_error_when_the_mapping_says_so(
    url: str, tmp_path: Path
) -> None:
    lines = (DOCS / "fides-sample.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace("pri_notice_hist_data_sales_v1", "pri_notice_hist_unknown")
    export = tmp_path / "fides.jsonl"
    export.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["import", str(export), "--mapping", str(DOCS / "fides.yaml")])
    assert result.exit_code == 1
    assert f"{export}:2: no permission mapped for 'pri_notice_hist_unknown'" in result.stderr


def test_a_mapping_with_a_wrong_key_or_state_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: {subject: a, colour: b}\n")
    with pytest.raises(MappingError, match="fields.colour is not a record field"):
        load_mapping(bad)
    bad.write_text("states: {YES: maybe}\n")
    with pytest.raises(MappingError, match="granted or denied"):
        load_mapping(bad)
    bad.write_text("each: purposes\nfields: {subject: id}\n")
    with pytest.raises(InvalidRecord, match="purposes is not a list"):
        load_mapping(bad).expand({"id": "x"})

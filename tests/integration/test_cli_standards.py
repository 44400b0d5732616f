"""``consentry tcf|gpp|receipt``: decode to JSON, encode back, verify receipts offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consentry.bootstrap import bootstrap
from consentry.cli import app
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.receipt_signing import load_receipt_keys, new_signing_key_pem
from consentry.standards import (
    GPPString,
    PublisherRestriction,
    RawSection,
    RestrictionType,
    TCString,
    UsNat,
    encode_gpp,
    encode_tc_string,
)
from support import make_settings

runner = CliRunner()
DAY = datetime(2026, 3, 1, tzinfo=UTC)
TC = TCString(
    created=DAY,
    last_updated=DAY,
    cmp_id=31,
    cmp_version=4,
    consent_screen=2,
    consent_language="fr",
    vendor_list_version=150,
    purposes_consent=frozenset({1, 2, 7}),
    purposes_li_transparency=frozenset({10}),
    publisher_cc="NL",
    vendor_consents=frozenset({3, 755, 3001}),
    vendor_legitimate_interests=frozenset({21}),
    publisher_restrictions=(
        PublisherRestriction(2, RestrictionType.NOT_ALLOWED, frozenset({755})),
    ),
    disclosed_vendors=frozenset({3, 21, 755, 3001}),
)
TC_STRING = encode_tc_string(TC)


def test_tcf_decode_prints_the_spec_fields_in_snake_case() -> None:
    result = runner.invoke(app, ["tcf", "decode", TC_STRING])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["cmp_id"] == 31 and body["cmp_version"] == 4
    assert body["vendor_list_version"] == 150 and body["tcf_policy_version"] == 5
    assert body["consent_language"] == "FR" and body["publisher_cc"] == "NL"
    assert body["purposes_consent"] == [1, 2, 7]
    assert body["purposes_li_transparency"] == [10]
    assert body["vendor_consents"] == [3, 755, 3001]
    assert body["publisher_restrictions"] == [
        {"purpose_id": 2, "restriction_type": 0, "vendors": [755]}
    ]
    assert body["disclosed_vendors"] == [3, 21, 755, 3001]
    assert body["created"] == "2026-03-01T00:00:00Z"


@pytest.mark.parametrize("bad", ["not a tc string!", "", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"])
def test_tcf_decode_rejects_a_bad_string_with_exit_2(bad: str) -> None:
    result = runner.invoke(app, ["tcf", "decode", bad])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: not a valid TC string:")


def test_tcf_encode_reverses_decode(tmp_path: Path) -> None:
    decoded = runner.invoke(app, ["tcf", "decode", TC_STRING])
    file = tmp_path / "tc.json"
    file.write_text(decoded.stdout, encoding="utf-8")
    result = runner.invoke(app, ["tcf", "encode", str(file)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == TC_STRING


def test_tcf_encode_reads_standard_input() -> None:
    fields = {
        "created": "2026-03-01T00:00:00Z",
        "last_updated": "2026-03-01T00:00:00Z",
        "cmp_id": 31,
        "vendor_list_version": 150,
        "purposes_consent": [1],
        "disclosed_vendors": [],
    }
    result = runner.invoke(app, ["tcf", "encode", "-"], input=json.dumps(fields))
    assert result.exit_code == 0, result.output
    again = json.loads(runner.invoke(app, ["tcf", "decode", result.stdout.strip()]).stdout)
    assert again["purposes_consent"] == [1] and again["disclosed_vendors"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot encode"),
        ('{"cmp_id": 31}', "missing field(s)"),
        (
            '{"created": "2026-03-01T00:00:00Z", "last_updated": "2026-03-01T00:00:00Z", '
            '"cmp_id": 31, "vendor_list_version": 1, "purpose_consent": [1]}',
            "unknown field(s) purpose_consent",
        ),
        (
            '{"created": "2026-03-01", "last_updated": "2026-03-01T00:00:00Z", '
            '"cmp_id": 31, "vendor_list_version": 1}',
            "give a time zone",
        ),
        (
            '{"created": "2026-03-01T00:00:00Z", "last_updated": "2026-03-01T00:00:00Z", '
            '"cmp_id": 5000, "vendor_list_version": 1}',
            "CmpId",
        ),
    ],
)
def test_tcf_encode_rejects_bad_input_with_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    file = tmp_path / "tc.json"
    file.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["tcf", "encode", str(file)])
    assert result.exit_code == 2
    assert message in result.stderr


def test_tcf_encode_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tcf", "encode", str(tmp_path / "absent.json")])
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_gpp_decode_prints_each_section_by_name() -> None:
    gpp = GPPString(
        (TC, UsNat(sale_opt_out=1, mspa_covered_transaction=2, gpc=True), RawSection(8, "BVoYYZoI"))
    )
    result = runner.invoke(app, ["gpp", "decode", encode_gpp(gpp)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["section_ids"] == [2, 7, 8]
    assert body["sections"]["tcfeuv2"]["vendor_consents"] == [3, 755, 3001]
    usnat = body["sections"]["usnat"]
    assert usnat["sale_opt_out"] == 1 and usnat["gpc"] is True
    assert len(usnat["sensitive_data_processing"]) == 16
    assert body["sections"]["usca"] == {"raw": "BVoYYZoI", "decoded": False}


@pytest.mark.parametrize("bad", ["DBA", TC_STRING, "DBABMA~"])
def test_gpp_decode_rejects_a_bad_string_with_exit_2(bad: str) -> None:
    result = runner.invoke(app, ["gpp", "decode", bad])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: not a valid GPP string:")


# --------------------------------------------------------------------------------- receipts

SIGNING_KEY = new_signing_key_pem()


@pytest.fixture
def receipt_files(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A receipt as downloaded, and the JWK set published next to it."""
    container = bootstrap(make_settings(sqlite_url, receipt_signing_key=SIGNING_KEY))
    try:
        container.consents.change("s1", [Change("ads", ChoiceState.GRANTED)], Context("web"))
        event = container.queries.history("s1").events[0]
        signed = container.receipts().issue("s1", event.event_id)
        assert signed is not None
        receipt = tmp_path / signed.filename
        receipt.write_bytes(signed.file_bytes())
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(load_receipt_keys(container.settings).jwks()))
        yield receipt, keys
    finally:
        container.close()


def test_receipt_verify_accepts_an_untouched_receipt(receipt_files: tuple[Path, Path]) -> None:
    receipt, keys = receipt_files
    result = runner.invoke(app, ["receipt", "verify", str(receipt), "--keys", str(keys)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("receipt ok: record ")
    assert "consent_given on ads v3" in result.stdout


def test_receipt_verify_exits_1_on_a_changed_receipt(receipt_files: tuple[Path, Path]) -> None:
    receipt, keys = receipt_files
    receipt.write_bytes(receipt.read_bytes().replace(b'"granted"', b'"denied"', 1))
    result = runner.invoke(app, ["receipt", "verify", str(receipt), "--keys", str(keys)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: receipt INVALID:")


def test_receipt_verify_uses_the_configured_keys_by_default(
    receipt_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt, _ = receipt_files
    monkeypatch.delenv("CONSENTRY_DEMO", raising=False)
    env = {"CONSENTRY_RECEIPT_SIGNING_KEY": SIGNING_KEY}
    assert runner.invoke(app, ["receipt", "verify", str(receipt)], env=env).exit_code == 0
    other = {"CONSENTRY_RECEIPT_SIGNING_KEY": new_signing_key_pem()}
    assert runner.invoke(app, ["receipt", "verify", str(receipt)], env=other).exit_code == 1


def test_receipt_verify_exits_2_when_it_cannot_run(
    receipt_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt, keys = receipt_files
    missing = runner.invoke(app, ["receipt", "verify", str(tmp_path / "none.json")])
    assert missing.exit_code == 2
    no_keys_file = runner.invoke(
        app, ["receipt", "verify", str(receipt), "--keys", str(tmp_path / "nokeys.json")]
    )
    assert no_keys_file.exit_code == 2 and "cannot use the key set" in no_keys_file.stderr
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": []}')
    result = runner.invoke(app, ["receipt", "verify", str(receipt), "--keys", str(empty)])
    assert result.exit_code == 2
    for name in (
        "CONSENTRY_DEMO",
        "CONSENTRY_RECEIPT_SIGNING_KEY",
        "CONSENTRY_RECEIPT_PREVIOUS_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    unconfigured = runner.invoke(app, ["receipt", "verify", str(receipt)])
    assert unconfigured.exit_code == 2 and "pass --keys" in unconfigured.stderr


def test_receipt_keygen_prints_a_usable_signing_key(tmp_path: Path) -> None:
    result = runner.invoke(app, ["receipt", "keygen"])
    assert result.exit_code == 0
    assert result.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    key_file = tmp_path / "key.pem"
    key_file.write_text(result.stdout)
    settings = make_settings("sqlite://", receipt_signing_key=str(key_file))
    assert load_receipt_keys(settings).kid is not None

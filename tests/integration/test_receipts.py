"""Signed consent receipts (ISO/IEC TS 27560 record, Ed25519 compact JWS): issued per ledger
event, published keys, tampering, key rotation — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.services.receipt_signing import (
    ReceiptInvalid,
    load_receipt_keys,
    new_signing_key_pem,
    parse_jwks,
    public_pem,
    verify_receipt_file,
)
from support import TEST_SECRET, bearer, make_settings

KEY_A = new_signing_key_pem()
KEY_B = new_signing_key_pem()


def subject_token(sub: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=10)}
    return bearer(jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


def keyed_client(settings: Settings) -> Iterator[tuple[Container, TestClient]]:
    container = bootstrap(settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield container, client
    container.close()


@pytest.fixture
def keyed(database_url: str) -> Iterator[tuple[Container, TestClient]]:
    yield from keyed_client(make_settings(database_url, receipt_signing_key=KEY_A))


SHOWN = {"recs": "2", "ads": "3", "email": "1", "sale": "1", "location": "1"}


def grant(client: TestClient, sid: str, pid: str, state: str = "granted") -> str:
    response = client.patch(
        f"/v1/subjects/{sid}/permissions",
        json={"set": {pid: state}, "notice_versions": {pid: SHOWN[pid]}, "locale": "fr"},
        headers=subject_token(sid),
    )
    assert response.status_code == 200, response.text
    event_ids: list[str] = response.json()["event_ids"]
    return event_ids[0]


def download(client: TestClient, sid: str, event_id: str) -> bytes:
    response = client.get(f"/v1/subjects/{sid}/receipts/{event_id}", headers=subject_token(sid))
    assert response.status_code == 200, response.text
    return response.content


def published(client: TestClient) -> dict[str, Any]:
    response = client.get("/.well-known/consentry-keys.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_grant_yields_a_signed_27560_receipt(keyed: tuple[Container, TestClient]) -> None:
    _, client = keyed
    event_id = grant(client, "s1", "ads")
    data = download(client, "s1", event_id)
    verified = verify_receipt_file(data, parse_jwks(published(client)))
    receipt = verified.receipt
    assert receipt["conforms_to"] == "ISO/IEC TS 27560:2023"
    assert receipt["record_id"] == event_id and receipt["receipt_id"]
    assert receipt["pii_principal_id"] == "s1"
    assert receipt["language"] == "fr"
    notice = receipt["privacy_notice"]
    assert (notice["notice_id"], notice["version"]) == ("ads", "3")
    assert notice["text"].startswith("Adnet Example Inc.")
    assert notice["text_sha256"] == hashlib.sha256(notice["text"].encode()).hexdigest()
    assert receipt["purposes"] == [
        {
            "purpose_id": "advertising",
            "purpose": "Publicité personnalisée",
            "purpose_type": "advertising",
        }
    ]
    assert receipt["lawful_basis"] == "consent"
    assert [p["pii_type"] for p in receipt["pii_information"]] == ["behaviour.browsing"]
    assert receipt["pii_controllers"][0]["party_name"] == "Example Shop B.V."
    assert [r["party_id"] for r in receipt["recipient_third_parties"]] == ["adnet"]
    assert receipt["collection_method"]["source"] == "web"
    assert "withdraw" in receipt["withdrawal_method"]
    event = receipt["events"][0]
    assert (event["event_type"], event["event_state"]) == ("consent_given", "given")
    assert receipt["ledger"]["seq"] == 1 and len(receipt["ledger"]["hash"]) == 64
    assert json.loads(data)["jws"].count(".") == 2


# The processing fields of the W3C DPV guide "Consent Records and Receipts as per ISO/IEC TS
# 27560:2023" (its table of ISO 27560, GDPR and DPV terms), in snake case.
DPV_27560_PROCESSING_FIELDS = {
    "privacy_notice",
    "language",
    "purposes",
    "lawful_basis",
    "pii_information",
    "pii_controllers",
    "collection_method",
    "processing_method",
    "storage_locations",
    "retention_period",
    "processing_locations",
    "geographic_restrictions",
    "recipient_third_parties",
    "withdrawal_method",
    "privacy_rights",
    "authority_party",
}
DPV_27560_PII_FIELDS = {
    "pii_type",
    "pii_attribute_id",
    "pii_optional",
    "sensitive_pii_category",
    "special_pii_category",
}


def test_a_receipt_carries_the_iso_27560_fields_of_the_dpv_guide(
    keyed: tuple[Container, TestClient],
) -> None:
    """ "sale" goes only to a data buyer in the US: the controller (NL) still processes it."""
    _, client = keyed
    event_id = grant(client, "s9", "sale")
    receipt = verify_receipt_file(download(client, "s9", event_id), parse_jwks(published(client)))
    body = receipt.receipt
    assert DPV_27560_PROCESSING_FIELDS <= body.keys(), DPV_27560_PROCESSING_FIELDS - body.keys()
    for item in body["pii_information"]:
        assert DPV_27560_PII_FIELDS <= item.keys()
        assert item["pii_optional"] is False
        assert isinstance(item["special_pii_category"], bool)
    assert body["purposes"][0]["purpose_type"] == "sale"
    assert body["processing_locations"] == ["NL", "US"]
    assert body["storage_locations"] == ["NL", "US"]
    assert {"collect", "store", "use", "disclose", "transfer"} <= set(body["processing_method"])
    assert body["geographic_restrictions"] == [
        {
            "party_id": "buyer",
            "country": "US",
            "restriction": "transfer outside the EEA (GDPR Chapter V)",
        }
    ]
    assert {r["right"] for r in body["privacy_rights"]} >= {
        "access",
        "erasure",
        "withdraw_consent",
        "complaint",
    }
    assert body["authority_party"] == {
        "party_name": "Autoriteit Persoonsgegevens",
        "party_country": "NL",
        "party_role": "supervisory_authority",
    }
    assert set(body["retention_period"]) == {"data", "erasure", "record"}


def test_a_withdrawal_and_a_refusal_are_told_apart(keyed: tuple[Container, TestClient]) -> None:
    _, client = keyed
    keys = parse_jwks(published(client))
    grant(client, "s1", "ads")
    withdrawn = grant(client, "s1", "ads", "denied")
    refused = grant(client, "s1", "email", "denied")
    kinds = [
        verify_receipt_file(download(client, "s1", e), keys).receipt["events"][0]["event_type"]
        for e in (withdrawn, refused)
    ]
    assert kinds == ["consent_withdrawn", "consent_refused"]


def test_another_subjects_event_is_not_found(keyed: tuple[Container, TestClient]) -> None:
    _, client = keyed
    event_id = grant(client, "s1", "ads")
    other = client.get(f"/v1/subjects/s2/receipts/{event_id}", headers=subject_token("s2"))
    assert other.status_code == 404
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (
        client.get(f"/v1/subjects/s1/receipts/{unknown}", headers=subject_token("s1")).status_code
        == 404
    )
    assert client.get(f"/v1/subjects/s1/receipts/{event_id}").status_code == 401


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_tampering_with_any_part_of_the_jws_fails(keyed: tuple[Container, TestClient]) -> None:
    _, client = keyed
    keys = parse_jwks(published(client))
    jws: str = json.loads(download(client, "s1", grant(client, "s1", "ads")))["jws"]
    head, body, sig = jws.split(".")
    payload = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[len(payload) // 2] ^= 0x01
    changed_payload = base64.urlsafe_b64encode(bytes(payload)).rstrip(b"=").decode()
    forged_header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    for tampered in (
        f"{_flip(head, 5)}.{body}.{sig}",
        f"{forged_header}.{body}.{sig}",
        f"{head}.{changed_payload}.{sig}",
        f"{head}.{body}.{_flip(sig, 10)}",
        f"{head}.{body}.{sig[:-1]}{'B' if sig[-1] == 'A' else 'A'}",  # unused low bits
        f"{head}.{body}.",
    ):
        with pytest.raises(ReceiptInvalid):
            verify_receipt_file(tampered.encode(), keys)
    assert verify_receipt_file(jws.encode(), keys).receipt["pii_principal_id"] == "s1"


def test_changing_any_byte_of_the_receipt_file_fails_verification(
    keyed: tuple[Container, TestClient],
) -> None:
    _, client = keyed
    keys = parse_jwks(published(client))
    data = download(client, "s1", grant(client, "s1", "ads"))
    verify_receipt_file(data, keys)
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(ReceiptInvalid):
            verify_receipt_file(bytes(tampered), keys)
    for extra in (data + b"\n", data[:-1], b" " + data):
        with pytest.raises(ReceiptInvalid):
            verify_receipt_file(extra, keys)


def test_receipts_signed_before_a_key_rotation_still_verify(database_url: str) -> None:
    before = make_settings(database_url, receipt_signing_key=KEY_A)
    for _, client in keyed_client(before):
        old = download(client, "s1", grant(client, "s1", "ads"))
        old_kid = verify_receipt_file(old, parse_jwks(published(client))).kid
    rotated = make_settings(
        database_url, receipt_signing_key=KEY_B, receipt_previous_keys=public_pem(KEY_A)
    )
    for _, client in keyed_client(rotated):
        jwks = published(client)
        assert len(jwks["keys"]) == 2
        keys = parse_jwks(jwks)
        assert verify_receipt_file(old, keys).kid == old_kid
        new = download(client, "s1", grant(client, "s1", "recs"))
        new_kid = verify_receipt_file(new, keys).kid
        assert new_kid != old_kid and jwks["keys"][0]["kid"] == new_kid
        assert {k["kty"] for k in jwks["keys"]} == {"OKP"}
    without_old = parse_jwks({"keys": [k for k in jwks["keys"] if k["kid"] == new_kid]})
    with pytest.raises(ReceiptInvalid, match="not in the key set"):
        verify_receipt_file(old, without_old)


def test_a_gpc_opt_out_has_a_receipt_that_says_so(keyed: tuple[Container, TestClient]) -> None:
    container, client = keyed
    container.rights.set_jurisdiction("ca1", "US-CA")
    headers = {**subject_token("ca1"), "Sec-GPC": "1"}
    client.get("/v1/subjects/ca1/permissions", headers=headers)
    event = next(e for e in container.queries.history("ca1").events if e.source == "gpc")
    receipt = verify_receipt_file(
        download(client, "ca1", event.event_id), parse_jwks(published(client))
    ).receipt
    assert receipt["collection_method"]["source"] == "gpc"
    assert "Global Privacy Control" in receipt["collection_method"]["description"]


def test_without_a_key_receipts_are_unavailable_and_no_key_is_published(
    client: TestClient, container: Container
) -> None:
    me = subject_token("s1")
    patch = client.patch(
        "/v1/subjects/s1/permissions",
        json={"set": {"ads": "granted"}, "notice_versions": {"ads": "3"}},
        headers=me,
    )
    event_id = patch.json()["event_ids"][0]
    response = client.get(f"/v1/subjects/s1/receipts/{event_id}", headers=me)
    assert response.status_code == 503
    assert "CONSENTRY_RECEIPT_SIGNING_KEY" in response.json()["detail"]
    assert published(client) == {"keys": []}


def test_the_demo_key_is_stable_and_only_used_in_demo(sqlite_url: str) -> None:
    first = load_receipt_keys(Settings(database_url=sqlite_url, demo=True))
    second = load_receipt_keys(Settings(database_url=sqlite_url, demo=True))
    assert first.kid is not None and first.kid == second.kid and first.demo
    assert load_receipt_keys(Settings(database_url=sqlite_url)).signer is None


def test_a_grant_on_an_earlier_notice_version_carries_that_versions_text(
    keyed: tuple[Container, TestClient],
) -> None:
    _, client = keyed
    response = client.put(
        "/v1/subjects/s1/permissions/recs",
        json={"state": "granted", "notice_version": "1", "locale": "fr"},
        headers=subject_token("s1"),
    )
    assert response.status_code == 200, response.text
    receipt = verify_receipt_file(
        download(client, "s1", response.json()["event_id"]), parse_jwks(published(client))
    ).receipt
    notice = receipt["privacy_notice"]
    assert (notice["version"], notice["current_version"]) == ("1", "2")
    assert notice["title"] == "Recommandations"
    assert notice["text"] == "Nous utilisons vos achats pour suggérer des produits."
    assert notice["text_sha256"] == hashlib.sha256(notice["text"].encode()).hexdigest()
    assert "note" not in notice

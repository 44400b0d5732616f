"""A customer checks their receipt against a published checkpoint: receipts name the
checkpoint that covers them, and the inclusion proof leads from the event to its signed root."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from consentry.app import create_app
from consentry.bootstrap import Container, bootstrap
from consentry.domain import merkle
from consentry.services import checkpoints
from consentry.services.receipt_signing import load_receipt_keys, new_signing_key_pem
from support import TEST_SECRET, bearer, make_settings


def subject_token(sub: str) -> dict[str, str]:
    exp = datetime.now(UTC) + timedelta(minutes=10)
    return bearer(jwt.encode({"sub": sub, "exp": exp}, TEST_SECRET, algorithm="HS256"))


@pytest.fixture
def keyed(database_url: str) -> Iterator[tuple[Container, TestClient]]:
    container = bootstrap(make_settings(database_url, receipt_signing_key=new_signing_key_pem()))
    with TestClient(create_app(container)) as client:
        yield container, client
    container.close()


# The notice version each permission of the test catalogue shows (a grant names it).
NOTICE_VERSIONS = {"recs": "2", "ads": "3", "email": "1", "sale": "1", "location": "1"}


def grant(client: TestClient, sid: str, pid: str) -> str:
    response = client.put(
        f"/v1/subjects/{sid}/permissions/{pid}",
        json={"state": "granted", "notice_version": NOTICE_VERSIONS[pid]},
        headers=subject_token(sid),
    )
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


def test_a_receipt_names_its_checkpoint_and_the_inclusion_proof_leads_to_the_signed_root(
    keyed: tuple[Container, TestClient],
) -> None:
    container, client = keyed
    first = grant(client, "cust-1", "recs")
    later = grant(client, "cust-1", "ads")
    grant(client, "cust-2", "recs")
    mine = subject_token("cust-1")
    before = client.get(f"/v1/subjects/cust-1/receipts/{first}", headers=mine).json()
    assert "checkpoint" not in before["receipt"]["ledger"]  # none covers it yet
    no_proof = client.get(f"/v1/subjects/cust-1/receipts/{first}/inclusion", headers=mine)
    assert no_proof.status_code == 404 and no_proof.json()["code"] == "not_covered"
    made = checkpoints.create(container.db, load_receipt_keys(container.settings))
    receipt = client.get(f"/v1/subjects/cust-1/receipts/{first}", headers=mine).json()
    covered = receipt["receipt"]["ledger"]["checkpoint"]
    assert (covered["number"], covered["root"], covered["tree_size"]) == (1, made.root, 2)
    proof = client.get(covered["inclusion_proof"], headers=mine).json()
    # The published log carries the same signed line the proof quotes.
    log = client.get("/.well-known/consentry-checkpoints.json").json()["checkpoints"]
    assert log == [proof["checkpoint"]]
    statement = checkpoints.read_line(
        json.dumps(proof["checkpoint"]),
        load_receipt_keys(container.settings).verifying_keys(),
        None,
    )
    # The event's hash leads, link by link, to the head the checkpoint recorded ...
    prev = receipt["receipt"]["ledger"]["hash"]
    for link in proof["chain_to_head"]:
        assert link["prev_hash"] == prev
        prev = link["hash"]
    leaf = proof["leaf"]
    assert prev == leaf["head_hash"] and leaf["seq"] == 2
    assert [link["seq"] for link in proof["chain_to_head"]] == [2]
    # ... and that head, by its audit path, to the signed root.
    data = bytes.fromhex(leaf["subject_ref"]) + leaf["seq"].to_bytes(4, "big")
    data += bytes.fromhex(leaf["head_hash"])
    root = merkle.root_from_path(
        hashlib.sha256(b"\x00" + data).digest(),
        leaf["index"],
        statement["tree_size"],
        [bytes.fromhex(h) for h in proof["audit_path"]],
    )
    assert root.hex() == statement["root"]
    other = client.get(f"/v1/subjects/cust-1/receipts/{later}/inclusion", headers=mine)
    assert other.status_code == 200 and other.json()["chain_to_head"] == []
    foreign = client.get(covered["inclusion_proof"], headers=subject_token("cust-2"))
    assert foreign.status_code == 404

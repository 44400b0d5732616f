"""A jurisdiction set by the platform reaches followers through the change feed."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from consentry.bootstrap import Container
from consentry.domain.decisions import DecisionRequest
from support import bearer


def test_jurisdiction_change_is_in_the_feed_and_in_decisions(
    client: TestClient, container: Container
) -> None:
    request = DecisionRequest("cust-ca", "sale", ("behaviour.purchases",))
    before = container.decisions.decide(request)
    container.rights.set_jurisdiction("cust-ca", "US-CA")
    after = container.decisions.decide(request)
    assert (before.allowed, after.allowed) == (False, True)
    key = bearer(container.keys.create(["decide"]))
    response = client.get("/v1/changes", params={"after": "0", "wait": 0}, headers=key)
    assert response.status_code == 200, response.text
    payloads = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    found = [p for p in payloads if "jurisdiction_set" in json.dumps(p)]
    assert len(found) == 1 and "US-CA" in json.dumps(found[0]) and "cust-ca" in json.dumps(found[0])

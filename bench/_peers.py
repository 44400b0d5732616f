"""The three in-process engines, each given the workload in its own idiom.

- consentry: the SDK client (``consentry.sdk.Consentry``), its snapshot served by an
  ``httpx.MockTransport`` (no network); ``allows()`` is what is timed.
- pycasbin: RBAC with the subject as user and each permission as role, one policy line per
  (permission, purpose, category, recipient); ``FastEnforcer`` indexed on purpose, category and
  recipient (the fastest pycasbin offers; plain ``Enforcer`` scans every policy line).
- cedarpy: one ``permit`` per permission (principal in Permission, resource in its categories,
  purpose and recipient in the context), policies and entities parsed once into handles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from _workload import Workload

from consentry.domain.compiled import CompiledCatalogue
from consentry.replica import wire
from consentry.sdk import Consentry

Check = Callable[[str, str, str, str], bool]

CASBIN_MODEL = """
[request_definition]
r = sub, pur, cat, rec

[policy_definition]
p = perm, pur, cat, rec

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.pur == p.pur && r.cat == p.cat && r.rec == p.rec && g(r.sub, p.perm)
"""


def snapshot_text(work: Workload) -> str:
    compiled = CompiledCatalogue(work.catalogue)
    lines = [wire.header_line(compiled, "0", len(work.subjects))]
    for sid in work.subjects:
        rows = [
            (c.permission_id, c.state.value, c.notice_version, None)
            for c in work.choices[sid].values()
        ]
        lines.append(wire.subject_line(compiled, sid, 1, None, rows))
    lines.append(wire.trailer_line(len(work.subjects)))
    return "\n".join(lines) + "\n"


def consentry_peer(work: Workload) -> tuple[Check, Callable[[], None]]:
    body = snapshot_text(work)

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/snapshot":
            return httpx.Response(200, text=body)
        return httpx.Response(200, text="", headers={wire.CURSOR_HEADER: "0"})

    client = Consentry(
        "http://consentry.invalid",
        api_key="csk_bench",
        transport=httpx.MockTransport(serve),
        follow=False,
        stale_after=3600,
    )
    return client.allows, client.close


def casbin_enforcer(work: Workload) -> Any:
    import casbin
    from casbin.model import FastModel

    order = [1, 2, 3]  # index policy lines by purpose, category, recipient
    model = FastModel(order)
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.FastEnforcer(model, cache_key_order=order)
    enforcer.add_policies([list(rule) for rule in work.rules])
    enforcer.add_named_grouping_policies(
        "g", [[sid, pid] for sid, perms in work.effective.items() for pid in perms]
    )
    return enforcer


def casbin_peer(work: Workload) -> tuple[Check, Callable[[], None]]:
    enforcer = casbin_enforcer(work)
    return enforcer.enforce, lambda: None


def _uid(kind: str, name: str) -> str:
    return f"{kind}::{json.dumps(name)}"


def cedar_policies(work: Workload) -> str:
    out = []
    for perm in work.permissions:
        categories = ", ".join(_uid("Category", c) for c in perm.categories)
        recipients = json.dumps(list(perm.recipients))
        out.append(
            f'permit(principal in {_uid("Permission", perm.id)}, action == Action::"use", '
            f"resource) when {{ [{categories}].contains(resource) && context.purpose == "
            f"{json.dumps(perm.purpose)} && {recipients}.contains(context.recipient) }};"
        )
    return "\n".join(out)


def cedar_entities(work: Workload) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [
        {"uid": {"type": "Permission", "id": p.id}, "attrs": {}, "parents": []}
        for p in work.permissions
    ]
    entities += [
        {"uid": {"type": "Category", "id": c}, "attrs": {}, "parents": []}
        for c in work.catalogue.categories
    ]
    entities += [
        {
            "uid": {"type": "Subject", "id": sid},
            "attrs": {},
            "parents": [{"type": "Permission", "id": pid} for pid in perms],
        }
        for sid, perms in work.effective.items()
    ]
    return entities


def cedar_peer(work: Workload) -> tuple[Check, Callable[[], None]]:
    import cedarpy

    policies = cedarpy.PolicySet.from_str(cedar_policies(work))
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities(work)))
    allow = cedarpy.Decision.Allow

    def check(subject: str, purpose: str, category: str, recipient: str) -> bool:
        request = {
            "principal": _uid("Subject", subject),
            "action": 'Action::"use"',
            "resource": _uid("Category", category),
            "context": {"purpose": purpose, "recipient": recipient},
        }
        return bool(cedarpy.is_authorized(request, policies, entities).decision == allow)

    return check, lambda: None


PEERS: dict[str, Callable[[Workload], tuple[Check, Callable[[], None]]]] = {
    "consentry": consentry_peer,
    "casbin": casbin_peer,
    "cedarpy": cedar_peer,
}

"""One workload for every peer: the same subjects, permissions and requests, 50% allowed.

Built from the marketplace catalogue's permissions that need no device report (device grants
live on the server, and the other engines have no notion of them). Each subject grants, denies
or never touches each switchable permission at random; what is *effective* (consentry's own
rule: contract and legal obligation always, legitimate interest unless objected, consent when
granted) is what the other engines are given as role memberships. Requests are (subject,
purpose, one category, recipient), drawn until exactly half are allowed. Each request carries
its own copy of the subject id, allocated in request order, as a service holds the id that came
with the request it serves: reading the id is not a trip to a random place in memory, while the
engine's own lookup of that subject among all the others still is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Permission
from consentry.domain.decisions import CatalogueIndex, DecisionRequest, decide, evaluate
from consentry.domain.state import Choice, ChoiceState, SubjectState

CATALOGUE = Path(__file__).resolve().parents[1] / "catalogues" / "marketplace.yaml"
NOW = datetime.now(UTC)

Request = tuple[str, str, str, str]  # subject, purpose, category, recipient
Rule = tuple[str, str, str, str]  # permission, purpose, category, recipient


@dataclass
class Workload:
    catalogue: Catalogue
    permissions: list[Permission]
    subjects: list[str]
    choices: dict[str, dict[str, Choice]]  # subject -> explicit choices
    effective: dict[str, list[str]]  # subject -> permissions in effect
    rules: list[Rule]
    requests: list[Request]
    expected: list[bool]


def _usable(catalogue: Catalogue) -> list[Permission]:
    device = {name for name, cat in catalogue.categories.items() if cat.device}
    return [p for p in catalogue.permissions if not device & set(p.categories)]


def build(subjects: int, requests: int, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    catalogue = load_catalogue(CATALOGUE)
    index = CatalogueIndex(catalogue)
    perms = _usable(catalogue)
    ids = [f"user-{i:07d}" for i in range(subjects)]
    choices: dict[str, dict[str, Choice]] = {}
    effective: dict[str, list[str]] = {}
    for sid in ids:
        mine: dict[str, Choice] = {}
        for perm in perms:
            if not perm.toggleable:
                continue
            roll = rng.random()
            if roll < 0.7:
                state = ChoiceState.GRANTED if roll < 0.45 else ChoiceState.DENIED
                mine[perm.id] = Choice(perm.id, state, perm.notice.version, NOW, "api")
        choices[sid] = mine
        effective[sid] = [p.id for p in perms if evaluate(p, mine.get(p.id), None, NOW).allowed]
    rules = [(p.id, p.purpose, c, r) for p in perms for c in p.categories for r in p.recipients]
    half = requests // 2
    allowed: list[Request] = []
    denied: list[Request] = []
    while len(allowed) < half or len(denied) < requests - half:
        _, purpose, category, recipient = rng.choice(rules)
        sid = rng.choice(ids)
        subject = SubjectState(sid, None, choices[sid], {})
        ask = DecisionRequest(sid, purpose, (category,), recipient)
        decision = decide(index, subject, ask, NOW)
        bucket, cap = (allowed, half) if decision.allowed else (denied, requests - half)
        if len(bucket) < cap:
            bucket.append((sid, purpose, category, recipient))
    mixed = [(r, True) for r in allowed] + [(r, False) for r in denied]
    rng.shuffle(mixed)
    return Workload(
        catalogue,
        perms,
        ids,
        choices,
        effective,
        rules,
        # sid.encode().decode(): a new str with the same text, not a reference into ``ids``.
        [(sid.encode().decode(), p, c, r) for (sid, p, c, r), _ in mixed],
        [a for _, a in mixed],
    )

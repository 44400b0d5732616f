"""Every scope a service API key can hold, with what it allows. Routes name scopes from here."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    DECIDE = "decide"
    SUBJECTS_READ = "subjects:read"
    SUBJECTS_WRITE = "subjects:write"
    USES_WRITE = "uses:write"
    ADMIN = "admin"


SCOPES: dict[Scope, str] = {
    Scope.DECIDE: "Ask for decisions (POST /v1/decisions, /v1/decisions/batch).",
    Scope.SUBJECTS_READ: "Read any subject's permissions, history and devices.",
    Scope.SUBJECTS_WRITE: "Record choices and device reports for any subject.",
    Scope.USES_WRITE: "Report uses of personal data (POST /v1/uses): the access reports.",
    Scope.ADMIN: "Everything, including metrics, violations and key management.",
}


def parse_scopes(names: list[str]) -> frozenset[Scope]:
    unknown = [n for n in names if n not in {s.value for s in Scope}]
    if unknown:
        raise ValueError(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(s.value for s in Scope)}"
        )
    return frozenset(Scope(n) for n in names)

"""Domain errors: each maps to one HTTP status and one CLI message at the edges."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    code = "domain_error"


class UnknownPermission(DomainError):
    code = "unknown_permission"

    def __init__(self, permission_id: str) -> None:
        self.permission_id = permission_id
        super().__init__(f"no permission {permission_id!r} in the catalogue")


class NotToggleable(DomainError):
    code = "not_toggleable"

    def __init__(self, permission_id: str, legal_basis: str) -> None:
        self.permission_id = permission_id
        super().__init__(
            f"permission {permission_id!r} rests on {legal_basis} and cannot be granted or "
            "withdrawn by the subject"
        )


class NoticeOutdated(DomainError):
    code = "notice_outdated"

    def __init__(self, permission_id: str, shown: str, current: str) -> None:
        self.permission_id = permission_id
        super().__init__(
            f"a grant of {permission_id!r} must be on notice version {current!r}; "
            f"the client showed {shown!r}: reload the catalogue and show the current notice"
        )


class InvalidChange(DomainError):
    code = "invalid_change"


class ConcurrencyConflict(DomainError):
    """Another writer appended to the same subject first; the use case retries."""

    code = "concurrency_conflict"


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


class InvalidPreference(InvalidChange):
    """A page setting the customer cannot have: a language we do not offer, an unknown zone."""

    code = "invalid_preference"

"""A grant must say which notice was shown.

The ledger records, with every grant, the version of the notice the subject was shown: that is
the proof. For a consent permission the caller must therefore name it; a grant without it is
refused (422) rather than recorded as if the current notice had been shown. Withdrawing, and
withdrawing an objection to legitimate interest, need no notice.
"""

from __future__ import annotations

from collections.abc import Mapping

from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_vocabulary import LegalBasis
from consentry.http.problems import Problem

CODE = "notice_version_required"


def require_notice(catalogue: Catalogue, pid: str, state: str, version: str | None) -> None:
    perm = catalogue.permission(pid)
    if perm is None or state != "granted" or version is not None:
        return
    if perm.legal_basis is LegalBasis.CONSENT:
        current = perm.notice.version
        raise Problem(
            422,
            f"a grant of {pid!r} must say which notice the subject was shown: send "
            f'"notice_version" (the current one is {current!r}, from GET /v1/catalog)',
            code=CODE,
            permission=pid,
            current_notice_version=current,
        )


def require_notices(
    catalogue: Catalogue, choices: Mapping[str, str], versions: Mapping[str, str]
) -> None:
    for pid, state in choices.items():
        require_notice(catalogue, pid, state, versions.get(pid))

"""The readable summary of a customer's data: each reported use says whether it respected the
customer's choice, and a use the service refrained from is never shown as a breach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.web.export_page import use_lines
from consentry.web.i18n import translator

MARKETPLACE = Path(__file__).parents[3] / "catalogues" / "marketplace.yaml"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(MARKETPLACE)


def use(outcome: str, allowed_then: bool) -> dict[str, Any]:
    return {
        "purpose": "marketing.email",
        "permission": "marketing.email",
        "service": "mailer",
        "used_at": "2026-11-30T09:00:00+00:00",
        "allowed_then": allowed_then,
        "outcome": outcome,
    }


@pytest.mark.parametrize(
    ("outcome", "allowed_then", "flag"),
    [
        ("used", True, None),
        ("used", False, "This use did not respect your choices at the time."),
        ("refrained", False, "Not used: the service asked and refrained."),
        ("refrained", True, "Not used: the service asked and refrained."),
    ],
)
def test_a_use_is_flagged_only_when_it_broke_the_choice_and_a_refrained_one_says_not_used(
    catalogue: Catalogue, outcome: str, allowed_then: bool, flag: str | None
) -> None:
    (line,) = use_lines(catalogue, [use(outcome, allowed_then)], translator("en"))
    assert line.flag == flag
    assert line.detail == "mailer"


def test_the_refrained_note_is_translated(catalogue: Catalogue) -> None:
    (line,) = use_lines(catalogue, [use("refrained", False)], translator("fr"))
    assert line.flag == "Non utilisé : le service a demandé et s'en est abstenu."

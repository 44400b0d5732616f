"""Where the subject stands on the first tab, without a browser: the rules that apply, the GPC
confirmation, the re-consent prompt, expired and auto-reset grants, opt-out deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.catalogue import Catalogue
from consentry.domain.catalogue_entries import Webhook
from consentry.domain.state import Choice, ChoiceState, SubjectState
from consentry.domain.views import PermissionView, view
from consentry.services.deliveries import Delivery, RecipientDeliveries
from consentry.storage.deliveries import DeliveryRow
from consentry.web.i18n import translator
from consentry.web.standing import delivery_text, gpc_honoured, rules_text
from consentry.web.view_model import PageModel, PermissionCard, build_page

MARKETPLACE = Path(__file__).parents[3] / "catalogues" / "marketplace.yaml"
NOW = datetime(2026, 1, 5, 10, 3, tzinfo=UTC)
NB = "\u00a0"
SALE_AND_SHARING = ("sale.data_buyers", "sharing.ad_partners", "tracking.cross_app")


@pytest.fixture(scope="module")
def market() -> Catalogue:
    return load_catalogue(MARKETPLACE)


def choice(
    pid: str,
    state: str,
    *,
    version: str = "",
    source: str = "web",
    options: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    at: datetime = NOW,
) -> Choice:
    return Choice(
        pid, ChoiceState(state), version, at, source, options or {}, expires_at, f"ev-{pid}"
    )


def views_of(
    catalogue: Catalogue, *choices: Choice, jurisdiction: str | None = "BE"
) -> list[PermissionView]:
    made = {}
    for c in choices:
        perm = catalogue.permission(c.permission_id)
        assert perm is not None
        made[c.permission_id] = (
            c
            if c.notice_version
            else Choice(
                c.permission_id,
                c.state,
                perm.notice.version,
                c.updated_at,
                c.source,
                c.options,
                c.expires_at,
                c.event_id,
            )
        )
    state = SubjectState("s-1", jurisdiction, made)
    return [view(p, made.get(p.id), state, NOW) for p in catalogue.permissions]


def build(catalogue: Catalogue, *choices: Choice, locale: str = "en", **extra: Any) -> PageModel:
    return build_page(catalogue, views_of(catalogue, *choices), [], translator(locale), **extra)


def card(model: PageModel, pid: str) -> PermissionCard:
    return next(c for c in model.usage + model.sharing + model.needed if c.id == pid)


# -- which rules apply ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("jurisdiction", "locale", "expected"),
    [
        ("BE", "en", "You are in Belgium: nothing is used for purposes that need your consent"),
        ("BE", "fr", "Pour vous (Belgique), rien n'est utilisé"),
        ("BE", "nl", "U bent in België: niets wordt gebruikt"),
        ("DE", "de", "Ihr Standort: Deutschland. Nichts wird für Zwecke verwendet"),
        ("GB", "en", "You are in the United Kingdom: nothing is used"),
        ("NL", "nl", "U bent in Nederland: niets"),
        ("US-CA", "en", "You are in California: the sale and sharing of your data may be on"),
        ("US-CA", "de", "Ihr Standort: Kalifornien. Der Verkauf und die Weitergabe"),
        ("JP", "en", "You are in Japan, where our default rules apply"),
        (None, "en", "We do not know where you live, so the strictest rules apply"),
        (None, "nl", "We weten niet waar u woont, dus gelden de strengste regels"),
    ],
)
def test_the_page_says_which_rules_apply_in_its_language(
    jurisdiction: str | None, locale: str, expected: str
) -> None:
    assert rules_text(jurisdiction, translator(locale)).startswith(expected)


def test_the_page_model_carries_the_rules_of_the_subjects_jurisdiction(market: Catalogue) -> None:
    assert build(market, jurisdiction="US-CA").rules.startswith("You are in California")
    assert build(market, locale="fr").rules.startswith("Nous ne savons pas où vous habitez")


# -- Global Privacy Control ----------------------------------------------------------------------
def test_a_gpc_opt_out_in_force_is_confirmed_and_a_plain_refusal_is_not(
    market: Catalogue,
) -> None:
    by_gpc = [choice(p, "denied", source="gpc") for p in SALE_AND_SHARING]
    assert gpc_honoured(market, views_of(market, *by_gpc))
    assert build(market, *by_gpc).gpc
    by_hand = [choice(p, "denied") for p in SALE_AND_SHARING]
    assert not gpc_honoured(market, views_of(market, *by_hand))
    # Allowed again later (from a browser without the signal): no longer "done".
    regranted = [*by_gpc[1:], choice(SALE_AND_SHARING[0], "granted")]
    assert not gpc_honoured(market, views_of(market, *regranted))


# -- re-consent after a material change ----------------------------------------------------------
@pytest.mark.parametrize("locale", ["en", "fr", "nl", "de"])
def test_a_grant_on_a_materially_changed_notice_is_asked_again_with_the_change(
    market: Catalogue, locale: str
) -> None:
    stale = choice("sharing.ad_partners", "granted", version="2")
    model = build(market, stale, locale=locale)
    (item,) = model.reconsent
    perm = market.permission("sharing.ad_partners")
    assert perm is not None and perm.notice.change_summary is not None
    assert item.id == "sharing.ad_partners" and item.notice_version == "3"
    assert item.change == perm.notice.change_summary[locale]
    assert item.title == perm.notice.title[locale]
    assert card(model, "sharing.ad_partners").status == "notice_changed"


def test_no_prompt_for_a_non_material_change_a_refusal_or_an_answer_on_the_new_version(
    market: Catalogue,
) -> None:
    compatible = choice("marketing.email", "granted", version="1")  # v2 accepts v1 grants
    assert build(market, compatible).reconsent == ()
    assert build(market, choice("sharing.ad_partners", "denied", version="2")).reconsent == ()
    answered = choice("sharing.ad_partners", "granted", version="3")
    assert build(market, answered).reconsent == ()


# -- expired and auto-reset grants, apart from refusals ------------------------------------------
def test_an_expired_grant_says_when_it_expired(market: Catalogue) -> None:
    ended = NOW - timedelta(days=2)
    model = build(market, choice("marketing.email", "granted", expires_at=ended))
    email = card(model, "marketing.email")
    assert (email.checked, email.status) == (False, "expired")
    assert email.note == "Expired on January 3, 2026, 10:03:00\u202fAM UTC: your time-limited " + (
        "permission has ended."
    )
    fr = card(
        build(market, choice("marketing.email", "granted", expires_at=ended), locale="fr"),
        "marketing.email",
    )
    assert fr.note is not None and fr.note.startswith("Expirée le 3 janvier 2026")


def test_an_auto_reset_says_since_when_it_was_unused_and_a_refusal_says_nothing(
    market: Catalogue,
) -> None:
    reset = choice("marketing.email", "denied", source="system", options={"reason": "auto_reset"})
    since = {"marketing.email": datetime(2024, 12, 1, tzinfo=UTC)}
    email = card(build(market, reset, unused_since=since), "marketing.email")
    assert email.status == "auto_reset"
    assert (
        email.note == "Switched off automatically because it was not used since December 1, 2024."
    )
    de = card(build(market, reset, unused_since=since, locale="de"), "marketing.email")
    assert de.note == (
        "Automatisch ausgeschaltet, weil es seit dem 1. Dezember 2024 nicht genutzt wurde."
    )
    unknown = card(build(market, reset), "marketing.email")
    assert unknown.note == "Switched off automatically: it was not used for a long time."
    refused = card(build(market, choice("marketing.email", "denied")), "marketing.email")
    assert (refused.status, refused.note) == (None, None)


# -- opt-out deliveries to third parties ---------------------------------------------------------
def delivery(status: str, sent: datetime | None, acked: datetime | None) -> RecipientDeliveries:
    row = DeliveryRow(
        id=1,
        event_id="ev-1",
        subject_id="s-1",
        recipient="cobalt_audience",
        payload="{}",
        status=status,
        attempts=1 if sent else 0,
        next_attempt_at=NOW,
        last_error=None,
        created_at=NOW,
        sent_at=sent,
        acknowledged_at=acked,
    )
    body = {"type": "consentry.opt_out"}
    return RecipientDeliveries("cobalt_audience", "Cobalt", "US", [Delivery(row, body)])


def with_webhook(catalogue: Catalogue, rid: str) -> Catalogue:
    hook = Webhook(url="https://partner.example.com/hook", secret_env="PARTNER_SECRET")
    recipients = dict(catalogue.recipients)
    recipients[rid] = recipients[rid].model_copy(update={"webhook": hook})
    return catalogue.model_copy(update={"recipients": recipients})


def test_each_delivery_state_reads_as_sent_acknowledged_or_pending() -> None:
    en, fr = translator("en"), translator("fr")
    done = delivery("acknowledged", NOW, NOW + timedelta(seconds=1))
    assert delivery_text(done, en) == (
        "Opt-out sent on January 5, 2026, 10:03:00\u202fAM UTC, acknowledged on "
        "January 5, 2026, 10:03:01\u202fAM UTC."
    )
    assert delivery_text(done, fr).startswith("Opposition envoyée le 5 janvier 2026")
    retrying = delivery("sent", NOW, None)
    assert delivery_text(retrying, en).endswith("acknowledgement pending.")
    assert delivery_text(delivery("pending", None, None), en) == (
        "Opt-out pending: not delivered yet."
    )


def test_delivery_lines_show_only_for_recipients_with_a_webhook(market: Catalogue) -> None:
    groups = [delivery("pending", None, None)]
    plain = {r.id: r for r in build(market, deliveries=groups).recipients}
    assert plain["cobalt_audience"].delivery is None  # no webhook: nothing is sent to it
    hooked = with_webhook(market, "cobalt_audience")
    shown = {r.id: r for r in build(hooked, deliveries=groups).recipients}
    assert shown["cobalt_audience"].delivery == "Opt-out pending: not delivered yet."
    assert shown["adlytics"].delivery is None

"""Demo customers (invented people, example.com addresses) with a little history; one of them
has a grant on an earlier version of a notice that changed since, so the page asks her again."""

from __future__ import annotations

from dataclasses import dataclass

from consentry.bootstrap import Container
from consentry.domain.decisions import CatalogueIndex
from consentry.domain.planning import Change, Context
from consentry.domain.state import ChoiceState
from consentry.services.consents import ConsentService


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    subject_id: str
    name: str
    email: str
    locale: str
    grants: tuple[str, ...]
    devices: dict[str, dict[str, str]]


DEMO_CUSTOMERS = (
    DemoCustomer(
        "demo-amelie",
        "Amélie Fontaine",
        "amelie.fontaine@example.com",
        "fr",
        ("recommendations.personalised", "marketing.email", "location.precise"),
        {
            "pixel-7": {
                "location": "precise",
                "location_scope": "while_using",
                "camera": "granted",
                "photos": "limited",
                "notifications": "granted",
                "tracking": "denied",
            }
        },
    ),
    DemoCustomer(
        "demo-bram",
        "Bram Verhoeven",
        "bram.verhoeven@example.org",
        "nl",
        ("ads.personalised", "sharing.ad_partners", "analytics.product"),
        {"iphone-15": {"location": "approximate", "tracking": "authorized", "camera": "ask"}},
    ),
    DemoCustomer(
        "demo-clara",
        "Clara Neumann",
        "clara.neumann@example.com",
        "de",
        (),
        {},
    ),
    DemoCustomer(
        "demo-dylan",
        "Dylan Carter",
        "dylan.carter@example.org",
        "en",
        ("marketing.push", "recommendations.personalised"),
        {"browser": {"location": "ask", "notifications": "denied"}},
    ),
    # Allowed sharing with ad networks on notice version 2; version 3 added a second network (a
    # material change), so the page asks her again.
    DemoCustomer(
        "demo-emma",
        "Emma Lambert",
        "emma.lambert@example.org",
        "fr",
        ("marketing.email", "sharing.ad_partners@2"),
        {"pixel-8": {"location": "approximate", "notifications": "granted"}},
    ),
)


def _on_earlier_notice(
    container: Container, subject: str, pid: str, version: str, locale: str
) -> None:
    """A grant recorded while the notice was at ``version``, before it changed materially."""
    catalogue = container.catalogue
    perms = tuple(
        p.model_copy(update={"notice": p.notice.model_copy(update={"version": version})})
        if p.id == pid
        else p
        for p in catalogue.permissions
    )
    earlier = CatalogueIndex(catalogue.model_copy(update={"permissions": perms}))
    ConsentService(container.db, earlier).change(
        subject,
        [Change(pid, ChoiceState.GRANTED, notice_version=version)],
        Context(source="web", locale=locale),
    )


def seed(container: Container) -> list[str]:
    """Give each demo customer their starting choices once; later runs leave them alone."""
    consents = container.consents
    for customer in DEMO_CUSTOMERS:
        if container.queries.history(customer.subject_id, limit=1).events:
            continue
        current = [g for g in customer.grants if "@" not in g]
        changes = [
            Change(
                pid,
                ChoiceState.GRANTED,
                notice_version=container.index.permissions[pid].notice.version,
            )
            for pid in current
            if pid in container.index.permissions
        ]
        if changes:
            consents.change(
                customer.subject_id, changes, Context(source="web", locale=customer.locale)
            )
        for earlier in (g for g in customer.grants if "@" in g):
            pid, _, version = earlier.partition("@")
            if pid in container.index.permissions:
                _on_earlier_notice(container, customer.subject_id, pid, version, customer.locale)
        for device_id, grants in customer.devices.items():
            platform = (
                "web"
                if device_id == "browser"
                else ("ios" if device_id.startswith("iphone") else "android")
            )
            known = {d.id for d in container.catalogue.device_permissions}
            container.devices.report(
                customer.subject_id,
                device_id,
                platform,
                "5.12.0",
                {k: v for k, v in grants.items() if k in known},
            )
    return [c.subject_id for c in DEMO_CUSTOMERS]

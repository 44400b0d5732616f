"""Demo customers (invented people, example.com addresses) with a little history."""

from __future__ import annotations

from dataclasses import dataclass

from consentry.bootstrap import Container
from consentry.domain.state import ChoiceState
from consentry.services.consents import Change, Context


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
)


def seed(container: Container) -> list[str]:
    """Give each demo customer their starting choices once; later runs leave them alone."""
    consents = container.consents
    for customer in DEMO_CUSTOMERS:
        if consents.history(customer.subject_id, limit=1).events:
            continue
        changes = [
            Change(pid, ChoiceState.GRANTED)
            for pid in customer.grants
            if pid in container.index.permissions
        ]
        if changes:
            consents.change(
                customer.subject_id, changes, Context(source="web", locale=customer.locale)
            )
        for device_id, grants in customer.devices.items():
            platform = (
                "web"
                if device_id == "browser"
                else ("ios" if device_id.startswith("iphone") else "android")
            )
            known = {d.id for d in container.catalogue.device_permissions}
            consents.report_device(
                customer.subject_id,
                device_id,
                platform,
                "5.12.0",
                {k: v for k, v in grants.items() if k in known},
            )
    return [c.subject_id for c in DEMO_CUSTOMERS]

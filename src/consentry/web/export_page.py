"""The export as a page a person reads and prints: the same data as the JSON and CSV files
(``RightsService.export_summary``, ``history_items``, ``use_items``), in the customer's language
and time zone. Pure: dicts in, rows out; the history and the uses stay lazy (streamed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.catalogue import Catalogue
from consentry.web.i18n import Translator
from consentry.web.labels import action_text, device_value_text, platform_text, source_text


@dataclass(frozen=True, slots=True)
class Moment:
    text: str
    iso: str


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of a list on the page: what, its state or detail, and when."""

    title: str
    detail: str
    when: Moment | None = None
    flag: str | None = None


def _moment(tr: Translator, iso: str | None) -> Moment | None:
    return Moment(tr.datetime(datetime.fromisoformat(iso)), iso) if iso else None


def _title(catalogue: Catalogue, pid: str | None, tr: Translator) -> str:
    perm = catalogue.permission(pid or "")
    return catalogue.text(perm.notice.title, tr.locale) if perm else (pid or "")


def permission_lines(catalogue: Catalogue, summary: dict[str, Any], tr: Translator) -> list[Line]:
    """Each permission as it stands: its title, on or off, and since when (a choice's time)."""
    return [
        Line(
            _title(catalogue, p["id"], tr),
            tr.gettext("On") if p["effective"] else tr.gettext("Off"),
            _moment(tr, p["updated_at"]),
        )
        for p in summary["permissions"]
    ]


def recipient_lines(summary: dict[str, Any], tr: Translator) -> list[Line]:
    return [
        Line(
            r["name"],
            tr.country(r["country"]),
            flag=tr.gettext("Outside the EEA") if r["outside_eea"] else None,
        )
        for r in summary["recipients_receiving_data"]
    ]


def device_lines(catalogue: Catalogue, summary: dict[str, Any], tr: Translator) -> list[Line]:
    """Each device's report: its platform and what the phone allows, named as on the page."""
    titles = {d.id: catalogue.text(d.title, tr.locale) for d in catalogue.device_permissions}
    return [
        Line(
            platform_text(d["platform"], tr),
            ", ".join(
                f"{titles.get(name, name)}: {device_value_text(str(value), tr)}"
                for name, value in sorted(d["os_permissions"].items())
            ),
            _moment(tr, d["updated_at"]),
        )
        for d in summary["devices"]
    ]


def history_lines(
    catalogue: Catalogue, items: Iterable[dict[str, Any]], tr: Translator
) -> Iterator[Line]:
    """The customer's choices, oldest first: what, the choice, when, from where."""
    for item in items:
        if not item["permission"]:
            continue  # not a choice (an erasure marker)
        perm = catalogue.permission(item["permission"])
        yield Line(
            _title(catalogue, item["permission"], tr),
            f"{action_text(perm, item['state'], tr, item['options'].get('reason'))} · "
            f"{source_text(item['source'], tr)}",
            _moment(tr, item["occurred_at"]),
        )


def use_lines(
    catalogue: Catalogue, items: Iterable[dict[str, Any]], tr: Translator
) -> Iterator[Line]:
    """Each reported use: by which permission (or purpose), which service, when."""
    for item in items:
        purpose = catalogue.purposes.get(item["purpose"])
        title = (
            _title(catalogue, item["permission"], tr)
            if item["permission"]
            else catalogue.text(purpose.label, tr.locale)
            if purpose
            else item["purpose"]
        )
        yield Line(
            title,
            item["service"],
            _moment(tr, item["used_at"]),
            flag=_use_flag(item, tr),
        )


def _use_flag(item: dict[str, Any], tr: Translator) -> str | None:
    """A use the service refrained from is no breach of the customer's choice: it says so."""
    if item.get("outcome") == "refrained":
        return tr.gettext("Not used: the service asked and refrained.")
    if item["allowed_then"]:
        return None
    return tr.gettext("This use did not respect your choices at the time.")

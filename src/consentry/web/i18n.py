"""The page's languages: choosing one per request, and the gettext catalogues for the page chrome.

Permission texts come from the catalogue YAML; everything else on the page (headings, buttons,
summary sentences) is a gettext message whose English text is its id. The ``.po`` files under
``locales/`` are the source; they are compiled in memory on first use, so there is no build step.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_datetime, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
SOURCE_LOCALE = "en"
# The languages the page chrome is translated into; the page offers those the catalogue has too.
SUPPORTED = ("en", "fr", "nl", "de")
MAX_ACCEPT_LANGUAGE = 500


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled messages of one locale (English is the source text, so it needs none)."""
    if locale == SOURCE_LOCALE or locale not in SUPPORTED:
        return gettext.NullTranslations()
    with po_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN, abort_invalid=True)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_utc(zone: tzinfo) -> bool:
    return zone is UTC or getattr(zone, "key", None) in {"UTC", "Etc/UTC"}


@functools.cache
def _with_offset(locale: str) -> str:
    """The locale's long date and time with the zone as an offset (``GMT+01:00``, in French
    ``UTC+01:00``): unambiguous where abbreviations are not (CST, IST)."""
    loc = Locale.parse(locale)
    glue = str(loc.datetime_formats["long"])
    time_part = loc.time_formats["medium"].pattern + " ZZZZ"
    return glue.replace("{0}", time_part).replace("{1}", loc.date_formats["long"].pattern)


@dataclass(frozen=True, slots=True)
class Translator:
    """gettext for one locale, with ``%(name)s`` substitution; times in one time zone (the
    customer's stored one, else UTC)."""

    locale: str
    messages: gettext.NullTranslations
    zone: tzinfo = UTC

    def gettext(self, message: str, **values: object) -> str:
        text = self.messages.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = self.messages.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def date(self, moment: datetime, zone: tzinfo | None = None) -> str:
        """A day in the locale's long format (the day it was in the time zone)."""
        day = _aware(moment).astimezone(zone or self.zone).date()
        return format_date(day, "long", locale=self.locale)

    def datetime(self, moment: datetime, zone: tzinfo | None = None) -> str:
        """A point in time in the locale's long format, in the time zone and saying which
        (``UTC``, or the offset: ``GMT+01:00``)."""
        zone = zone or self.zone
        if is_utc(zone):
            return format_datetime(_aware(moment), "long", tzinfo=UTC, locale=self.locale)
        return format_datetime(_aware(moment), _with_offset(self.locale), zone, self.locale)

    def zone_name(self, zone: tzinfo | None = None) -> str:
        """A time zone as a person knows it: its city in the locale (``Bruxelles``), or
        ``UTC``."""
        zone = zone or self.zone
        if is_utc(zone):
            return "UTC"
        return str(get_timezone_location(zone, locale=self.locale, return_city=True))

    def country(self, code: str) -> str:
        name = Locale.parse(self.locale).territories.get(code)
        return str(name) if name else code

    def language_name(self, locale: str) -> str:
        """A language named in itself (``Français``), as a language switcher shows it."""
        name = Locale.parse(locale).get_display_name(locale) or locale
        return name[:1].upper() + name[1:]


def translator(locale: str, zone: str | None = None) -> Translator:
    """The page's words in ``locale``, its times in the IANA ``zone`` (UTC when None, or when
    this system no longer knows the zone)."""
    try:
        where: tzinfo = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        where = UTC
    return Translator(locale, translations(locale), where)


def offered(catalogue_locales: Iterable[str]) -> tuple[str, ...]:
    """Languages the page can show fully: chrome translated and catalogue texts present."""
    have = set(catalogue_locales)
    return tuple(loc for loc in SUPPORTED if loc in have)


def parse_accept_language(header: str) -> list[str]:
    """Primary language subtags from an Accept-Language header, best first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        ranked.append((-quality, position, tag.split("-", 1)[0]))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(
    query: str | None,
    accept_language: str | None,
    available: Sequence[str],
    default: str,
    *,
    stored: str | None = None,
    remembered: str | None = None,
) -> str:
    """The page's language: the one stored for the customer's account (it follows them to
    every device), then ?lang=, then the one this browser remembers, then Accept-Language,
    then the catalogue's default locale."""
    for choice in (stored, query, remembered):
        if choice and choice in available:
            return choice
    for tag in parse_accept_language(accept_language or ""):
        if tag in available:
            return tag
    return default if default in available else available[0]

"""Languages of the page: negotiation, and every chrome message translated in fr, nl and de."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from consentry.web import i18n

WEB = Path(i18n.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def used_messages() -> dict[str, tuple[str, ...]]:
    """Every message the templates and modules ask gettext for: id -> all its English forms."""
    found: dict[str, tuple[str, ...]] = {}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    for _, _, message, _, _ in extract_from_dir(str(WEB), method_map, keywords=keywords):
        forms = (message,) if isinstance(message, str) else tuple(message)
        found[forms[0]] = forms
    return found


def test_the_page_finds_a_good_number_of_messages() -> None:
    messages = used_messages()
    assert len(messages) > 100
    assert "Refuse all" in messages and "Accept all" in messages


@pytest.mark.parametrize("locale", ["fr", "nl", "de"])
def test_every_message_is_translated_with_the_same_placeholders(locale: str) -> None:
    with i18n.po_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale)
    for msgid, forms in used_messages().items():
        entry = catalog.get(msgid)
        assert entry is not None, f"{locale}: missing {msgid!r}"
        assert not entry.fuzzy, f"{locale}: fuzzy {msgid!r}"
        raw = entry.string
        strings = [raw] if isinstance(raw, str) else list(raw or [])
        assert strings and all(strings), f"{locale}: untranslated {msgid!r}"
        expected = set(PLACEHOLDER.findall(" ".join(forms))) - {"num"}
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) - {"num"} == expected, (locale, msgid, text)


@pytest.mark.parametrize(
    ("locale", "refuse", "accept"),
    [
        ("en", "Refuse all", "Accept all"),
        ("fr", "Tout refuser", "Tout accepter"),
        ("nl", "Alles weigeren", "Alles accepteren"),
        ("de", "Alle ablehnen", "Alle akzeptieren"),
    ],
)
def test_translations_compile_from_the_po_files_at_runtime(
    locale: str, refuse: str, accept: str
) -> None:
    tr = i18n.translator(locale)
    assert (tr.gettext("Refuse all"), tr.gettext("Accept all")) == (refuse, accept)


def test_plural_forms_follow_the_language() -> None:
    one, many = (
        "you share your data with %(num)d partner",
        "you share your data with %(num)d partners",
    )
    assert i18n.translator("en").ngettext(one, many, 1) == one % {"num": 1}
    assert i18n.translator("de").ngettext(one, many, 3) == "Sie teilen Ihre Daten mit 3 Partnern"
    assert i18n.translator("fr").ngettext(one, many, 1).endswith("1 partenaire")
    assert i18n.translator("fr").ngettext(one, many, 2).endswith("2 partenaires")


def test_query_beats_accept_language_which_beats_the_default() -> None:
    offered = ("en", "fr", "nl", "de")
    assert i18n.negotiate("nl", "de-DE,de;q=0.9", offered, "en") == "nl"
    assert i18n.negotiate(None, "de-DE,de;q=0.9,en;q=0.5", offered, "en") == "de"
    assert i18n.negotiate("xx", "fr-BE", offered, "en") == "fr"
    assert i18n.negotiate(None, "es-ES,es;q=0.9", offered, "en") == "en"
    assert i18n.negotiate(None, None, ("fr",), "en") == "fr"


def test_accept_language_quality_values_are_honoured() -> None:
    assert i18n.parse_accept_language("en;q=0.2, nl-BE;q=0.8, fr;q=0, de") == ["de", "nl", "en"]
    assert i18n.parse_accept_language("en;q=bogus, ,nl") == ["nl"]


def test_languages_are_named_in_themselves_and_offered_only_if_the_catalogue_has_them() -> None:
    tr = i18n.translator("en")
    assert [tr.language_name(c) for c in i18n.SUPPORTED] == [
        "English",
        "Français",
        "Nederlands",
        "Deutsch",
    ]
    assert i18n.offered(["fr", "en", "es"]) == ("en", "fr")

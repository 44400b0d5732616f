"""Catalogue validation: a wrong file gives a clear error naming the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentry.catalogue_io import CatalogueError, load_catalogue, parse_catalogue
from support import MINI


def mini_with(old: str, new: str) -> str:
    text = MINI.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    pos = -1
    for _ in range(occurrence):
        pos = text.index(needle, pos + 1)
    return text.count("\n", 0, pos) + 1


def test_the_test_catalogue_loads() -> None:
    cat = load_catalogue(MINI)
    assert [p.id for p in cat.permissions][:3] == ["recs", "ads", "email"]


def test_unknown_purpose_names_the_permission_and_line() -> None:
    text = mini_with("    purpose: recommendations\n", "    purpose: recomendations\n")
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(text, "mini.yaml")
    message = str(err.value)
    assert "permissions[0] (recs): unknown purpose 'recomendations'" in message
    assert message.startswith("mini.yaml: invalid catalogue")


def test_wrong_field_value_names_its_line() -> None:
    text = mini_with("    legal_basis: contract\n", "    legal_basis: because\n")
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(text)
    expected_line = line_of(text, "legal_basis: because")
    assert err.value.problems[0].startswith(f"line {expected_line}: permissions.3.legal_basis")


def test_unknown_field_is_rejected_with_its_line() -> None:
    text = mini_with("    legal_basis: contract\n", "    legal_basis: contract\n    colour: red\n")
    with pytest.raises(CatalogueError) as err:
        parse_catalogue(text)
    assert err.value.problems[0].startswith(f"line {line_of(text, 'colour: red')}:")
    assert "colour" in err.value.problems[0]


def test_consent_cannot_default_to_granted_in_the_eea() -> None:
    for key in ("EEA", "BE", "GB", "*"):
        text = mini_with('defaults: {"*": denied}', f'defaults: {{"*": denied, "{key}": granted}}')
        if key == "*":
            text = mini_with('defaults: {"*": denied}', 'defaults: {"*": granted}')
        with pytest.raises(CatalogueError, match="silence is not consent"):
            parse_catalogue(text)


def test_consent_may_default_to_granted_in_an_opt_out_jurisdiction() -> None:
    cat = parse_catalogue(
        mini_with('defaults: {"*": denied}', 'defaults: {"*": denied, US-CA: granted}')
    )
    assert cat.permissions[0].defaults["US-CA"] == "granted"


def test_contract_permission_takes_no_defaults() -> None:
    text = mini_with(
        "    legal_basis: contract\n", '    legal_basis: contract\n    defaults: {"*": denied}\n'
    )
    with pytest.raises(CatalogueError, match="only consent permissions take defaults"):
        parse_catalogue(text)


def test_missing_translation_is_named() -> None:
    text = mini_with(
        "title: {en: Offers by e-mail, fr: Offres par e-mail}", "title: {en: Offers by e-mail}"
    )
    with pytest.raises(
        CatalogueError, match=r"email\)\.notice\.title: missing text for locale\(s\) fr"
    ):
        parse_catalogue(text)


def test_duplicate_permission_id_is_rejected() -> None:
    text = mini_with("  - id: email\n", "  - id: recs\n")
    with pytest.raises(CatalogueError, match="duplicate permission id"):
        parse_catalogue(text)


def test_broken_yaml_reports_its_line() -> None:
    with pytest.raises(CatalogueError, match=r"line 2: not valid YAML"):
        parse_catalogue("catalogue_version: x\n\tcontroller: 1\n")


def test_a_list_is_not_a_catalogue() -> None:
    with pytest.raises(CatalogueError, match="must be a YAML mapping"):
        parse_catalogue("- a\n- b\n")


def test_missing_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read the file"):
        load_catalogue(tmp_path / "nope.yaml")


def test_advertising_cannot_rest_on_legitimate_interest() -> None:
    text = mini_with(
        "    purpose: advertising\n    categories: [behaviour.browsing]\n"
        "    recipients: [shop, adnet]\n    legal_basis: consent\n",
        "    purpose: advertising\n    categories: [behaviour.browsing]\n"
        "    recipients: [shop, adnet]\n    legal_basis: legitimate_interest\n",
    ).replace(
        '    group: sharing\n    defaults: {"*": denied, EEA: denied}\n', "    group: sharing\n", 1
    )
    with pytest.raises(CatalogueError, match="purpose 'advertising' needs consent"):
        parse_catalogue(text)


def test_device_data_cannot_be_labelled_essential() -> None:
    text = mini_with(
        "    categories: [profile.contact, order.address]\n",
        "    categories: [profile.contact, order.address, device.location.precise]\n",
    )
    with pytest.raises(
        CatalogueError, match="device data 'device.location.precise' is read only with consent"
    ):
        parse_catalogue(text)


def test_a_withdrawal_cannot_fall_back_to_another_legal_basis() -> None:
    text = mini_with(
        "    purpose: fraud_prevention\n    categories: [behaviour.purchases]\n",
        "    purpose: recommendations\n    categories: [behaviour.purchases]\n",
    )
    with pytest.raises(CatalogueError, match="different legal bases"):
        parse_catalogue(text)


def test_an_earlier_notice_version_keeps_its_wording() -> None:
    recs = load_catalogue(MINI).permission("recs")
    assert recs is not None
    old = recs.notice.wording("1")
    current = recs.notice.wording("2")
    assert old is not None and old.text["en"] == "We use what you buy to suggest products."
    assert current is not None and current.title == recs.notice.title
    assert recs.notice.wording("0") is None


def test_a_notice_history_version_given_twice_is_rejected() -> None:
    text = mini_with('        - version: "1"\n', '        - version: "2"\n')
    with pytest.raises(CatalogueError, match=r"version '2' appears twice"):
        parse_catalogue(text)


def test_a_notice_history_entry_missing_a_translation_is_named() -> None:
    text = mini_with(
        "title: {en: Recommendations, fr: Recommandations}", "title: {en: Recommendations}"
    )
    with pytest.raises(
        CatalogueError, match=r"recs\)\.notice\.history\[1\]\.title: missing text for locale"
    ):
        parse_catalogue(text)

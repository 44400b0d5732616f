"""Words for the catalogue's codes in the page's language: recipient roles, OS permission
values, platforms, ledger sources and actions, legal bases."""

from __future__ import annotations

from consentry.domain.catalogue_entries import Permission
from consentry.domain.catalogue_vocabulary import LegalBasis, RecipientKind
from consentry.web.i18n import Translator


def kind_role(kind: RecipientKind, tr: Translator) -> str:
    return {
        RecipientKind.CONTROLLER: tr.gettext("Runs this shop and is responsible for your data"),
        RecipientKind.PROCESSOR: tr.gettext("Service provider working on our instructions"),
        RecipientKind.PARTNER: tr.gettext("Partner using your data for its own purposes"),
        RecipientKind.AD_NETWORK: tr.gettext("Advertising network"),
        RecipientKind.DATA_BUYER: tr.gettext("Buys personal data"),
    }[kind]


def device_value_text(value: str, tr: Translator) -> str:
    labels = {
        "precise": tr.gettext("Precise"),
        "approximate": tr.gettext("Approximate"),
        "granted": tr.gettext("Allowed"),
        "authorized": tr.gettext("Allowed"),
        "full": tr.gettext("Full access"),
        "limited": tr.gettext("Limited to the items you picked"),
        "denied": tr.gettext("Not allowed"),
        "restricted": tr.gettext("Blocked by device restrictions"),
        "ask": tr.gettext("Ask every time"),
        "not_determined": tr.gettext("Not asked yet"),
        "always": tr.gettext("Always"),
        "while_using": tr.gettext("Only while using the app"),
        "once": tr.gettext("Only this time"),
    }
    return labels.get(value, value)


def platform_text(platform: str, tr: Translator) -> str:
    return {
        "android": tr.gettext("Android app"),
        "ios": tr.gettext("iPhone or iPad app"),
        "web": tr.gettext("Web browser"),
    }.get(platform, platform)


def source_text(source: str, tr: Translator) -> str:
    return {
        "web": tr.gettext("Website"),
        "app": tr.gettext("App"),
        "gpc": tr.gettext("Global Privacy Control (GPC)"),
        "api": tr.gettext("Our services"),
        "system": tr.gettext("Automatic"),
    }.get(source, source)


def action_text(perm: Permission | None, state: str, tr: Translator, reason: object = None) -> str:
    objection = perm is not None and perm.legal_basis is LegalBasis.LEGITIMATE_INTEREST
    if reason == "auto_reset" and state == "denied":
        return tr.gettext("Switched off automatically: not used for a long time")
    if state == "granted":
        return tr.gettext("Objection withdrawn") if objection else tr.gettext("Switched on")
    return tr.gettext("Objected") if objection else tr.gettext("Switched off")


def basis_text(perm: Permission, tr: Translator) -> str:
    return {
        LegalBasis.CONSENT: tr.gettext(
            "Only with your consent. You can withdraw it at any time, with no effect on your "
            "orders."
        ),
        LegalBasis.LEGITIMATE_INTEREST: tr.gettext(
            "Based on our legitimate interest. You can object at any time by switching it off."
        ),
        LegalBasis.CONTRACT: tr.gettext(
            "Needed to deliver what you order: it is part of your contract with us, so it cannot "
            "be switched off."
        ),
        LegalBasis.LEGAL_OBLIGATION: tr.gettext("Required by law, so it cannot be switched off."),
    }[perm.legal_basis]

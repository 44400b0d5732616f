"""The banner's and the blocked-embed placeholder's wording, in the catalogue's languages."""

from __future__ import annotations

from collections.abc import Iterable

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your choices on this shop",
        "text": (
            "We and {partners} partners would like to use cookies and similar storage on your "
            "device to measure visits, personalise ads and share data for advertising. Nothing "
            "of this happens unless you accept. You can change your mind at any time."
        ),
        "refuse": "Refuse all",
        "accept": "Accept all",
        "choose": "Choose",
        "save": "Save my choices",
        "link": "All permissions and partners",
        "legend": "Choose what you allow",
        "blocked": "This content is blocked until you allow “{title}”.",
        "unblock": "Choose",
    },
    "fr": {
        "title": "Vos choix sur cette boutique",
        "text": (
            "Nous et nos {partners} partenaires souhaitons utiliser des cookies et des "
            "stockages similaires sur votre appareil pour mesurer les visites, personnaliser la "
            "publicité et partager des données à des fins publicitaires. Rien de cela n'a lieu "
            "sans votre accord. Vous pouvez changer d'avis à tout moment."
        ),
        "refuse": "Tout refuser",
        "accept": "Tout accepter",
        "choose": "Choisir",
        "save": "Enregistrer mes choix",
        "link": "Toutes les autorisations et tous les partenaires",
        "legend": "Choisissez ce que vous autorisez",
        "blocked": "Ce contenu est bloqué tant que vous n'autorisez pas « {title} ».",
        "unblock": "Choisir",
    },
    "nl": {
        "title": "Uw keuzes in deze winkel",
        "text": (
            "Wij en {partners} partners willen cookies en vergelijkbare opslag op uw apparaat "
            "gebruiken om bezoeken te meten, advertenties te personaliseren en gegevens te delen "
            "voor advertenties. Niets hiervan gebeurt zonder uw toestemming. U kunt uw keuze "
            "altijd wijzigen."
        ),
        "refuse": "Alles weigeren",
        "accept": "Alles accepteren",
        "choose": "Kiezen",
        "save": "Mijn keuzes opslaan",
        "link": "Alle toestemmingen en partners",
        "legend": "Kies wat u toestaat",
        "blocked": "Deze inhoud is geblokkeerd totdat u „{title}” toestaat.",
        "unblock": "Kiezen",
    },
    "de": {
        "title": "Ihre Auswahl in diesem Shop",
        "text": (
            "Wir und {partners} Partner möchten Cookies und ähnliche Speicher auf Ihrem Gerät "
            "nutzen, um Besuche zu messen, Werbung zu personalisieren und Daten für Werbung "
            "weiterzugeben. Nichts davon geschieht ohne Ihre Zustimmung. Sie können Ihre "
            "Auswahl jederzeit ändern."
        ),
        "refuse": "Alle ablehnen",
        "accept": "Alle akzeptieren",
        "choose": "Auswählen",
        "save": "Meine Auswahl speichern",
        "link": "Alle Berechtigungen und Partner",
        "legend": "Wählen Sie, was Sie erlauben",
        "blocked": "Dieser Inhalt ist blockiert, bis Sie „{title}“ erlauben.",
        "unblock": "Auswählen",
    },
}


def pick_locale(wanted: Iterable[str], offered: Iterable[str], default: str) -> str:
    """The first wanted language (``fr-BE`` counts as ``fr``) that both the catalogue and the
    banner offer, else the catalogue's default."""
    usable = [loc for loc in offered if loc in TEXTS]
    for item in wanted:
        base = item.strip().lower()[:2]
        if base in usable:
            return base
    return default if default in TEXTS else "en"


def texts(locale: str, partners: int) -> dict[str, str]:
    chosen = TEXTS.get(locale, TEXTS["en"])
    return {k: v.replace("{partners}", str(partners)) for k, v in chosen.items()}

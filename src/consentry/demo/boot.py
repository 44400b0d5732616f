"""The demo's wiring: ``bootstrap`` as everywhere, except that the demo catalogue's third parties
send their webhooks to the demo partners' receiver (``settings.demo_partners_url``, set by
``consentry demo``). The demo server (``consentry serve --demo``) is built with it."""

from __future__ import annotations

from consentry.bootstrap import Container, bootstrap
from consentry.catalogue_io import load_catalogue
from consentry.config import Settings
from consentry.demo.partners import partner_webhooks
from consentry.domain.catalogue import Catalogue


def demo_catalogue(settings: Settings) -> Catalogue:
    """The configured catalogue; with ``settings.demo`` and a partners' receiver, each third
    party gets a webhook there (operator configuration: subjects see the same catalogue)."""
    catalogue = load_catalogue(settings.catalogue)
    if settings.demo and settings.demo_partners_url:
        catalogue = catalogue.with_webhooks(partner_webhooks(catalogue, settings.demo_partners_url))
    return catalogue


def boot(settings: Settings | None = None, *, migrate: bool = True) -> Container:
    """``bootstrap`` with the demo's catalogue."""
    settings = settings or Settings()
    return bootstrap(settings, migrate=migrate, catalogue=demo_catalogue(settings))

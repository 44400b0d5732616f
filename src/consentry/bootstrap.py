"""The composition root: settings in, wired services out. Nothing connects at import time."""

from __future__ import annotations

from dataclasses import dataclass

from consentry.catalogue_io import load_catalogue
from consentry.config import Settings
from consentry.domain.catalogue import Catalogue
from consentry.domain.decisions import CatalogueIndex
from consentry.feed.server import ObservedDatabase, ServerReplica
from consentry.metrics import Metrics
from consentry.services.consents import ConsentService
from consentry.services.decisions import DecisionService
from consentry.services.devices import DeviceService
from consentry.services.keys import KeyService
from consentry.services.preferences import PreferenceService
from consentry.services.queries import SubjectQueries
from consentry.services.receipts import ReceiptService, receipt_service
from consentry.services.rights import RightsService
from consentry.services.sessions import SessionService
from consentry.services.tokens import TokenService
from consentry.services.uses import UsesService
from consentry.storage.database import Database
from consentry.storage.migrate import upgrade


@dataclass
class Container:
    settings: Settings
    db: Database
    catalogue: Catalogue
    index: CatalogueIndex
    consents: ConsentService
    queries: SubjectQueries
    decisions: DecisionService
    devices: DeviceService
    rights: RightsService
    uses: UsesService
    keys: KeyService
    tokens: TokenService
    metrics: Metrics
    replica: ServerReplica
    sessions: SessionService
    preferences: PreferenceService

    def receipts(self) -> ReceiptService:
        """The receipt service with the keys the settings name (cheap to build; raises
        ``receipt_signing.ReceiptKeyError`` when a configured key cannot be used)."""
        return receipt_service(self.catalogue, self.queries, self.settings)

    def close(self) -> None:
        self.replica.close()
        self.db.dispose()


def open_database(settings: Settings) -> ObservedDatabase:
    """The database of ``settings``: the one ``bootstrap`` wires, for commands that need only it.
    It tells its listeners (the decision replica) after each commit."""
    return ObservedDatabase(settings.database_url)


def bootstrap(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    catalogue: Catalogue | None = None,
) -> Container:
    """Wire the services. ``catalogue``: one already loaded (and perhaps adjusted, as the demo
    does), instead of loading ``settings.catalogue``."""
    settings = settings or Settings()
    if catalogue is None:
        catalogue = load_catalogue(settings.catalogue)
    index = CatalogueIndex(catalogue)
    # Tells the decision replica after each commit, so decisions read this process's writes.
    db = open_database(settings)
    if migrate:
        upgrade(db)
    consents = ConsentService(db, index)
    queries = SubjectQueries(db, index)
    decisions = DecisionService(index, queries)
    metrics = Metrics()
    uses = UsesService(db, consents, decisions)
    uses.on_violation = lambda row: metrics.violation(row.purpose)
    replica = ServerReplica(db, index)
    keys = KeyService(db)
    keys.on_revoke.append(replica.keys.clear)  # a revocation here takes effect at once
    return Container(
        settings=settings,
        db=db,
        catalogue=catalogue,
        index=index,
        consents=consents,
        queries=queries,
        decisions=decisions,
        devices=DeviceService(db, catalogue),
        rights=RightsService(db, index, consents, queries),
        uses=uses,
        keys=keys,
        tokens=TokenService(settings),
        metrics=metrics,
        replica=replica,
        sessions=SessionService(db),
        preferences=PreferenceService(db, catalogue.locales),
    )

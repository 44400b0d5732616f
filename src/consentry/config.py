"""Settings, from the environment (prefix ``CONSENTRY_``) or passed in by tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone (so not a leaked secret: bandit B105 accepted); accepted only with --demo.
DEMO_JWT_SECRET = "consentry-demo-secret-do-not-use-in-production"  # nosec B105
# When this server's Global Privacy Control support last changed: /.well-known/gpc.json lastUpdate.
GPC_SUPPORT_UPDATED = date(2026, 11, 29)


class InsecureSettings(ValueError):
    """Settings that must not run outside the demo."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore")

    database_url: str = "sqlite:///consentry.db"
    catalogue: Path | None = None
    # Subject tokens: HS256 with a shared secret, or ES256 with the platform's public key (PEM).
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None  # when set, tokens must carry this "iss"
    jwt_audience: str | None = None  # when set, tokens must carry this "aud"
    # The longest a subject token may live (its "exp" after its "iat", or after now without
    # one): a leaked long-lived token is refused rather than honoured for months.
    jwt_max_lifetime: int = Field(default=24 * 3600, ge=60)
    demo: bool = False
    # With ``demo``: the demo partners' receiver (``consentry demo`` starts it and sets this);
    # the catalogue's third parties then send their webhooks there (``demo/partners.py``).
    demo_partners_url: str | None = None
    max_batch: int = 1000
    # Consent receipts (Ed25519, compact JWS). The signing key: PEM text of an Ed25519 private
    # key, or the path of a PEM file. Unset outside --demo: receipts answer 503, nothing else
    # is affected. Retired keys (PEM blocks, public or private, or a file of them) stay in
    # /.well-known/consentry-keys.json so receipts signed before a rotation still verify.
    receipt_signing_key: SecretStr | None = None
    receipt_previous_keys: str | None = None
    gpc_last_update: date = GPC_SUPPORT_UPDATED
    # Propagation (docs/scaling.md). Without a NATS URL, followers use the HTTP change feed.
    nats_url: str | None = None
    nats_stream: str = "CONSENTRY_CHANGES"
    nats_subject_prefix: str = "consentry.changes"  # published to <prefix>.<shard>
    shards: int = Field(default=16, ge=1, le=4096)
    # The relay inside `consentry serve`: None = embedded on SQLite, off otherwise (run
    # `consentry relay` processes next to the API on PostgreSQL).
    relay: Literal["embedded", "off"] | None = None
    webhook_timeout: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff: float = Field(default=2.0, gt=0)  # first retry delay; doubles, with jitter
    # Deliveries in flight at once per relay: each waits on a third party's answer (up to
    # webhook_timeout), so this, not CPU, bounds the attempts per second.
    webhook_workers: int = Field(default=24, ge=1, le=256)
    # Token buckets (api/ratelimit.py), requests per second and burst; 0 turns a limit off.
    rate_limit_per_key: float = 1000.0
    rate_limit_key_burst: int = 2000
    rate_limit_per_subject: float = 50.0
    rate_limit_subject_burst: int = 200
    # The storefront runtime (/consentry.js, docs/storefront.md): the CMP id the site puts in
    # its TCF / GPP answers (default: the catalogue's tcf.cmp_id), whether GDPR applies to its
    # visitors, and how many new device subjects one address may start per minute.
    storefront_cmp_id: int | None = Field(default=None, ge=0, le=4095)
    storefront_gdpr_applies: bool = True
    storefront_new_devices_per_minute: float = Field(default=30.0, ge=0)
    hsts: bool = False  # send Strict-Transport-Security over plain http (TLS ends at a proxy)
    # Signed checkpoints of the ledger (docs/security.md): `consentry serve` signs one every
    # this many seconds, when the ledger changed since the last (0: only on demand, with
    # `consentry ledger checkpoint`). Needs the receipt signing key.
    checkpoint_interval: float = 3600.0

    @field_validator("checkpoint_interval")
    @classmethod
    def _interval_not_negative(cls, value: float) -> float:
        if value < 0 or value != value:  # NaN too
            raise ValueError(
                "CONSENTRY_CHECKPOINT_INTERVAL must be 0 (periodic checkpoints off) or a "
                "positive number of seconds"
            )
        return value

    def jwt_secret_value(self) -> str | None:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        return DEMO_JWT_SECRET if self.demo and not self.jwt_public_key else None

    def check_secure(self) -> None:
        """Refuse to run outside the demo with the demo secret, or a weak one, or none."""
        if self.demo:
            return
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is None and not self.jwt_public_key:
            raise InsecureSettings(
                "no subject-token key: set CONSENTRY_JWT_SECRET (32+ characters) or "
                "CONSENTRY_JWT_PUBLIC_KEY (ES256 PEM), or run with --demo"
            )
        if secret is not None and (secret == DEMO_JWT_SECRET or len(secret) < 32):
            raise InsecureSettings(
                "CONSENTRY_JWT_SECRET is the demo secret or shorter than 32 characters; "
                "refusing to start outside --demo"
            )

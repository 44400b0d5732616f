"""Settings, from the environment (prefix ``CONSENTRY_``) or passed in by tests."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone; accepted only with --demo.
DEMO_JWT_SECRET = "consentry-demo-secret-do-not-use-in-production"


class InsecureSettings(ValueError):
    """Settings that must not run outside the demo."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore")

    database_url: str = "sqlite:///consentry.db"
    catalogue: Path | None = None
    # Subject tokens: HS256 with a shared secret, or ES256 with the platform's public key (PEM).
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    demo: bool = False
    max_batch: int = 1000

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

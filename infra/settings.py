"""All configuration, read once from the environment (prefix ``CIVIC_``) or a
``.env`` file, validated strictly. Insecure defaults fail fast in production."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.orders import OrderDeadlines
from domain.points import ExpiryKind, ExpiryPolicy

WEAK_SECRETS = {"", "changeme", "secret", "dev", "test"}


def _ensure_loopback(server: str) -> None:
    """Only loopback addresses, ever: this platform's brokers and databases run here."""
    host = server.rsplit(":", 1)[0].strip("[]")
    if host not in ("localhost", "::1") and not host.startswith("127."):
        msg = f"{server!r} is not a loopback address"
        raise ValueError(msg)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CIVIC_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # event store
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_dsn: str | None = None
    postgres_schema: str = "public"
    aggregate_cache_size: int = 20_000

    # stream: embedded (None) or Kafka bootstrap servers on loopback
    kafka: str | None = None
    kafka_topic: str = "civic.events"
    kafka_partitions: int = 6
    run_projections: bool = True  # run the projection runners inside the API process

    # secrets: the keyed hash of identity-document numbers
    document_secret: SecretStr | None = None
    # the key of the signatures on chain checkpoints and service certificates
    audit_secret: SecretStr | None = None
    # the master key that wraps each volunteer's personal-data key (infra/vault.py)
    vault_master_key: SecretStr | None = None

    # points
    timezone: str = "Asia/Shanghai"
    expiry: ExpiryKind = ExpiryKind.NEVER
    expiry_days: int | None = None
    organizer_hours_factor: str = "4/5"  # points factor for hours entered by an organizer

    # service orders: how long each step may take before the order is overdue
    order_review_minutes: int = Field(default=24 * 60, ge=1)
    order_dispatch_minutes: int = Field(default=24 * 60, ge=1)
    order_accept_minutes: int = Field(default=24 * 60, ge=1)
    order_complete_minutes: int = Field(default=7 * 24 * 60, ge=1)

    # API behaviour
    read_wait_timeout: float = Field(default=5.0, ge=0, le=30)
    # how long a used Idempotency-Key is remembered (a retry within it replays the
    # first answer; later the key is free again); 0: for ever (infra/retention.py)
    idempotency_retention_days: int = Field(default=90, ge=0, le=36_500)
    idempotency_prune_interval: float = Field(default=3600.0, gt=0)
    # seconds a caught-up read model in the API process (`civic serve`) waits for more
    # commits before applying what came (projections/runner.py); readers waiting for a
    # position cut it short. `civic project` runs its read model without lingering.
    projection_linger: float = Field(default=0.05, ge=0, le=1)
    max_body_bytes: int = 1_048_576
    max_batch_items: int = 5_000
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    # failed authentications per client address in a sliding window, then 429
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment == Environment.PRODUCTION:
            secret = self.document_secret.get_secret_value() if self.document_secret else ""
            if secret.lower() in WEAK_SECRETS or len(secret) < 32:
                msg = "CIVIC_DOCUMENT_SECRET must be set to at least 32 random characters"
                raise ValueError(msg)
            audit = self.audit_secret.get_secret_value() if self.audit_secret else ""
            if audit.lower() in WEAK_SECRETS or len(audit) < 32 or audit == secret:
                msg = (
                    "CIVIC_AUDIT_SECRET must be set to at least 32 random characters, "
                    "different from CIVIC_DOCUMENT_SECRET"
                )
                raise ValueError(msg)
            master = self.vault_master_key.get_secret_value() if self.vault_master_key else ""
            if master.lower() in WEAK_SECRETS or len(master) < 32 or master == secret:
                msg = (
                    "CIVIC_VAULT_MASTER_KEY must be set to at least 32 random characters "
                    "(not the document secret)"
                )
                raise ValueError(msg)
        if self.event_store == "postgres" and not self.postgres_dsn:
            msg = "CIVIC_POSTGRES_DSN is required when CIVIC_EVENT_STORE=postgres"
            raise ValueError(msg)
        if self.postgres_dsn:
            _ensure_loopback(self.postgres_dsn.rsplit("@", 1)[-1].split("/")[0])
        if self.kafka:
            for server in self.kafka.split(","):
                _ensure_loopback(server)
        return self

    @cached_property
    def expiry_policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(kind=self.expiry, days=self.expiry_days, timezone=self.timezone)

    @cached_property
    def order_deadlines(self) -> OrderDeadlines:
        return OrderDeadlines(
            review=self.order_review_minutes,
            dispatch=self.order_dispatch_minutes,
            accept=self.order_accept_minutes,
            complete=self.order_complete_minutes,
        )

    def _secret_bytes(self, configured: SecretStr | None, file_name: str) -> bytes:
        """A configured secret, or one generated once and kept in the data dir
        (development convenience; production refuses to start without one)."""
        if configured is not None:
            return configured.get_secret_value().encode()
        path = self.data_dir / file_name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    def document_secret_bytes(self) -> bytes:
        """The key of the identity-number hash."""
        return self._secret_bytes(self.document_secret, "document-secret")

    def audit_secret_bytes(self) -> bytes:
        """The key signing chain checkpoints and service certificates."""
        return self._secret_bytes(self.audit_secret, "audit-secret")

    def vault_master_key_bytes(self) -> bytes:
        """The master key wrapping each volunteer's personal-data key."""
        return self._secret_bytes(self.vault_master_key, "vault-master-key")

    @property
    def vault_db(self) -> Path:
        return self.data_dir / "vault.sqlite"

    @property
    def events_db(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def views_dir(self) -> Path:
        return self.data_dir / "views"

    @property
    def keys_db(self) -> Path:
        return self.data_dir / "keys.sqlite"

"""The one settings object, read from ``NPSLOOP_*`` environment variables.

Start-up calls :func:`load_settings`; a wrong value raises :class:`ConfigError` whose
message names the environment variable and the reason, so a typo never becomes a
half-working process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NPSLOOP_"


class ConfigError(Exception):
    """Invalid configuration; the message is meant for the person starting npsloop."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Field(Path(".npsloop"), description="Where the embedded SQLite database and trained models live.")
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite under data_dir.")
    database_statement_timeout_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="PostgreSQL: a statement running or waiting longer is cancelled, and a server "
        "silent for this long is given up on (the request gets 503); 0 disables.",
    )
    kafka_bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; Kafka is the event transport when set."
    )
    kafka_topic_prefix: str = Field(
        "npsloop",
        min_length=1,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka topics are PREFIX.responses etc.; consumer groups PREFIX.CONSUMER.",
    )
    kafka_topic_responses: str | None = Field(None, description="Overrides PREFIX.responses.")
    kafka_topic_classifications: str | None = Field(None, description="Overrides PREFIX.classifications.")
    kafka_topic_followups: str | None = Field(None, description="Overrides PREFIX.followups.")
    kafka_connect_timeout_seconds: float = Field(
        15.0, gt=0, le=600, description="Start-up gives up on an unreachable broker after this."
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, le=300_000, description="How soon a killed consumer's partitions move."
    )
    kafka_request_timeout_ms: int = Field(
        30_000,
        ge=500,
        le=300_000,
        description="How long the relay waits for a broker's ack before it gives the "
        "batch up, reconnects and re-sends it from the outbox.",
    )
    policy_file: Path | None = Field(None, description="YAML policy: SLA rules, routing, channels, throttles, themes.")
    public_url: str = Field("http://127.0.0.1:8000", description="Base URL used in links inside alerts.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Request bodies above this get 413.")
    request_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request's headers must arrive within this; else 408 and the connection closes.",
    )
    request_body_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="A request's body must arrive within this after its headers; else 408."
    )
    allow_private_webhook_urls: bool = Field(False, description="Allow webhook targets on loopback/private networks.")
    handler_max_attempts: int = Field(5, ge=1, le=100, description="Attempts before an event is dead-lettered.")
    handler_retry_base_seconds: float = Field(0.2, ge=0, le=60)
    poll_interval_seconds: float = Field(
        0.2, gt=0, le=60, description="How often consumers and monitors look for work."
    )
    delivery_timeout_seconds: float = Field(10.0, gt=0, le=120)
    delivery_process: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "`npsloop up` sends deliveries from a second process (auto: on PostgreSQL, when the machine has"
            " two cores or more; on SQLite one process, whose writers share the single write slot)."
        ),
    )
    delivery_concurrency: int = Field(
        128, ge=1, le=4096, description="Webhook subscription sends in flight at once, per delivery worker."
    )
    delivery_channel_concurrency: int = Field(
        96, ge=1, le=1024, description="Policy channel sends (Slack, email, webhook alerts) in flight at once, apart."
    )
    delivery_concurrency_per_destination: int = Field(
        16,
        ge=1,
        le=1024,
        description="Sends in flight to one destination to begin with (one that answers quickly earns up to 4x): "
        "a receiver that hangs holds no more.",
    )
    delivery_max_age_hours: float = Field(
        26.0, gt=0, description="Deliveries are retried this long, then dead-lettered."
    )
    sla_check_interval_seconds: float = Field(1.0, gt=0, le=3600)
    classifier_reload_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often each role looks for a newly trained classifier version."
    )
    classifier_retrain_after_corrections: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="The classifier role trains a new version from the stored corrections once this many "
        "were made since the newest version; 0 = off (train with `npsloop classifier train`).",
    )
    smtp_host: str | None = Field(
        None, description="SMTP server for email channels; email alerts fail visibly without it."
    )
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = Field("npsloop@localhost", description="From address of alert emails.")
    smtp_security: Literal["starttls", "tls", "none"] = Field("starttls", description="starttls upgrades when offered.")
    clock_offset_seconds: float = Field(0.0, description="Shifts the clock (demos and tests of SLAs); 0 in production.")
    comment_retention_days: int | None = Field(
        None, ge=1, description="Survey comments older than this are purged; unset keeps them."
    )
    event_log_retention_days: int = Field(
        7,
        ge=1,
        le=3650,
        description="Event-log rows every reader is done with (published to Kafka, "
        "or read by every consumer) are deleted after this.",
    )
    gc_tuning: bool = Field(
        True,
        description="Servers freeze their start-up heap and collect young objects less "
        "often (shared/gc_tuning.py); false keeps CPython's defaults.",
    )
    retention_check_interval_seconds: float = Field(
        3600.0, gt=0, le=86_400, description="How often the retention role purges."
    )
    rate_limit_per_second: float = Field(1000.0, gt=0, description="Sustained requests per second allowed per API key.")
    rate_limit_burst: int = Field(
        2000, ge=1, description="Requests an API key may send at once above the sustained rate."
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite://"):
            value = "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not (value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://"))):
            raise ValueError("must be a postgresql:// or sqlite:// URL")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str | None) -> str | None:
        if not value:
            return None
        for part in value.split(","):
            host, _, port = part.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{part.strip()!r} is not host:port")
        return value

    def kafka_topic(self, logical_topic: str) -> str:
        """The Kafka topic that carries a logical topic ("responses", ...); DLQ is this + ".dlq"."""
        override = getattr(self, f"kafka_topic_{logical_topic}", None)
        return override or f"{self.kafka_topic_prefix}.{logical_topic}"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'npsloop.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def sends_deliveries_from_second_process(self) -> bool:
        """``npsloop up`` runs the deliveries role in a process of its own (services/delivery_process.py)."""
        if self.delivery_process != "auto":
            return self.delivery_process == "on"
        # On SQLite a second process's writes wait for the one write lock without a place in
        # the queue the first process keeps for its own writers (ingest first, consumers in
        # shared turns): its deliveries lagged the turns of the first process by seconds.
        return usable_cores() >= 2 and not self.is_sqlite


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one, e.g. Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise ConfigError naming the variable on any mistake."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None

"""Every setting of every service, read from the environment.

This module is the one place settings are declared; `docs/configuration.md` documents them and a
test keeps the two in step. Settings are read when a service or command starts (never at import
time) and fail fast on bad values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by all services. Environment variable = field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "localhost:9092", description="Comma-separated Kafka brokers (host:port)."
    )
    kafka_client_id: str = Field("touchpoint", description="Client id sent to the brokers.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: str | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for TLS to the brokers.")
    topic_touchpoints: str = Field("touchpoints.v1", description="Touchpoint event topic.")
    topic_dead_letter: str = Field("touchpoints.dlq.v1", description="Dead-letter topic.")
    topic_decisions: str = Field("decisions.v1", description="Recommendation decision log.")
    topic_partitions: int = Field(
        12, ge=1, le=1000, description="Partitions per topic when topics are created."
    )
    kafka_acks: Literal["all", "1", "0"] = Field("all", description="Producer acks.")
    kafka_enable_idempotence: bool = Field(True, description="Idempotent producer.")
    kafka_linger_ms: int = Field(5, ge=0, le=1000, description="Producer linger (batching).")
    kafka_compression: Literal["none", "gzip", "lz4", "snappy", "zstd"] = Field(
        "lz4", description="Producer compression codec."
    )
    kafka_retries: int = Field(5, ge=0, description="Producer retries per record.")
    kafka_request_timeout_ms: int = Field(5000, ge=100, description="Broker request timeout.")
    kafka_send_timeout_s: float = Field(
        5.0, gt=0, description="How long a request waits for broker acknowledgement before 503."
    )
    kafka_consumer_group: str = Field("touchpoint-profiles", description="Profile consumer group.")

    # --- Redis -------------------------------------------------------------------------
    redis_url: str = Field("redis://localhost:6379/0", description="Redis connection URL.")
    redis_namespace: str = Field("tp", description="Prefix of every Redis key.")

    # --- Catalogs ----------------------------------------------------------------------
    touchpoint_catalog_file: Path | None = Field(
        None, description="JSON file with extra or overriding touchpoints."
    )
    action_catalog_file: Path | None = Field(
        None, description="JSON file with extra or overriding actions."
    )

    # --- Ingestion limits --------------------------------------------------------------
    max_batch_events: int = Field(1000, ge=1, le=10000, description="Events per request.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Request body limit in bytes.")
    max_future_skew_s: int = Field(
        300, ge=0, description="How far in the future occurred_at may be (seconds)."
    )

    # --- Services ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface the HTTP services bind to.")
    ingestion_port: int = Field(8001, description="Ingestion service port.")
    profile_port: int = Field(8002, description="Profile service port.")
    recommender_port: int = Field(8003, description="Recommender service port.")
    data_dir: Path = Field(Path(".data"), description="Local state for `touchpoint run`.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["json", "text"] = Field("text", description="Log line format.")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server!r}")
        return value

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides (used by tests and CLIs)."""
    return Settings(**overrides)  # type: ignore[arg-type]

"""Every setting of every service, read from the environment.

This module is the one place settings are declared; `docs/configuration.md` documents them and a
test keeps the two in step. Settings are read when a service or command starts (never at import
time) and fail fast on bad values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    kafka_client: Literal["kafka-python", "confluent"] = Field(
        "kafka-python", description="Producer library of the ingestion service and imports; "
        "confluent (librdkafka) sends about five times cheaper per event."
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
    kafka_consumer_commit_interval_ms: int = Field(
        250, ge=0, le=60_000, description="How often at most the profile and analytics "
        "consumers commit offsets while records keep coming (they commit at once when idle and "
        "before leaving the group). A crash re-reads at most this much, counted once by the "
        "dedupe; 0 commits after every batch."
    )
    profile_consumer_batch_size: int = Field(
        500, ge=1, le=50_000, description="Records the profile consumer applies per batch."
    )
    profile_consumer_processes: int = Field(
        1, ge=0, le=64, description="Processes the profile service runs for each of its two "
        "consumer groups (profile state, analytics) beside its API process, restarted when they "
        "exit; 0 runs both consumers as threads inside the API process."
    )
    analytics_consumer_nice: int = Field(
        10, ge=0, le=19, description="CPU niceness of the analytics consumer processes: when "
        "the CPU is contended, API requests and the profile consumer go first, and the "
        "aggregates catch up when it is not (0 = same priority). Consumer processes only."
    )
    profile_consumer_fetch_wait_ms: int = Field(
        50, ge=1, le=10_000, description="Longest the broker may hold the profile consumer's "
        "fetch while it has no new records: bounds how long an event waits to be read."
    )
    profile_max_consecutive_dead_letters: int = Field(
        100, ge=1, description="Undecodable records in a row that stop the profile consumer."
    )
    profile_timeline_length: int = Field(
        100, ge=1, le=1000, description="Latest touchpoints kept in each profile's timeline."
    )
    profile_dedupe_window: int = Field(
        512, ge=16, le=100_000, description="Latest event ids remembered per profile (dedupe)."
    )

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

    # --- Rate limits -------------------------------------------------------------------
    rate_limit_enabled: bool = Field(
        True, description="Limit requests per API key (token bucket in Redis; 429 when empty)."
    )
    rate_limit_per_s: float = Field(
        1000.0, gt=0, le=1_000_000, description="Requests per second each API key may sustain."
    )
    rate_limit_burst: int = Field(
        2000, ge=1, le=10_000_000, description="Requests an API key may send at once (bucket size)."
    )
    rate_limit_redis_timeout_s: float = Field(
        0.25, gt=0, le=10, description="Redis timeout of one limiter call; slower = let through."
    )
    rate_limit_redis_backoff_s: float = Field(
        5.0, ge=0, le=300, description="How long the limiter lets requests through after a "
        "Redis failure before asking Redis again.",
    )

    # --- API keys ----------------------------------------------------------------------
    api_keys_file: Path | None = Field(
        None, description="JSON key store (hashed keys with scopes); re-read when it changes."
    )
    api_key_pepper: SecretStr | None = Field(
        None, description="Server-side secret mixed into every key hash (HMAC-SHA256 key)."
    )
    auth_disabled: bool = Field(
        False, description="Development only: serve every API without keys (logged loudly)."
    )

    # --- Inbound webhooks ----------------------------------------------------------------
    webhook_public_base_url: str | None = Field(
        None, description="Public base URL the providers call (e.g. https://tp.example.com), "
        "used where a signature covers the URL (HubSpot, Mandrill) behind a proxy.",
    )
    webhook_timestamp_tolerance_s: int = Field(
        300, ge=30, le=3600, description="Oldest signed webhook timestamp accepted (seconds)."
    )
    webhook_zalo_max_age_s: int = Field(
        86400, ge=60, description="Oldest Zalo OA event accepted; Zalo retries for 12 hours."
    )
    webhook_default_country_code: str = Field(
        "84", pattern=r"^[1-9][0-9]{0,2}$",
        description="Country calling code for local phone numbers (0xxx) in webhooks.",
    )
    webhook_hubspot_client_secret: SecretStr | None = Field(
        None, description="HubSpot app client secret (X-HubSpot-Signature-v3)."
    )
    webhook_sendgrid_public_key: SecretStr | None = Field(
        None, description="SendGrid signed Event Webhook verification key (base64 or PEM)."
    )
    webhook_mandrill_key: SecretStr | None = Field(
        None, description="Mandrill webhook key (X-Mandrill-Signature)."
    )
    webhook_mailchimp_token: SecretStr | None = Field(
        None, description="Secret `token` query parameter of the Mailchimp audience webhook URL."
    )
    webhook_meta_app_secret: SecretStr | None = Field(
        None, description="Meta app secret (X-Hub-Signature-256) for Messenger and Instagram."
    )
    webhook_meta_verify_token: SecretStr | None = Field(
        None, description="Verify token answered in Meta's hub.challenge handshake."
    )
    webhook_zalo_app_id: str | None = Field(None, description="Zalo app id (X-ZEvent-Signature).")
    webhook_zalo_oa_secret_key: SecretStr | None = Field(
        None, description="Zalo Official Account secret key (not the app secret)."
    )
    webhook_shopify_secret: SecretStr | None = Field(
        None, description="Shopify webhook signing secret (X-Shopify-Hmac-Sha256)."
    )
    webhook_haravan_secret: SecretStr | None = Field(
        None, description="Haravan webhook authentication secret (X-Haravan-Hmacsha256)."
    )
    webhook_mapping_file: Path | None = Field(
        None, description="JSON mapping file declaring generic webhook providers."
    )
    webhook_generic_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Secrets of the generic providers by name, as JSON: {"mautic": "..."}.',
    )

    # --- Outbound webhooks ---------------------------------------------------------------
    outbound_max_attempts: int = Field(
        10, ge=1, le=50, description="Delivery attempts before a message is marked dead."
    )
    outbound_backoff_base_s: float = Field(
        30.0, gt=0, description="First retry delay; doubles per attempt, jittered to 50-100%."
    )
    outbound_backoff_max_s: float = Field(
        3600.0, gt=0, description="Longest delay between two delivery attempts."
    )
    outbound_timeout_s: float = Field(10.0, gt=0, description="Timeout of one delivery request.")
    outbound_enabled: bool = Field(
        False, description="Deliver signed webhooks to subscribers from the recommender process "
        "(`make run`, compose and Kubernetes switch it on)."
    )
    outbound_consumer_group: str = Field(
        "touchpoint-outbound", description="Consumer group reading decisions for subscribers."
    )

    # --- Analytics ---------------------------------------------------------------------
    analytics_consumer_group: str = Field(
        "touchpoint-analytics", description="Consumer group keeping the analytics aggregates."
    )
    analytics_conversion_window_days: int = Field(
        7, ge=1, le=90, description="A purchase within this many days after a touch converts it."
    )
    analytics_inactivity_days: int = Field(
        30, ge=1, le=365, description="Days without events after which a non-buyer dropped out."
    )
    analytics_customer_ttl_days: int = Field(
        180, ge=7, le=3650, description="How long per-customer analytics state is kept idle."
    )
    attribution_half_life_days: float = Field(
        7.0, gt=0, le=365, description="Half-life of the time-decay attribution model (days)."
    )
    touchpoint_costs_file: Path | None = Field(
        None, description='JSON cost per event by touchpoint or channel, e.g. {"email.send": 300}.'
    )

    # --- Recommender serving -------------------------------------------------------------
    recommender_profile_timeout_ms: int = Field(
        50, ge=1, le=5000, description="Longest wait for a profile read; slower = degraded answer."
    )
    recommender_holdout_share: float = Field(
        0.05, ge=0, le=0.5, description="Share of customers in the no-contact control group."
    )
    recommender_holdout_salt: str = Field(
        "touchpoint-holdout", min_length=1,
        description="Salt of the holdout hash; changing it reshuffles the control group.",
    )
    recommender_exploration: Literal["epsilon_greedy", "softmax", "greedy"] = Field(
        "epsilon_greedy", description="Exploration of the trained model's choices."
    )
    recommender_epsilon: float = Field(
        0.1, ge=0, le=1, description="Epsilon of epsilon-greedy exploration."
    )
    recommender_temperature: float = Field(
        0.05, gt=0, description="Softmax temperature, as a share of the largest candidate value."
    )
    recommender_prior_exploration: float = Field(
        0.1, ge=0, le=1, description="Uniform exploration mixed into the cold-start prior policy."
    )
    recommender_action_levers: dict[str, float] = Field(
        default_factory=dict,
        description='Business weight per action multiplying its expected value, as JSON: '
        '{"loyalty_reward": 1.5}.',
    )
    model_registry_dir: Path = Field(
        Path(".data/models"), description="Model registry: versions, checksums, promoted pointer."
    )
    recommender_model_poll_s: float = Field(
        5.0, gt=0, le=3600, description="How often the recommender checks the promoted model."
    )
    recommender_attribution_days: float = Field(
        7.0, gt=0, le=90, description="Outcomes (and purchases) this long after a decision count."
    )

    # --- Services ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface the HTTP services bind to.")
    ingestion_port: int = Field(8001, description="Ingestion service port.")
    ingestion_workers: int = Field(
        2, ge=1, le=64,
        description="Ingestion worker processes on the one port (metrics are summed over them).",
    )
    profile_port: int = Field(8002, description="Profile service port.")
    recommender_port: int = Field(8003, description="Recommender service port.")
    recommender_workers: int = Field(
        2, ge=1, le=64,
        description="Recommender worker processes on the one port (metrics are summed over them).",
    )
    data_dir: Path = Field(Path(".data"), description="Local state for `touchpoint run`.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["json", "text"] = Field("text", description="Log line format.")
    log_hash_customer_ids: bool = Field(
        True, description="Replace customer and anonymous ids in log lines by a keyed hash."
    )
    log_hash_salt: SecretStr | None = Field(
        None, description="Key of the log id hash; unset = random per process (hashes then "
        "only correlate within one process run).",
    )
    tracing_enabled: bool = Field(
        False, description="Send OpenTelemetry traces to OTEL_EXPORTER_OTLP_ENDPOINT."
    )

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

    @property
    def consumer_commit_interval_s(self) -> float:
        return self.kafka_consumer_commit_interval_ms / 1000


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides (used by tests and CLIs)."""
    return Settings(**overrides)  # type: ignore[arg-type]

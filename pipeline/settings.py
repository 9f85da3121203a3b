"""One frozen settings object for every process: STREAMDESK_* variables and .env."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["auto", "json", "console"]

BROKER_FILE = "broker.json"  # written by `streamdesk up`/`broker` so other commands find the embedded broker


class Settings(BaseSettings):
    """Everything a process needs to know; unset secrets come from the data directory."""

    model_config = SettingsConfigDict(env_prefix="STREAMDESK_", env_file=".env", frozen=True, extra="ignore")

    kafka_bootstrap: str | None = None
    data_dir: Path = Path("./data")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    jwt_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    freshdesk_base_url: str | None = None
    freshdesk_per_page: int = Field(default=100, ge=1, le=100)  # the maximum; tests lower it to cross the cap
    # A failed Freshdesk call is retried after a random wait of up to this x 2^attempt seconds (capped at 30 s).
    freshdesk_backoff_s: float = Field(default=0.5, gt=0, le=30)
    # The keys the Freshdesk simulator accepts, by domain or "*" (JSON): the seed's placeholder by default.
    simulator_keys: dict[str, list[str]] = Field(default_factory=lambda: {"*": ["your_api_key"]})
    llm_url: str | None = None  # OpenAI-compatible base URL (…/v1) that voices the debate's experts; unset: rules only
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=5.0, gt=0)
    embeddings_url: str | None = None
    models_dir: Path | None = None  # where the local embedding model is built once; default <data_dir>/models

    topic_prefix: str = ""  # tests and benchmarks isolate themselves with a unique prefix
    partitions: int = Field(default=4, ge=1, le=256)
    consumer_group_prefix: str = "streamdesk"
    # Tansu joins a group after half the session timeout; Faust's default (60 s) makes start-up crawl.
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    worker_heartbeat_s: float = 2.0
    worker_stale_after_s: float = 10.0
    worker_alive_file: Path | None = None  # touched on each heartbeat the broker acknowledged (a healthcheck)
    # Topics as `streamdesk up`/`init-topics` create them: replicas, min.insync.replicas and retention (days; -1
    # for ever; unset: the broker's default, 7 days on Kafka). `rebuild` can restore only what the topics hold.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    topic_retention_days: float | None = None

    trusted_proxies: list[str] = Field(default_factory=list)  # CIDRs whose X-Forwarded-For/X-Tenant-ID we believe
    # Browser origins allowed to call the api (JSON list, e.g. ["https://app.example.com"]); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    # OTLP spans (POST /v1/traces): the attributes that name a call's tenant, user, agent and source, in order.
    otlp_tenant_attributes: tuple[str, ...] = ("tenant.id",)
    otlp_user_attributes: tuple[str, ...] = ("user.id", "enduser.id")
    otlp_agent_attributes: tuple[str, ...] = ("gen_ai.agent.id",)
    otlp_source_attributes: tuple[str, ...] = ()
    # The largest message an entry topic accepts: the decoder, the entry topics' config, and the api's request
    # body limit all use it; the api splits a batch into messages of at most this size.
    max_message_bytes: int = Field(default=1 << 20, ge=64 << 10, le=64 << 20)
    # A route that publishes answers within this, whatever the broker does (a dead broker is a 503, not a hang).
    publish_timeout_s: float = Field(default=1.5, gt=0, le=60)
    # Call ids a producer supplies are checked against the ones stored in this window (per tenant); a resend
    # later than this is stored again. Replays of the pipeline itself are dropped exactly, whatever their age.
    calls_dedupe_window_s: float = Field(default=24 * 3600, ge=60)
    # A request or response body at or over this is "large" in the call stats and the console (seed 003's
    # 대용량 요청 감지); 1 MiB is nginx's default client_max_body_size.
    large_body_bytes: int = Field(default=1 << 20, ge=1)
    # DuckDB's memory in the api (and the CLI's own opens): it caches the blocks it has read or written up to this,
    # by default 80 % of the machine. Past it, a large query spills to <data_dir>/streamdesk.duckdb.tmp and
    # runs slower instead of failing (10M seed-shaped calls, 1024: api at 608 against 989 MB after /stats).
    duckdb_memory_limit_mb: int | None = Field(default=None, ge=128)
    # Recurring ingest schedules (api/ingest/schedules.py): how often the api looks for due ones; 0 turns it off.
    ingest_schedule_interval_s: float = Field(default=30.0, ge=0, le=3600)
    # The console (/console): how long a sign-in lasts (never past its token) and how often live parts update.
    console_session_s: float = Field(default=8 * 3600, ge=60, le=7 * 86400)
    console_live_interval_s: float = Field(default=2.0, ge=0.2, le=60)
    # Seed 000's alerts (api/alerts.py): how often they are evaluated, over what window, and their thresholds.
    alert_interval_s: float = Field(default=10.0, gt=0, le=3600)
    alert_window_s: float = Field(default=3600.0, gt=0)
    alert_job_failure_percent: float = Field(default=5.0, ge=0, le=100)
    alert_rate_limit_percent: float = Field(default=80.0, ge=0, le=100)
    alert_queue_wait_s: float = Field(default=1800.0, ge=0)
    alert_memory_percent: float = Field(default=80.0, ge=0, le=100)
    # Retention (api/retention.py): rows older than this many days are deleted; 0 keeps them for ever.
    retention_calls_days: float = Field(default=90.0, ge=0)
    retention_dead_letters_days: float = Field(default=30.0, ge=0)
    retention_job_logs_days: float = Field(default=30.0, ge=0)
    retention_interval_s: float = Field(default=3600.0, ge=0)  # 0: no sweeps
    # Parquet export (pipeline/storage/parquet_export.py): where, and how often the api runs it (0: on request).
    parquet_dir: Path | None = None  # default <data_dir>/parquet
    parquet_export_interval_s: float = Field(default=0.0, ge=0)
    recorder_buffer_max: int = 50_000  # facade call events held while the broker is unreachable
    recorder_flush_s: float = 0.05

    # Seed 004 schedules: trigger a prediction this long before the bedtime goal (the seed: 23:00 -> 22:00).
    schedule_lead_s: float = Field(default=3600.0, ge=0)
    schedule_retry_s: float = Field(default=300.0, gt=0)
    schedule_max_retries: int = Field(default=3, ge=0, le=10)
    scheduler_tick_s: float = Field(default=1.0, gt=0)

    # A running job reports at least every 0.5 s; silent this long, its worker is taken for dead and the job is
    # re-issued from its cursor (a group rebalance takes ~ the session timeout, 6 s).
    ingest_stale_after_s: float = Field(default=15.0, gt=0)
    search_sync_s: float = Field(default=1.0, gt=0)  # how often the api indexes the vectors the worker stored
    search_sync_wait_s: float = Field(default=120.0, gt=0)  # sync-summaries answers "in_progress" past this

    sql_max_rows: int = 10_000
    sql_timeout_s: float = 30.0

    log_level: str = "INFO"
    log_format: LogFormat = "auto"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "streamdesk.duckdb"

    @property
    def parquet_path(self) -> Path:
        return self.parquet_dir or self.data_dir / "parquet"

    @property
    def max_transport_bytes(self) -> int:
        """What producers, consumers and the broker allow per message: internal topics carry more than an entry."""
        return 4 * self.max_message_bytes

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.consumer_group_prefix}.{self.topic_prefix}{name}"

    def bootstrap(self) -> str:
        """The configured broker, else the embedded one that `streamdesk up` recorded."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        info = read_broker_file(self.data_dir)
        if info is None:
            raise BrokerNotConfigured(
                "no broker: set STREAMDESK_KAFKA_BOOTSTRAP or start one with `streamdesk up`/`streamdesk broker`"
            )
        return info["bootstrap"]

    def jwt_key(self) -> str:
        return _secret(self.jwt_secret, self.data_dir, "jwt_secret", lambda: secrets.token_urlsafe(48))

    def fernet_key(self) -> str:
        """A Fernet key (32 random bytes, urlsafe base64)."""
        return _secret(self.secret_key, self.data_dir, "secret_key",
                       lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())


class BrokerNotConfigured(RuntimeError):
    """No STREAMDESK_KAFKA_BOOTSTRAP and no embedded broker running."""


def read_broker_file(data_dir: Path) -> dict | None:
    path = data_dir / BROKER_FILE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info


_SECRETS: dict[Path, str] = {}  # a generated secret, once read: every authenticated request needs one
_SECRETS_LOCK = threading.Lock()


def _secret(given: SecretStr | None, data_dir: Path, name: str, generate: Callable[[], str]) -> str:
    """A configured secret, else one generated once into data/ (mode 0600) and shared by every process.

    Written to a private temp file and hard-linked into place: the link is atomic and fails if another
    process won the race, so nobody ever reads a half-written (or empty) secret. A process reads the file
    once; a secret replaced on disk takes effect when each process restarts.
    """
    if given is not None:
        return given.get_secret_value()
    path = (data_dir / name).absolute()
    with _SECRETS_LOCK:
        if (known := _SECRETS.get(path)) is None:
            known = _SECRETS[path] = _read_or_generate(path, generate)
        return known


def _read_or_generate(path: Path, generate: Callable[[], str]) -> str:
    data_dir, name = path.parent, path.name
    private_dir(data_dir)
    if not path.exists():
        tmp = data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it owner-only (0700): it holds secrets and the database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # not ours (a mounted volume's root): its owner decides
        os.chmod(path, 0o700)
    return path


@lru_cache
def get_settings() -> Settings:
    return Settings()

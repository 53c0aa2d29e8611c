"""Lab settings, read from ``TOCTOU_*`` environment variables only where the app is built."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """How one lab process runs: which database (and Redis), how wide the race window, who may
    reset."""

    model_config = SettingsConfigDict(env_prefix="TOCTOU_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="sqlite:///path, postgresql://... or mysql://.../mariadb://...; "
        "default: a SQLite file in data_dir",
    )
    data_dir: Path = Field(default=Path("data"), description="where the default SQLite file lives")
    race_window_ms: float = Field(
        default=0.0, ge=0, le=1000, description="delay between check and commit, every strategy"
    )
    admin_token: str | None = Field(
        default=None, description="bearer token for lab control routes; None leaves them open"
    )
    # A fixed pool, opened at start-up: overflow connections are closed on return and reopened
    # under the next burst, which stalled the event loop for tens of milliseconds each time.
    # 10 rather than 20: with 20 requests admitted at once, single /health probes during a
    # 200-request burst reached 33 ms (SQLite) and 38 ms (PostgreSQL), against at most 22 ms
    # with 10 (BENCHMARKS.md, benchmarks/responsive.py).
    pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="connections per pool and worker; also how many database requests one "
        "worker runs at once (the rest queue in arrival order, see toctou.lab.admission)",
    )
    max_overflow: int = Field(default=0, ge=0, le=200)
    queue_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="how long a request may queue for a database slot before a 503",
    )
    retry_attempts: int = Field(
        default=30, ge=1, le=1000, description="attempts before a retrying strategy gives up"
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 (or rediss://, unix://) for the redis-lock strategies; "
        "unset, they answer 503 redis_unavailable",
    )
    redis_lock_wait_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="how long a redis-lock strategy waits for its lock before a 409 contention",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_parses(cls, value: str | None) -> str | None:
        if value:
            from redis.asyncio.connection import parse_url

            parse_url(value)  # ValueError: a scheme it does not know, a port that is no number
        return value or None

    @property
    def admission_limit(self) -> int:
        """Database requests one worker runs at once; the rest wait in arrival order."""
        return self.pool_size + self.max_overflow

    def resolved_database_url(self) -> str:
        """The configured URL, or the default SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'toctou.db').resolve()}"

"""A lock every worker shares, on one Redis: ``SET key token NX PX ttl``, released by a Lua
compare-and-delete (databases.md B.7).

The ``redis-lock`` strategies of inventory and wallet hold it around their read-check-write. A
lease ends when its TTL does, whether or not its holder is done (a pause, a slow query, a race
window): ``redis-lock`` keeps its lease far above any critical section and still fences the
write with the conditional UPDATE, so a holder that outlived its lease cannot oversell;
``redis-lock-short-ttl`` does neither (gotcha 14).

Keys are ``toctou:<namespace>:<scenario>:<resource>``. The namespace is a hash of the lab's
database URL (password hidden, a SQLite path made absolute): every worker of one lab has the
same settings and so the same keys; labs on different databases (parallel test sessions, the
matrix's labs) never share a key; labs on one database do, as they must, since they guard the
same rows.

Without ``TOCTOU_REDIS_URL`` the strategies answer 503 ``redis_unavailable`` before touching
anything; so they do when Redis does not answer (with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_delay,
    wait_random_exponential,
)

from toctou.lab.db import normalize_url
from toctou.lab.errors import Rejected, Unavailable
from toctou.lab.runtime import Lab

__all__ = [
    "LEASE_MS",
    "SHORT_LEASE_MS",
    "RedisLocks",
    "RedisUnavailable",
    "lock_key",
    "lock_namespace",
    "redis_locks",
]

log = logging.getLogger(__name__)

LEASE_MS = 10_000
"""``redis-lock``'s lease: ten times the widest race window (1000 ms) plus the work in it."""
SHORT_LEASE_MS = 20
"""``redis-lock-short-ttl``'s: plenty for the few milliseconds the work takes, until a race
window (50 ms in the recipes' races) outlasts it, as databases.md measured (20 ms vs 50 ms)."""

_RELEASE = """\
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisUnavailable(Unavailable):
    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__("redis_unavailable", message, retry_after=retry_after)


def lock_namespace(database_url: str) -> str:
    """The lab's key prefix: 12 hex digits of SHA-256 over its normalised database URL."""
    backend, url = normalize_url(database_url)
    if backend == "sqlite" and url.database:
        url = url.set(database=str(Path(url.database).resolve()))
    return hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]


def lock_key(namespace: str, scenario: str, *resource: str | int) -> str:
    """``toctou:<namespace>:<scenario>:<resource...>``, e.g. ``toctou:1a2b...:inventory:item:1``."""
    return ":".join(["toctou", namespace, scenario, *map(str, resource)])


def _polling(wait_s: float) -> AsyncRetrying:
    # Poll SET NX until it takes the key: full-jitter backoff from 0..2 ms up to 0..20 ms, so
    # dozens of waiters in four workers do not spin the CPU, yet a lease that ends is taken
    # within a few milliseconds. Redis errors are not retried here (see the client's Retry).
    return AsyncRetrying(
        stop=stop_after_delay(wait_s),
        wait=wait_random_exponential(multiplier=0.001, max=0.02),
        retry=retry_if_result(lambda taken: not taken),
    )


class RedisLocks:
    """One process's Redis client and the locks taken with it, under one lab's namespace."""

    def __init__(self, url: str, *, namespace: str, wait_s: float) -> None:
        # Fail fast when Redis is away: no retry, short timeouts (redis-py's default retries with
        # backoff, seconds before a 503 could be answered). And never resend: a SET NX whose
        # answer timed out may have taken the key, and sent again it would find the key taken,
        # by its own token, and wait out its own lease.
        self._client = Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        self._release = self._client.register_script(_RELEASE)
        self.namespace = namespace
        self.wait_s = wait_s

    def key(self, scenario: str, *resource: str | int) -> str:
        return lock_key(self.namespace, scenario, *resource)

    @asynccontextmanager
    async def hold(self, keys: Iterable[str], *, lease_ms: int) -> AsyncIterator[None]:
        """Hold every key, taken in sorted order (two holders of overlapping keys never wait on
        each other in a circle), released on the way out whatever happened.

        409 ``contention`` when a key stays taken for ``wait_s``; 503 ``redis_unavailable`` when
        Redis fails while taking them (the keys already taken are released first).
        """
        token = secrets.token_hex(16)
        async with AsyncExitStack() as held:
            for key in sorted(set(keys)):
                await self._acquire(key, token, lease_ms)
                held.push_async_callback(self._release_quietly, key, token)
            yield

    async def _take(self, key: str, token: str, lease_ms: int) -> bool:
        # A coroutine function of our own: tenacity awaits only those, and redis-py's `set` is
        # a plain method returning a coroutine (which, unawaited, would look like success).
        return bool(await self._client.set(key, token, nx=True, px=lease_ms))

    async def _acquire(self, key: str, token: str, lease_ms: int) -> None:
        try:
            await _polling(self.wait_s)(self._take, key, token, lease_ms)
        except RetryError:
            raise Rejected("contention", f"{key} stayed locked for {self.wait_s:g} s") from None
        except RedisError as exc:
            log.warning("Redis failed taking %s: %s", key, exc)
            raise RedisUnavailable(
                f"Redis (TOCTOU_REDIS_URL) did not answer: {exc}", retry_after=1
            ) from None

    async def _release_quietly(self, key: str, token: str) -> None:
        """Delete the key if it still holds our token (an expired lease may be someone else's
        by now). A failure is only logged: the action is done or failed already, and the lease
        ends by itself."""
        try:
            await self._release(keys=[key], args=[token])
        except RedisError as exc:
            log.warning("could not release %s (its lease ends by itself): %s", key, exc)

    async def aclose(self) -> None:
        await self._client.aclose()


def redis_locks(lab: Lab) -> RedisLocks:
    """The process's locks, the client created on first use; 503 without ``TOCTOU_REDIS_URL``."""
    if lab.redis is None:
        settings = lab.settings
        if not settings.redis_url:
            raise RedisUnavailable(
                "this strategy needs Redis and TOCTOU_REDIS_URL is not set "
                "(toctou serve --redis redis://127.0.0.1:6379/0)"
            )
        lab.redis = RedisLocks(
            settings.redis_url,
            namespace=lock_namespace(settings.resolved_database_url()),
            wait_s=settings.redis_lock_wait_s,
        )
    return lab.redis

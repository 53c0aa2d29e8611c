"""``create_app(settings)``: the lab as a FastAPI application, built on demand, never at import."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from toctou import __version__
from toctou.lab import control
from toctou.lab.admission import AdmissionMiddleware
from toctou.lab.config import Settings
from toctou.lab.db import Database, is_retryable, lock_for_init, open_database
from toctou.lab.docs import DOCS, add_docs
from toctou.lab.errors import ClientError, Rejected, Unavailable
from toctou.lab.models import Base
from toctou.lab.runtime import Lab
from toctou.lab.scenarios import SCENARIOS
from toctou.lab.schemas import ErrorOut, RejectedOut, error_response
from toctou.lab.timing import ServerTimingMiddleware

__all__ = ["create_app", "create_app_from_env", "prepare_database"]

log = logging.getLogger(__name__)

DESCRIPTION = """\
A deliberately vulnerable service. Every scenario (a shop, a wallet, payments, coupons, sign-up,
likes, a cart, a login) does one business action with several strategies; only some of them stay
correct when many requests arrive at once. `GET /scenarios` lists them with where each strategy
holds and a recipe for its race; `GET /lab/audit` shows what a race did to the data.
"""


async def prepare_database(db: Database) -> None:
    """Create every scenario's tables and seed rows: idempotent, safe when several workers start
    at once."""
    if db.backend == "sqlite":
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    async with db.init_engine.connect() as conn, conn.begin():
        release = await lock_for_init(conn, db.backend)
        try:
            await conn.run_sync(Base.metadata.create_all)
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                for scenario in SCENARIOS.values():
                    await scenario.seed(session)
                await session.flush()
        finally:
            if release is not None:
                await release()


class _LabApp(FastAPI):
    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings  # before FastAPI's own set-up, whenever it builds the stack
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.settings
        admitted = AdmissionMiddleware(
            super().build_middleware_stack(),
            limit=settings.admission_limit,
            timeout_s=settings.queue_timeout_s,
            exempt=self._database_free_paths(),
        )
        # Outermost, outside even ServerErrorMiddleware (which `add_middleware` cannot reach), so
        # the 500 of an unhandled exception carries the Server-Timing header too, and outside
        # admission, so a queued request's arrival is stamped when it arrived.
        return ServerTimingMiddleware(admitted)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's schema, with every 422 in the lab's one error shape, as it is answered
        (FastAPI documents its own ``HTTPValidationError``, which the lab never sends)."""
        if self.openapi_schema is None:
            schema = super().openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault(
                "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    invalid = operation.get("responses", {}).get("422")
                    if invalid and "HTTPValidationError" in str(invalid):
                        invalid["description"] = "invalid_request: the details say which field"
                        invalid["content"] = {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorOut"}
                            }
                        }
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        return self.openapi_schema or {}

    def _database_free_paths(self) -> frozenset[str]:
        """Routes that never wait for a connection, so admission lets them straight through."""
        docs = (self.openapi_url, DOCS, self.swagger_ui_oauth2_redirect_url)
        return control.DATABASE_FREE_PATHS | {path for path in docs if path}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the lab for ``settings`` (default: read from ``TOCTOU_*`` variables)."""
    settings = settings or Settings()
    db_url = settings.resolved_database_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(db_url, pool_size=settings.pool_size, max_overflow=settings.max_overflow)
        lab: Lab | None = None
        try:
            await prepare_database(db)
            await db.fill_pools(settings.pool_size)
            app.state.lab = lab = Lab(settings=settings, db=db)
            # Everything loaded so far lives as long as the process. Freezing it keeps the
            # cyclic GC from rescanning it: full collections under a burst took 25-70 ms of
            # event-loop time before (BENCHMARKS.md), and /health waited behind them.
            gc.collect()
            gc.freeze()
            yield
        finally:
            if lab is not None:
                await lab.aclose()
            await db.dispose()

    app = _LabApp(
        settings,
        title="toctou lab",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by add_docs, from the lab's own files (no CDN)
        redoc_url=None,  # ReDoc loads its script from a CDN, with no package to serve it from
    )
    add_docs(app)
    # Control first: /health is matched before the scenarios' routes, however many there are.
    app.include_router(control.router)
    for scenario in SCENARIOS.values():
        app.include_router(scenario.router)
    _add_error_handlers(app)
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for uvicorn's ``--factory`` in each worker process."""
    return create_app(Settings())


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def rejected(_: Request, exc: Rejected) -> JSONResponse:
        body = RejectedOut(reason=exc.reason, message=str(exc)).model_dump()
        return JSONResponse({**body, **exc.extra}, exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientError)
    async def client_error(_: Request, exc: ClientError) -> JSONResponse:
        return error_response(exc.status_code, exc.error, str(exc), valid=exc.valid)

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        response = error_response(exc.status_code, exc.error, str(exc))
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        details: list[dict[str, object]] = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
            for e in errors
        ]
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(
                400, "malformed_json", "the body is not valid JSON", details=details
            )
        first = details[0] if details else {}
        where = ".".join(str(p) for p in first.get("loc", []))  # type: ignore[attr-defined]
        message = f"{where}: {first.get('message')}" if first else "invalid request"
        return error_response(422, "invalid_request", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(
            exc.status_code, _HTTP_ERRORS.get(exc.status_code, "error"), str(exc.detail)
        )
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if is_retryable(exc):
            response = error_response(503, "database_busy", "the database is busy; try again")
            response.headers["Retry-After"] = "1"
            return response
        log.exception("database error", exc_info=exc)
        return error_response(
            500, "database_error", type(exc.orig).__name__ if exc.orig else "error"
        )


_HTTP_ERRORS = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
}

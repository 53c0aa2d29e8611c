"""Dependencies as types: routes declare what they need in their signatures.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool,
which cost each request up to three thread hops and made ``/health`` queue behind a burst.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from toctou.lab.runtime import Lab

__all__ = ["AdminDep", "LabDep", "RaceWindowDep", "RaceWindowHeaderDep"]


async def get_lab(request: Request) -> Lab:
    lab: Lab = request.app.state.lab
    return lab


LabDep = Annotated[Lab, Depends(get_lab)]


async def race_window_header(
    x_race_window_ms: Annotated[
        float | None,
        Header(
            ge=0,
            le=1000,
            allow_inf_nan=False,
            description="Widen the race window for this request (milliseconds, 0-1000).",
        ),
    ] = None,
) -> float | None:
    return x_race_window_ms


RaceWindowHeaderDep = Annotated[float | None, Depends(race_window_header)]


async def race_window_ms(lab: LabDep, header: RaceWindowHeaderDep) -> float:
    """The header's race window, else the process's ``TOCTOU_RACE_WINDOW_MS``."""
    return lab.settings.race_window_ms if header is None else header


RaceWindowDep = Annotated[float, Depends(race_window_ms)]


async def require_admin(
    lab: LabDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Lab control needs ``Authorization: Bearer <token>`` when the lab is served off loopback."""
    token = lab.settings.admin_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="lab control needs Authorization: Bearer <TOCTOU_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Annotated[None, Depends(require_admin)]

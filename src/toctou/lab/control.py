"""Lab control and audit: reset an item, check the invariants, liveness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from toctou.lab.deps import AdminDep, LabDep
from toctou.lab.inventory.ledger import audit, read_item, reset_item
from toctou.lab.schemas import (
    ADMISSION_RESPONSES,
    MAX_ITEM_ID,
    AuditOut,
    ErrorOut,
    HealthOut,
    ItemOut,
    ResetIn,
)

__all__ = ["router"]

router = APIRouter(tags=["lab"])


@router.get("/health")
async def health(lab: LabDep) -> HealthOut:
    """Liveness; touches no database, so it answers even while every connection is busy."""
    return HealthOut(worker=lab.worker, backend=lab.db.backend)


@router.post(
    "/lab/reset",
    responses={
        401: {"model": ErrorOut, "description": "bearer token required off loopback"},
        **ADMISSION_RESPONSES,
    },
)
async def reset_lab(
    lab: LabDep, _admin: AdminDep, body: Annotated[ResetIn | None, Body()] = None
) -> ItemOut:
    """Set an item's stock (and initial stock) and delete its orders; creates the item if needed."""
    wanted = body or ResetIn()
    async with lab.db.sessions() as session, session.begin():
        await reset_item(session, item_id=wanted.item_id, stock=wanted.stock, name=wanted.name)
        view = await read_item(session, wanted.item_id)
    return ItemOut.model_validate(view, from_attributes=True)


@router.get("/lab/audit", responses={404: {"model": ErrorOut}, **ADMISSION_RESPONSES})
async def audit_lab(
    lab: LabDep, item_id: Annotated[int | None, Query(ge=1, le=MAX_ITEM_ID)] = None
) -> AuditOut:
    """Every invariant, whether it holds, and the numbers behind it."""
    async with lab.db.sessions() as session:
        return await audit(session, item_id)

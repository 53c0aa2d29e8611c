"""Reading, auditing and resetting the coupon codes: what a race did to them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toctou.lab.errors import NotFound
from toctou.lab.scenario import Audit, Check
from toctou.lab.scenarios.coupon.models import CouponCode, Redemption
from toctou.lab.scenarios.coupon.schemas import AuditScope, CodeOut, CouponState, ResetScope

__all__ = [
    "INVARIANTS",
    "SEED_CODE",
    "CodeNotFound",
    "CodeView",
    "audit",
    "read_code",
    "reset",
    "seed",
]

SEED_CODE = "WELCOME10"

INVARIANTS = {
    "within_limit": "redemptions <= max_uses for every code (more is a limit overrun)",
    "uses_counted": "uses == redemption rows for every code (fewer uses: a lost update)",
}


class CodeNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__("code_not_found", f"no coupon code {code!r}")
        self.code = code


@dataclass(frozen=True, slots=True)
class CodeView:
    code: str
    max_uses: int
    uses: int
    redemptions: int

    @property
    def over_limit(self) -> int:
        return max(0, self.redemptions - self.max_uses)

    @property
    def uncounted(self) -> int:
        return max(0, self.redemptions - self.uses)

    @property
    def damage(self) -> int:
        """Redemptions nothing accounted for: beyond the limit, or lost by the uses counter
        (the larger; they are mostly the same redemptions, so they are not added up)."""
        return max(self.over_limit, self.uncounted)

    def out(self) -> CodeOut:
        return CodeOut(
            code=self.code,
            max_uses=self.max_uses,
            uses=self.uses,
            redemptions=self.redemptions,
            over_limit=self.over_limit,
            uncounted=self.uncounted,
            damage=self.damage,
        )


async def read_codes(session: AsyncSession, code: str | None = None) -> list[CodeView]:
    used = (
        select(Redemption.code, func.count(Redemption.id).label("n"))
        .group_by(Redemption.code)
        .subquery()
    )
    query = (
        select(CouponCode.code, CouponCode.max_uses, CouponCode.uses, func.coalesce(used.c.n, 0))
        .outerjoin(used, used.c.code == CouponCode.code)
        .order_by(CouponCode.code)
    )
    if code is not None:
        query = query.where(CouponCode.code == code)
    rows = await session.execute(query)
    return [CodeView(c, int(m), int(u), int(n)) for c, m, u, n in rows]


async def read_code(session: AsyncSession, code: str) -> CodeView:
    views = await read_codes(session, code)
    if not views:
        raise CodeNotFound(code)
    return views[0]


async def audit(session: AsyncSession, scope: AuditScope) -> Audit:
    """Check every code's limit and counter and say which codes break them."""
    if scope.code is not None:
        codes = [await read_code(session, scope.code)]
    else:
        codes = await read_codes(session)
    checks = [
        Check(
            "within_limit",
            [
                f"code {v.code}: redeemed {v.redemptions} times, limit {v.max_uses}"
                for v in codes
                if v.over_limit
            ],
        ),
        Check(
            "uses_counted",
            [
                f"code {v.code}: uses {v.uses}, {v.redemptions} redemption rows"
                for v in codes
                if v.uses != v.redemptions
            ],
        ),
    ]
    total = sum(v.redemptions for v in codes)
    state = CouponState(codes=[v.out() for v in codes], redemptions_total=total)
    return Audit(checks=checks, damage=sum(v.damage for v in codes), effects=total, state=state)


async def reset_code(session: AsyncSession, *, code: str, max_uses: int) -> None:
    """Delete the code's redemptions and set it unused with ``max_uses``; create it if missing."""
    await session.execute(delete(Redemption).where(Redemption.code == code))
    row = await session.get(CouponCode, code)
    if row is None:
        session.add(CouponCode(code=code, max_uses=max_uses, uses=0))
    else:
        row.max_uses = max_uses
        row.uses = 0
    await session.flush()


async def reset(session: AsyncSession, scope: ResetScope) -> CodeOut:
    """One code to ``max_uses`` (``code`` given), or the whole scenario back to its seed."""
    if scope.code is None:
        await session.execute(delete(Redemption))
        await session.execute(delete(CouponCode).where(CouponCode.code != SEED_CODE))
    code = SEED_CODE if scope.code is None else scope.code
    await reset_code(session, code=code, max_uses=scope.max_uses)
    return (await read_code(session, code)).out()


async def seed(session: AsyncSession) -> None:
    """WELCOME10, good for one use, unless it is there already."""
    if await session.get(CouponCode, SEED_CODE) is None:
        session.add(CouponCode(code=SEED_CODE, max_uses=1, uses=0))
        await session.flush()

"""The plans table, which the operator may change from the command line."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from feather_server.accounts.keys import AccountsError
from feather_server.accounts.models import Plan


@dataclass(frozen=True)
class PlanInfo:
    name: str
    monthly_compressions: int | None  # None: unlimited
    monthly_ai_credits: int
    paid: bool

    @classmethod
    def of(cls, plan: Plan) -> PlanInfo:
        return cls(plan.name, plan.monthly_compressions, plan.monthly_ai_credits, plan.paid)


def list_plans(session: Session) -> list[PlanInfo]:
    return [PlanInfo.of(p) for p in session.scalars(select(Plan).order_by(Plan.name))]


def set_plan_limits(session: Session, name: str, *, compressions: int | None | str = "keep",
                    ai_credits: int | None = None, paid: bool | None = None) -> PlanInfo:
    """Create or change a plan. ``compressions=None`` means unlimited; "keep" leaves it."""
    plan = session.get(Plan, name, with_for_update=True)
    if plan is None:
        if not name.isidentifier():
            raise AccountsError("A plan name is letters, digits and _")
        plan = Plan(name=name, monthly_compressions=0, monthly_ai_credits=0, paid=False)
        session.add(plan)
    if compressions != "keep":
        if isinstance(compressions, int) and compressions < 0:
            raise AccountsError("Compressions must be 0 or more, or unlimited")
        plan.monthly_compressions = compressions if isinstance(compressions, int) else None
    if ai_credits is not None:
        if ai_credits < 0:
            raise AccountsError("AI credits must be 0 or more")
        plan.monthly_ai_credits = ai_credits
    if paid is not None:
        plan.paid = paid
    session.flush()
    return PlanInfo.of(plan)

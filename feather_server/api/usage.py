"""GET /api/usage: the key's plan and what it used this billing period (FluxImage's shape)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from feather_server.accounts import Caller, accounting
from feather_server.accounts.auth import unauthorized
from feather_server.accounts.database import database_for
from feather_server.http.dialect import FLUX, speaks
from feather_server.http.policy import authenticated
from feather_server.settings import current_settings

bp = Blueprint("usage", __name__, url_prefix="/api")


@bp.get("/usage")
@speaks(FLUX)
@authenticated
def usage(caller: Caller) -> Response:
    if caller.key_id is None:
        raise unauthorized()  # anonymous callers have no account to report on
    with database_for(current_settings()).session() as session:
        report = accounting.usage_report(session, caller.key_id)
    return jsonify({
        "plan": report.plan,
        "compressor_used": report.compressor_used,
        "compressor_limit": report.compressor_limit,
        "ia_credits_used": report.ia_credits_used,
        "ia_credits_monthly": report.ia_credits_monthly,
        "ia_topup_credits": report.ia_topup_credits,
        "ia_credits_remaining": report.ia_credits_remaining,
        "canCompress": report.canCompress,
        "canUseIA": report.canUseIA,
        "periodStart": report.period_start.isoformat() + "Z",
        "periodEnd": report.period_end.isoformat() + "Z",
    })

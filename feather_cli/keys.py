"""`feather keys ...` and `feather sweep`: keys, plans and expired outputs.

The same commands run as `flask --app wsgi keys ...`: under Flask they use the app's
settings, under `feather` the environment's. The plain functions below take
``Settings`` and return records; nothing here imports Flask.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from feather_server.accounts import keys as key_ops
from feather_server.accounts import plans as plan_ops
from feather_server.accounts.accounting import UsageReport, usage_report
from feather_server.accounts.database import database_for
from feather_server.accounts.housekeeping import tidy
from feather_server.accounts.keys import AccountsError, KeyInfo
from feather_server.accounts.plans import PlanInfo
from feather_server.errors import Unavailable
from feather_server.settings import Settings, SettingsError
from feather_server.storage import store_for
from feather_server.storage.sweeping import sweep_now


def create_key(settings: Settings, plan: str = "free", name: str = "") -> tuple[KeyInfo, str]:
    """A new key; the raw key is returned once and never stored."""
    with database_for(settings).session() as session:
        return key_ops.create(session, plan, name)


def list_keys(settings: Settings) -> list[tuple[KeyInfo, UsageReport | None]]:
    with database_for(settings).session() as session:
        found = key_ops.list_keys(session)
        return [(k, usage_report(session, k.id) if k.revoked_at is None else None)
                for k in found]


def roll_key(settings: Settings, ref: str) -> tuple[KeyInfo, str]:
    with database_for(settings).session() as session:
        return key_ops.roll(session, ref)


def revoke_key(settings: Settings, ref: str) -> KeyInfo:
    with database_for(settings).session() as session:
        return key_ops.revoke(session, ref)


def topup_key(settings: Settings, ref: str, credits: int) -> KeyInfo:
    with database_for(settings).session() as session:
        return key_ops.topup(session, ref, credits)


def change_key_plan(settings: Settings, ref: str, plan: str) -> KeyInfo:
    with database_for(settings).session() as session:
        return key_ops.set_plan(session, ref, plan)


def list_plans(settings: Settings) -> list[PlanInfo]:
    with database_for(settings).session() as session:
        return plan_ops.list_plans(session)


def set_plan(settings: Settings, name: str, *, compressions: int | None | str = "keep",
             ai_credits: int | None = None, paid: bool | None = None) -> PlanInfo:
    with database_for(settings).session() as session:
        return plan_ops.set_plan_limits(session, name, compressions=compressions,
                                        ai_credits=ai_credits, paid=paid)


def sweep_outputs(settings: Settings) -> int:
    """Delete expired stored outputs now; returns how many."""
    return sweep_now(store_for(settings), settings)


def current_settings() -> Settings:
    """The settings of the app Flask's command line loaded, else the environment's."""
    info = click.get_current_context().find_root().obj
    load_app = getattr(info, "load_app", None)  # Flask's ScriptInfo, without importing Flask
    if callable(load_app):
        settings: Settings = load_app().config["FEATHER"]
        return settings
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


class _KeysGroup(click.Group):
    """A command group where an AccountsError (unknown key, unknown plan...) becomes the
    command's error message and exit status 1, in one place for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AccountsError as exc:
            raise click.ClickException(str(exc)) from exc
        except Unavailable as exc:
            raise click.ClickException(f"{exc.message} ({exc.detail})") from exc


keys_group = _KeysGroup("keys", help="Create, list, roll, revoke and top up API keys; plans.")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


@keys_group.command("create")
@click.option("--plan", default="free", show_default=True, help="free, starter, pro, agency...")
@click.option("--name", default="", help="Who the key is for.")
def create_command(plan: str, name: str) -> None:
    """Create a key and print it (only this once)."""
    info, raw = create_key(current_settings(), plan, name)
    click.echo(raw)
    click.echo(f"key {info.id} ({info.prefix}…) on plan {info.plan}: store it now, "
               "it cannot be shown again", err=True)


@keys_group.command("list")
def list_command() -> None:
    """List keys with their plan and this period's usage."""
    click.echo(f"{'id':>4}  {'prefix':<16} {'plan':<8} {'created':<16} {'status':<8} "
               f"{'compressions':>12} {'ai used':>8} {'top-up':>7}  name")
    for info, report in list_keys(current_settings()):
        status = "revoked" if info.revoked_at else "active"
        used = "-"
        ai = "-"
        if report is not None:
            limit = "∞" if report.compressor_limit is None else str(report.compressor_limit)
            used = f"{report.compressor_used}/{limit}"
            ai = f"{report.ia_credits_used}/{report.ia_credits_monthly}"
        click.echo(f"{info.id:>4}  {info.prefix + '…':<16} {info.plan:<8} "
                   f"{_when(info.created_at):<16} {status:<8} {used:>12} {ai:>8} "
                   f"{info.ai_topup_credits:>7}  {info.name}")


@keys_group.command("roll")
@click.argument("key")
def roll_command(key: str) -> None:
    """Replace KEY (id or prefix) with a new secret; the old one stops working now."""
    info, raw = roll_key(current_settings(), key)
    click.echo(raw)
    click.echo(f"key {info.id} rolled: the old key no longer works", err=True)


@keys_group.command("revoke")
@click.argument("key")
def revoke_command(key: str) -> None:
    """Revoke KEY (id or prefix) for good."""
    info = revoke_key(current_settings(), key)
    click.echo(f"key {info.id} ({info.prefix}…) revoked")


@keys_group.command("topup")
@click.argument("key")
@click.argument("credits", type=click.IntRange(min=1))
def topup_command(key: str, credits: int) -> None:
    """Add CREDITS AI credits to KEY; they never expire and are used after the monthly ones."""
    info = topup_key(current_settings(), key, credits)
    click.echo(f"key {info.id}: {info.ai_topup_credits} top-up AI credits")


@keys_group.command("set-plan")
@click.argument("key")
@click.argument("plan")
def set_plan_command(key: str, plan: str) -> None:
    """Move KEY to PLAN."""
    info = change_key_plan(current_settings(), key, plan)
    click.echo(f"key {info.id} is now on plan {info.plan}")


@keys_group.command("plans")
def plans_command() -> None:
    """List the plans."""
    for plan in list_plans(current_settings()):
        limit = "unlimited" if plan.monthly_compressions is None else plan.monthly_compressions
        click.echo(f"{plan.name:<10} compressions/month: {limit!s:<10} "
                   f"AI credits/month: {plan.monthly_ai_credits:<6} "
                   f"{'paid' if plan.paid else 'free'}")


@keys_group.command("plan")
@click.argument("name")
@click.option("--compressions", help="Monthly compressions, or 'unlimited'.")
@click.option("--ai-credits", type=click.IntRange(min=0), help="Monthly AI credits.")
@click.option("--paid/--free", default=None, help="Paid plans may use watermarks and AI.")
def plan_command(name: str, compressions: str | None, ai_credits: int | None,
                 paid: bool | None) -> None:
    """Create or change plan NAME."""
    limit: int | None | str = "keep"
    if compressions is not None:
        if compressions.strip().lower() == "unlimited":
            limit = None
        elif compressions.strip().isdigit():
            limit = int(compressions)
        else:
            raise click.BadParameter("a number or 'unlimited'", param_hint="--compressions")
    plan = set_plan(current_settings(), name, compressions=limit, ai_credits=ai_credits,
                    paid=paid)
    shown = "unlimited" if plan.monthly_compressions is None else plan.monthly_compressions
    click.echo(f"plan {plan.name}: {shown} compressions, {plan.monthly_ai_credits} AI "
               f"credits a month, {'paid' if plan.paid else 'free'}")


@click.command("sweep")
def sweep_command() -> None:
    """Delete expired stored outputs now (the service also sweeps on its own)."""
    settings = current_settings()
    try:
        deleted = sweep_outputs(settings)
        returned, dropped = tidy(settings)
    except Unavailable as exc:
        raise click.ClickException(f"{exc.message} ({exc.detail})") from exc
    if settings.s3_bucket and settings.s3_lifecycle:
        click.echo("the bucket's lifecycle rule expires outputs (S3_LIFECYCLE=true)")
    click.echo(f"{deleted} expired output(s) deleted")
    click.echo(f"{returned} reservation(s) of dead requests given back, {dropped} "
               "idempotency record(s) dropped")


def init_app(app: Any) -> None:
    """Offer the same commands as `flask --app wsgi keys ...` and `... sweep`."""
    app.cli.add_command(keys_group)
    app.cli.add_command(sweep_command)

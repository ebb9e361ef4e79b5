"""Plans, API keys and usage per billing period, with the default plans.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("monthly_compressions", sa.Integer(), nullable=True),
        sa.Column("monthly_ai_credits", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("paid", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("plan_name", sa.String(32), sa.ForeignKey("plans.name"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("ai_topup_credits", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_table(
        "usage",
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("period_start", sa.DateTime(), primary_key=True),
        sa.Column("compressions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ai_credits", sa.Integer(), nullable=False, server_default="0"),
    )
    # The plans of DESIGN.md; operators change them with `flask keys plan ...`.
    op.bulk_insert(plans, [
        {"name": "free", "monthly_compressions": 20, "monthly_ai_credits": 0, "paid": False},
        {"name": "starter", "monthly_compressions": 200, "monthly_ai_credits": 200,
         "paid": True},
        {"name": "pro", "monthly_compressions": None, "monthly_ai_credits": 1000, "paid": True},
        {"name": "agency", "monthly_compressions": None, "monthly_ai_credits": 10000,
         "paid": True},
    ])


def downgrade() -> None:
    op.drop_table("usage")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("plans")

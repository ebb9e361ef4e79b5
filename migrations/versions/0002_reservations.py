"""Reservations on a lease, and the answers of requests sent with an Idempotency-Key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("compressions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ai_monthly", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ai_topup", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
    )
    op.create_index("ix_reservations_key_id", "reservations", ["key_id"])
    op.create_index("ix_reservations_open_lease", "reservations", ["state", "lease_until"])
    op.create_table(
        "idempotent_requests",
        sa.Column("owner", sa.String(200), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_idempotent_requests_expires_at", "idempotent_requests",
                    ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotent_requests")
    op.drop_index("ix_reservations_open_lease", "reservations")
    op.drop_index("ix_reservations_key_id", "reservations")
    op.drop_table("reservations")

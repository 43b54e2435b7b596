"""scheduling: one row per slot and step, the claim that makes a slot build and send once

Revision ID: 0012_schedule
Revises: 0007_edition_lifecycle
Create Date: 2026-12-14 06:00:00

A new table only: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import subscribers.models

revision = "0012_schedule"
down_revision = "0011_hardening"
branch_labels = None
depends_on = None

UTC = subscribers.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot", UTC, nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("edition_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["edition_id"], ["editions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slot", "step"),
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")

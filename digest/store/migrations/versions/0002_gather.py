"""gather: editor picks on articles (picked_at, pick_title, pick_section)

Revision ID: 0002_gather
Revises: 0001_initial
Create Date: 2026-11-25 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import subscribers.models

revision = "0002_gather"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot ALTER columns in place: batch mode recreates the table when it must.
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("picked_at", subscribers.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("pick_title", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("pick_section", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("pick_section")
        batch_op.drop_column("pick_title")
        batch_op.drop_column("picked_at")

"""hardening: a subscribe request's name and sections are kept apart until it is confirmed

Revision ID: 0011_hardening
Revises: 0007_edition_lifecycle
Create Date: 2026-12-07 09:00:00

Until now a request wrote its name and sections straight onto the subscriber, before anyone
confirmed it. The open request (confirm_nonce set) now keeps them in requested_name and
requested_sections, applied when its link is used. Requests open at upgrade time were written
the old way, so their values are copied: confirming them gives what they asked for.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_hardening"
down_revision = "0010_staff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (nullable columns), never a batch copy of `subscribers`.
    op.add_column("subscribers", sa.Column("requested_name", sa.String(length=200), nullable=True))
    op.add_column("subscribers", sa.Column("requested_sections", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE subscribers SET requested_name = name, requested_sections = sections "
        "WHERE confirm_nonce IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("subscribers", "requested_sections")  # SQLite 3.35+ drops it in place
    op.drop_column("subscribers", "requested_name")

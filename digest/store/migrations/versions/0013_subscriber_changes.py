"""the subscriber change log: triggers note every change a send's claims must honour

Revision ID: 0013_subscriber_changes
Revises: 0012_schedule
Create Date: 2026-12-07 12:00:00

A claim checks that each recipient may still be mailed (active, not paused, still taking a
section of the variant). Joining every row of a batch with its subscriber cost a third of a
claim, and with 31 variants a batch's subscribers are spread over 31 times as many pages.
On SQLite, triggers now note each subscriber whose status, pause or sections changed, or who
was erased, whatever wrote the change (the ORM, a bulk UPDATE, the one-click path, sqlite3);
a claim joins only when one of its rows is among them. SQLite writes one transaction at a
time, so `seq` grows in commit order. PostgreSQL keeps the join (sequence numbers there are
not handed out in commit order): the table exists on both, the triggers only on SQLite.

A later migration that rebuilds `subscribers` on SQLite (Alembic's batch mode copies the table
into a new one) drops these triggers with the old table: it must create them again (TRIGGERS).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_subscriber_changes"
down_revision = "0012_schedule"
branch_labels = None
depends_on = None

TRIGGERS = (
    """
    CREATE TRIGGER subscriber_changes_on_update AFTER UPDATE ON subscribers
    WHEN OLD.status IS NOT NEW.status
      OR OLD.paused_until IS NOT NEW.paused_until
      OR OLD.sections IS NOT NEW.sections
    BEGIN
      INSERT INTO subscriber_changes (subscriber_id) VALUES (NEW.id);
    END
    """,
    """
    CREATE TRIGGER subscriber_changes_on_delete AFTER DELETE ON subscribers
    BEGIN
      INSERT INTO subscriber_changes (subscriber_id) VALUES (OLD.id);
    END
    """,
)


def upgrade() -> None:
    op.create_table(
        "subscriber_changes",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("edition_sends") as batch:
        batch.add_column(sa.Column("changes_from", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        for trigger in TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS subscriber_changes_on_update")
        op.execute("DROP TRIGGER IF EXISTS subscriber_changes_on_delete")
    with op.batch_alter_table("edition_sends") as batch:
        batch.drop_column("changes_from")
    op.drop_table("subscriber_changes")

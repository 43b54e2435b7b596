"""Alembic environment: the engine is handed in by digest.db, never read from a file."""

from __future__ import annotations

from alembic import context

import digest.store.models  # noqa: F401  (registers digest's tables on the shared Base)
from subscribers.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

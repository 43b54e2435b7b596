"""Shared set-up for the delivery tests: an edition and subscribers written straight to the
database (fast, and independent of gathering), settings variants, and per-test PostgreSQL
schemas so that the ledger tests run on both databases."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition.lifecycle import content_hash
from digest.ledger.tally import LedgerRow, effective_rows
from digest.store.db import make_engine, session_factory, transaction, upgrade
from digest.store.models import APPROVED, Article, Edition, EditionItem
from subscribers.models import ACTIVE, Base, Subscriber

SECTIONS = ("Middle East", "Europe", "Asia", "Military Industrial Complex", "Diplomacy")


def with_delivery(settings: Settings, **values: Any) -> Settings:
    """The same settings with some [delivery] keys changed (validated like the real thing)."""
    delivery = type(settings.delivery).model_validate({**settings.delivery.model_dump(), **values})
    return settings.model_copy(update={"delivery": delivery})


def with_values(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update=values)


def make_edition(
    factory: sessionmaker[Session],
    now: datetime,
    sections: Sequence[str] = SECTIONS,
    summary: str = "A summary of the story.",
) -> int:
    """An approved edition with two articles in each section, each with `summary`, ready to send
    at `now` (its cut-off is `now`, or a minute earlier per edition made before at `now`)."""
    with transaction(factory) as session:
        cutoff = now
        while session.scalar(select(Edition.id).where(Edition.cutoff == cutoff)) is not None:
            cutoff -= timedelta(minutes=1)
        edition = Edition(
            status=APPROVED,
            approved_at=now,
            approved_by="tests",
            window_start=cutoff - timedelta(days=7),
            cutoff=cutoff,
            subject="The Weekly Round-up: November 20, 2026",
            intro="Five desks, one week.",
            created_at=now,
        )
        session.add(edition)
        position = 0
        for section in sections:
            for n in range(2):
                position += 1
                url = f"https://news.example/{uuid.uuid4().hex}"
                article = Article(
                    url=url,
                    title=f"{section} story {n}",
                    summary=summary,
                    section=section,
                    published_at=now - timedelta(days=1),
                    first_seen_at=now,
                    updated_at=now,
                    content_hash=uuid.uuid4().hex,
                    is_pick=False,
                )
                session.add(article)
                session.flush()
                edition.items.append(
                    EditionItem(
                        article_id=article.id,
                        position=position,
                        section=section,
                        title=article.title,
                        url=url,
                        summary=article.summary,
                        published_at=article.published_at,
                        score=1.0,
                        reasons=["test"],
                        pinned=False,
                    )
                )
        session.flush()
        edition.content_hash = content_hash(edition)
        return edition.id


def ledger_rows(factory: sessionmaker[Session]) -> dict[str, LedgerRow]:
    """Every delivery by address, as the ledger sees it: its own state or its batch's."""
    with factory() as session:
        return {row.email: row for row in session.execute(effective_rows())}


def ledger_statuses(factory: sessionmaker[Session]) -> dict[str, str]:
    return {email: row.status for email, row in ledger_rows(factory).items()}


def add_subscribers(
    factory: sessionmaker[Session],
    n: int,
    now: datetime,
    *,
    start: int = 0,
    sections: Sequence[Sequence[str] | None] = (None,),
    domain: str = "example.com",
) -> None:
    """`n` active, confirmed subscribers user<i>@domain; sections cycle through `sections`."""
    rows = [
        {
            "public_id": uuid.uuid4().hex,
            "email": f"user{i}@{domain}",
            "status": ACTIVE,
            "sections": None if (s := sections[i % len(sections)]) is None else list(s),
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now,
        }
        for i in range(start, start + n)
    ]
    with transaction(factory) as session:
        for begin in range(0, len(rows), 5000):
            session.execute(insert(Subscriber), rows[begin : begin + 5000])


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[Engine]:
    """A migrated, empty schema of its own on the test PostgreSQL, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def process_database(
    kind: str, settings: Settings, postgres_url: str | None = None
) -> Iterator[tuple[str, Engine]]:
    """The test's own SQLite file ("sqlite"), or a schema of its own on the test PostgreSQL,
    with a URL that `digest` subprocesses can open (the schema in its search_path)."""
    if kind == "sqlite":
        engine = make_engine(settings.database.url)
        try:
            yield settings.database.url, engine
        finally:
            engine.dispose()
        return
    assert postgres_url is not None
    with postgres_schema(postgres_url) as engine:
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
        options = urllib.parse.urlencode({"options": f"-csearch_path={schema}"})
        yield f"{postgres_url}?{options}", engine


def empty_tables(engine: Engine) -> None:
    """Every table emptied, so a module's PostgreSQL schema can serve each of its tests afresh."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@dataclass
class LedgerDb:
    """What the `ledger_db` fixture hands a test: one database, SQLite or PostgreSQL."""

    name: str
    engine: Engine
    factory: sessionmaker[Session]
    settings: Settings


def factory_for(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on 127.0.0.1:0; yields its base URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def digest_env(values: dict[str, str]) -> dict[str, str]:
    """The environment for a `digest` subprocess: this one without its DIGEST_* variables
    (a developer's would override the config under test), plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return {**env, **values}

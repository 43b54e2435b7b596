"""The console's preview (digest.edition.outgoing): the HTML and text a send hands the backend,
byte for byte, with sample links where each reader's own go; per variant; bad variants and
empty editions refused with one line."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition.outgoing import outgoing
from digest.errors import EditionStateError, UsageError
from digest.render.placeholders import fill_preview
from digest.send.engine import send_edition
from digest.store.db import transaction
from digest.store.models import DRAFT, Edition, EditionItem
from tests.send_helpers import add_subscribers, make_edition
from tests.send_runtime import FakeTime


def test_the_preview_is_what_the_send_hands_the_backend(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    add_subscribers(factory, 2, now, sections=[None, ["Europe", "Asia"]])
    whole = outgoing(factory, settings, edition_id, None, now)
    europe_asia = outgoing(factory, settings, edition_id, "asia, EUROPE", now)
    assert europe_asia.sections == ("Europe", "Asia")
    assert whole.archive_url == f"{settings.web.base_url}/archive/2026-11-20"
    assert f"{settings.web.base_url}/u/preview" in whole.html  # a sample, never a token
    backend = MemoryBackend()
    send_edition(
        factory, settings, backend, edition_id=edition_id, now=now, runtime=FakeTime(now).runtime()
    )
    sent = {len(b.html): b for b in backend.batches}
    base = settings.web.base_url
    bodies = {(fill_preview(b.html, base), fill_preview(b.text, base)) for b in sent.values()}
    assert bodies == {(whole.html, whole.text), (europe_asia.html, europe_asia.text)}
    assert {b.subject for b in backend.batches} == {whole.subject}


def test_a_variant_the_edition_lacks_and_an_empty_edition_are_refused(
    factory: sessionmaker[Session], settings: Settings, now: datetime
) -> None:
    edition_id = make_edition(factory, now)
    with pytest.raises(UsageError, match="has no section 'Sport'; its sections are: Middle East"):
        outgoing(factory, settings, edition_id, "Sport", now)
    with transaction(factory) as session:
        session.execute(delete(EditionItem).where(EditionItem.edition_id == edition_id))
        session.execute(update(Edition).where(Edition.id == edition_id).values(status=DRAFT))
    with pytest.raises(EditionStateError, match="has no articles: nothing to preview"):
        outgoing(factory, settings, edition_id, None, now)

"""Staff edits of a draft (issue 10) on the demo week: pin, drop, move, subject, preheader and
intro; every one survives a rebuild of the week, and a refused one changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition import edits
from digest.edition.articles import week_filter
from digest.edition.build import build_edition
from digest.edition.edits import load
from digest.errors import EditionStateError, NotFoundError, UsageError
from digest.store.db import transaction
from digest.store.models import APPROVED, DRAFT, SENDING, SENT, Article, Edition

ANN = "ann"


def _snapshot(factory: sessionmaker[Session], edition_id: int) -> dict[str, object]:
    """Everything an edit may change, to prove a refused one changed nothing."""
    with factory() as session:
        e = load(session, edition_id)
        return {
            "status": e.status,
            "texts": (e.subject, e.preheader, e.intro),
            "items": [(i.article_id, i.position, i.section, i.pinned) for i in e.items],
            "edits": len(e.edits),
            "history": len(e.history),
            "hash": e.content_hash,
        }


def _items(factory: sessionmaker[Session], edition_id: int) -> list[tuple[int, str]]:
    """(article id, section) in reading order."""
    with factory() as session:
        return [(i.article_id, i.section) for i in load(session, edition_id).items]


def _ids(factory: sessionmaker[Session], edition_id: int) -> list[int]:
    return [a for a, _ in _items(factory, edition_id)]


def _left_out(factory: sessionmaker[Session], edition_id: int) -> list[int]:
    """Articles of the edition's week that the ranking did not choose."""
    with factory() as session:
        edition = load(session, edition_id)
        chosen = {i.article_id for i in edition.items}
        week = session.scalars(
            select(Article.id)
            .where(week_filter(edition.window_start, edition.cutoff))
            .order_by(Article.id)
        )
        return [a for a in week if a not in chosen]


def _sections_are_contiguous(items: list[tuple[int, str]]) -> bool:
    order = [s for n, (_, s) in enumerate(items) if n == 0 or items[n - 1][1] != s]
    return len(order) == len(set(order))


def _status(factory: sessionmaker[Session], edition_id: int, status: str) -> None:
    with transaction(factory) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        edition.status = status


@pytest.fixture
def draft(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    return build_edition(factory, settings, now).edition.id


def test_a_pin_keeps_an_article_in_through_a_rebuild(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    article = _left_out(factory, draft)[0]
    before = _ids(factory, draft)
    result = edits.pin(factory, settings, draft, str(article), ANN, now)
    assert result.status == DRAFT and result.warnings == []
    assert result.position == _ids(factory, draft).index(article) + 1
    assert len(_ids(factory, draft)) == len(before) == settings.newsletter.max_items

    report = build_edition(factory, settings, now)
    assert report.edition.id == draft and report.replaced_draft
    assert report.stale_edits == []
    with factory() as session:
        items = {i.article_id: i for i in load(session, draft).items}
        assert items[article].pinned
        assert "pinned by ann" in items[article].reasons


def test_a_drop_keeps_an_article_out_and_the_next_best_takes_its_place(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    before = _ids(factory, draft)
    waiting = set(_left_out(factory, draft))
    top = before[0]
    edits.drop(factory, settings, draft, str(top), ANN, now)
    after = _ids(factory, draft)
    assert top not in after and len(after) == len(before)
    [newcomer] = set(after) - set(before)
    assert newcomer in waiting

    report = build_edition(factory, settings, now)
    assert report.stale_edits == []
    assert _ids(factory, draft) == after


def test_a_pin_after_a_drop_takes_the_article_back(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    top = _ids(factory, draft)[0]
    edits.drop(factory, settings, draft, str(top), ANN, now)
    edits.pin(factory, settings, draft, str(top), "bob", now)
    assert top in _ids(factory, draft)


def test_move_to_the_top_makes_the_articles_section_the_first(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    items = _items(factory, draft)
    last, section = items[-1]
    assert items[0][1] != section
    result = edits.move(factory, settings, draft, str(last), ANN, now, position=1)
    assert result.position == 1
    after = _items(factory, draft)
    assert after[0] == (last, section)
    assert _sections_are_contiguous(after)
    assert sorted(after) == sorted(items)


def test_move_into_another_sections_block_keeps_the_item_with_its_section(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    """POSITION is in the whole edition's order; an item never splits another section, so the
    result says where it really ended up."""
    items = _items(factory, draft)
    first_section = items[0][1]
    block = sum(1 for _, s in items if s == first_section)
    assert block >= 2
    last, section = items[-1]
    result = edits.move(factory, settings, draft, str(last), ANN, now, position=2)
    after = _items(factory, draft)
    assert _sections_are_contiguous(after)
    assert after[: block + 1] == [*items[:block], (last, section)]
    assert result.position == block + 1


def test_move_to_another_section_survives_a_rebuild(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    article = next(a for a, s in _items(factory, draft) if s == "Europe")
    edits.move(factory, settings, draft, str(article), ANN, now, section="Diplomacy")
    build_edition(factory, settings, now)
    after = _items(factory, draft)
    assert (article, "Diplomacy") in after
    assert _sections_are_contiguous(after)
    diplomacy = [a for a, s in after if s == "Diplomacy"]
    assert diplomacy[-1] == article  # after the section's own articles
    with factory() as session:
        item = next(i for i in load(session, draft).items if i.article_id == article)
        assert "moved to section Diplomacy by ann" in item.reasons


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, "--to POSITION or --section SECTION"),
        ({"position": 1, "section": "Europe"}, "--to POSITION or --section SECTION"),
        ({"position": 0}, "positions start at 1"),
        ({"section": "Sport"}, "'Sport' is not one of the newsletter's sections"),
    ],
)
def test_a_move_without_a_proper_destination_is_a_usage_error(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    draft: int,
    kw: dict[str, object],
    message: str,
) -> None:
    before = _snapshot(factory, draft)
    article = str(_ids(factory, draft)[0])
    with pytest.raises(UsageError, match=message):
        edits.move(factory, settings, draft, article, ANN, now, **kw)  # type: ignore[arg-type]
    assert _snapshot(factory, draft) == before


def test_drop_or_move_of_an_article_not_in_the_edition_changes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    outside = str(_left_out(factory, draft)[0])
    before = _snapshot(factory, draft)
    with pytest.raises(EditionStateError, match="nothing to drop"):
        edits.drop(factory, settings, draft, outside, ANN, now)
    with pytest.raises(EditionStateError, match="pin it first"):
        edits.move(factory, settings, draft, outside, ANN, now, position=1)
    assert _snapshot(factory, draft) == before


@pytest.mark.parametrize("kind", ["subject", "preheader", "intro"])
def test_texts_survive_a_rebuild_and_an_empty_text_restores_the_default(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int, kind: str
) -> None:
    with factory() as session:
        default = getattr(load(session, draft), kind)
    text = f"Our {kind}, written by hand"
    edits.set_text(factory, settings, draft, kind, text, ANN, now)
    build_edition(factory, settings, now)
    with factory() as session:
        assert getattr(load(session, draft), kind) == text
    edits.set_text(factory, settings, draft, kind, "", ANN, now)
    build_edition(factory, settings, now)
    with factory() as session:
        assert getattr(load(session, draft), kind) == default


def test_the_default_texts_are_the_configured_ones(
    factory: sessionmaker[Session], settings: Settings, draft: int
) -> None:
    with factory() as session:
        edition = load(session, draft)
        assert edition.subject == "The Weekly Round-up: November 20, 2026"
        assert edition.preheader == ""
        assert edition.intro == settings.newsletter.intro


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("subject", "Two\nlines", "a subject is one line"),
        ("subject", "x" * 301, "at most 300"),
        ("preheader", "x" * 251, "at most 250"),
        ("intro", "x" * 5001, "at most 5000"),
        ("footer", "hello", "'footer' is not one of subject, preheader, intro"),
    ],
)
def test_a_bad_text_is_a_usage_error_and_changes_nothing(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    draft: int,
    kind: str,
    text: str,
    message: str,
) -> None:
    before = _snapshot(factory, draft)
    with pytest.raises(UsageError, match=message):
        edits.set_text(factory, settings, draft, kind, text, ANN, now)
    assert _snapshot(factory, draft) == before


def test_an_edit_of_an_approved_edition_returns_it_to_draft_with_a_warning(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    edits.change_status(factory, settings, draft, "approve", "bob", now)
    later = now + timedelta(minutes=10)
    result = edits.set_text(factory, settings, draft, "subject", "Fixed a typo", ANN, later)
    assert result.status == DRAFT
    assert result.warnings == [
        f"edition {draft} was approved; this edit returned it to draft: approve it again with "
        f"`digest edition approve {draft}`"
    ]
    with factory() as session:
        edition = load(session, draft)
        assert edition.content_hash is None and edition.approved_by is None
        last = [(e.actor, e.action, e.from_status, e.to_status, e.reason) for e in edition.history]
        assert last[-2:] == [
            (ANN, "unapproved", APPROVED, DRAFT, "edited after approval"),
            (ANN, "edited", DRAFT, DRAFT, None),
        ]


def test_a_pin_of_an_article_outside_the_week_is_refused_and_changes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    with factory() as session:
        edition = load(session, draft)
        old = session.scalars(
            select(Article.id)
            .where(Article.published_at < edition.window_start)
            .order_by(Article.published_at)
        ).first()
    assert old is not None
    before = _snapshot(factory, draft)
    with pytest.raises(EditionStateError, match=f"article {old} .* is outside edition {draft}"):
        edits.pin(factory, settings, draft, str(old), ANN, now)
    assert _snapshot(factory, draft) == before


def test_a_pin_of_an_article_another_approved_edition_carries_is_refused(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    """The week before (three days earlier, overlapping this draft's week) is approved first:
    what it carries is taken, even for this older draft that still reaches back over it."""
    earlier = build_edition(factory, settings, now - timedelta(days=3)).edition.id
    edits.change_status(factory, settings, earlier, "approve", "bob", now)
    taken = set(_ids(factory, earlier)) & set(_left_out(factory, draft))
    assert taken
    article = min(taken)
    before = _snapshot(factory, draft)
    with pytest.raises(EditionStateError, match="already in an approved or sent edition"):
        edits.pin(factory, settings, draft, str(article), ANN, now)
    assert _snapshot(factory, draft) == before


def test_an_unknown_edition_is_not_found(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    article = str(_ids(factory, draft)[0])
    with pytest.raises(NotFoundError, match="no edition with id 99"):
        edits.pin(factory, settings, 99, article, ANN, now)
    with pytest.raises(NotFoundError, match="no edition with id 99"):
        edits.set_text(factory, settings, 99, "subject", "Hello", ANN, now)
    with pytest.raises(NotFoundError, match="no edition with id 99"):
        edits.change_status(factory, settings, 99, "approve", ANN, now)


@pytest.mark.parametrize("ref", ["9999", "https://meridianreview.example/europe/no-such-story/"])
def test_an_unknown_article_is_not_found_and_changes_nothing(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int, ref: str
) -> None:
    before = _snapshot(factory, draft)
    with pytest.raises(NotFoundError, match=r"no (article with id|stored article has the URL)"):
        edits.pin(factory, settings, draft, ref, ANN, now)
    assert _snapshot(factory, draft) == before


def test_an_article_that_is_neither_id_nor_url_is_a_usage_error(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    with pytest.raises(UsageError, match="neither an article id nor an http"):
        edits.pin(factory, settings, draft, "the gaza story", ANN, now)


@pytest.mark.parametrize("status", [SENT, SENDING])
def test_a_sent_or_sending_edition_cannot_be_edited(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int, status: str
) -> None:
    _status(factory, draft, status)
    before = _snapshot(factory, draft)
    top = str(_ids(factory, draft)[0])
    with pytest.raises(EditionStateError, match=f"edition {draft} is {status}: it can no longer"):
        edits.drop(factory, settings, draft, top, ANN, now)
    with pytest.raises(EditionStateError, match=f"edition {draft} is {status}: it can no longer"):
        edits.set_text(factory, settings, draft, "intro", "Too late", ANN, now)
    assert _snapshot(factory, draft) == before


def test_a_skipped_edition_is_rebuilt_not_edited(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    edits.change_status(factory, settings, draft, "skip", ANN, now, reason="office closed")
    with pytest.raises(EditionStateError, match="rebuild its week with `digest build`"):
        edits.set_text(factory, settings, draft, "intro", "Hello", ANN, now)


@pytest.mark.parametrize(
    "form",
    [
        "{url}",
        "{url}/",
        "{url}/?utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
        "{upper}",
    ],
)
def test_an_article_is_found_by_its_url_in_any_form_of_it(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int, form: str
) -> None:
    article = _left_out(factory, draft)[0]
    with factory() as session:
        url = session.get(Article, article).url  # type: ignore[union-attr]
    upper = url.replace("https://meridianreview.example", "HTTPS://MeridianReview.EXAMPLE")
    edits.pin(factory, settings, draft, form.format(url=url, upper=upper), ANN, now)
    assert article in _ids(factory, draft)


def test_the_http_copy_of_an_articles_url_finds_it_too(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    """The build treats http:// and https:// copies as one article; so does ARTICLE."""
    article = _left_out(factory, draft)[0]
    with factory() as session:
        url = session.get(Article, article).url  # type: ignore[union-attr]
    assert url.startswith("https://")
    edits.pin(factory, settings, draft, "http://" + url.removeprefix("https://"), ANN, now)
    assert article in _ids(factory, draft)


def test_an_edit_that_no_longer_applies_after_a_rebuild_is_reported(
    factory: sessionmaker[Session], settings: Settings, now: datetime, draft: int
) -> None:
    """Pin an article from early in the week; then the edition three days before is approved:
    this week now starts at its cut-off, and the pinned article is no longer in it."""
    with factory() as session:
        edition = load(session, draft)
        window = (edition.window_start, edition.cutoff)
    earlier_cutoff = now - timedelta(days=3)
    early = [
        a
        for a in _left_out(factory, draft)
        if _published(factory, a) < earlier_cutoff and _published(factory, a) >= window[0]
    ]
    assert early
    edits.pin(factory, settings, draft, str(early[0]), ANN, now)
    earlier = build_edition(factory, settings, earlier_cutoff).edition.id
    edits.change_status(factory, settings, earlier, "approve", "bob", now)

    report = build_edition(factory, settings, now)
    assert report.edition.id == draft
    assert report.edition.window_start == earlier_cutoff
    assert report.stale_edits == [
        f"pin of article {early[0]} no longer applies: it is not among this week's articles "
        "(outside the window, or carried by another edition)"
    ]
    assert early[0] not in _ids(factory, draft)
    assert not set(_ids(factory, draft)) & set(_ids(factory, earlier))


def _published(factory: sessionmaker[Session], article_id: int) -> datetime:
    with factory() as session:
        article = session.get(Article, article_id)
        assert article is not None and article.published_at is not None
        return article.published_at

"""Building an edition: gather -> store candidates -> choose the week's articles -> persist.

The one place an edition's content is written. A build for a cut-off that has a draft rebuilds
that draft in place: re-gathered, re-ranked, and the staff's edits (digest.edition.edits)
applied again, with a note for each edit that no longer applies. Edits re-run `compose` without
gathering. A thin week is recorded as skipped, so the next build reaches back for its articles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.edition import lifecycle
from digest.edition.articles import (
    StoreStats,
    apply_picks,
    known_urls,
    record_sources,
    store_candidates,
    with_validators,
)
from digest.edition.lifecycle import SYSTEM
from digest.edition.options import gather_options, source_specs, week_window
from digest.edition.ranking import WeekRanking, article_id, rank_week
from digest.errors import EditionStateError, EmptyWeekError, GatherError
from digest.gather import Fetcher, SourceReport, gather
from digest.gather.candidate import Candidate
from digest.rank import Ranked
from digest.render.email import date_label
from digest.store.db import transaction
from digest.store.models import (
    CANCELLED,
    DRAFT,
    LOCKED_STATUSES,
    SKIPPED,
    Edition,
    EditionEdit,
    EditionItem,
)


@dataclass
class BuildReport:
    edition: Edition
    ranked: list[Ranked]
    sources: list[SourceReport]
    candidates: int
    in_window: int
    replaced_draft: bool = False
    warnings: list[str] = field(default_factory=list)
    stored: StoreStats = field(default_factory=StoreStats)
    # Staff edits that no longer apply after the rebuild, one line each.
    stale_edits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    start: datetime
    cutoff: datetime


@dataclass
class Composed:
    """An edition's articles as the ranking and the staff's edits make them."""

    chosen: list[Ranked]
    in_window: int
    stale_edits: list[str]


def build_edition(
    factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    fetcher: Fetcher | None = None,
    *,
    actor: str = SYSTEM,
    cutoff: datetime | None = None,
) -> BuildReport:
    """Gather, then (re)build the draft for the week ending `cutoff` (default `now`: a
    person's build; the scheduler builds a slot's week ahead of it, at `now`). Refused
    (EditionStateError) when the week overlaps an approved, sending or sent edition, or when
    another build of the same week finished while this one gathered. A thin week raises
    EmptyWeekError after the edition is recorded as skipped; the error carries the source
    warnings."""
    cutoff = now if cutoff is None else cutoff
    specs = source_specs(settings)
    if not specs:
        raise GatherError("no [[sources]] configured: nothing to build an edition from")
    with factory() as session:
        specs = with_validators(session, specs)
        known = known_urls(session)
        window = week_of(session, settings, cutoff)
        seen = _version_at(session, cutoff)
    gathered = gather(
        specs, now=now, fetcher=fetcher, options=gather_options(settings, window.start, known)
    )
    warnings = source_warnings(gathered.reports)
    if not any(r.ok for r in gathered.reports):
        reasons = "; ".join(f"{r.url}: {r.error}" for r in gathered.reports)
        raise GatherError(f"no source could be read ({reasons})")
    try:
        with transaction(factory) as session:
            record_sources(session, gathered.reports, specs, now)
            stored = store_candidates(session, gathered.candidates, now)
            apply_picks(session, gathered.picks, complete=gathered.picks_complete, now=now)
            session.flush()
            window = week_of(session, settings, cutoff)
            edition, replaced = _edition_for(session, settings, window, now, seen, actor)
            composed = compose(session, edition, settings)
            write_items(session, edition, composed.chosen)
            thin = _thin_reason(composed, window, settings)
            if thin:
                lifecycle.move(session, edition, SKIPPED, actor, now, action="skipped", reason=thin)
                edition.status_reason = thin
    except IntegrityError:
        # The other build's edition took the cut-off first: the same "changed meanwhile" as
        # an edit racing a rebuild (the scheduler retries it; a person reads the message).
        raise lifecycle.EditionChanged(
            f"another build of the week ending {_local(cutoff, settings)} finished first; this one "
            "changed nothing (see `digest edition list`)"
        ) from None
    if thin:
        raise EmptyWeekError(f"{thin}; edition {edition.id} is recorded as skipped", warnings)
    return BuildReport(
        edition=edition,
        ranked=composed.chosen,
        sources=gathered.reports,
        candidates=len(gathered.candidates),
        in_window=composed.in_window,
        replaced_draft=replaced,
        warnings=warnings,
        stored=stored,
        stale_edits=composed.stale_edits,
    )


def week_of(session: Session, settings: Settings, cutoff: datetime) -> Window:
    """The week an edition with this cut-off carries: since the last approved or sent
    edition's cut-off when that is at most 2 x window_days back (nothing falls between two
    editions, and a skipped week's articles wait for the next one), else since window_days
    back (2 x window_days when the week before was skipped). Refused when it overlaps an
    approved, sending or sent edition: that week's readers would get it twice."""
    tz, days = settings.publication.tz, settings.newsletter.window_days
    plain, _ = week_window(cutoff, tz, days)
    reach, _ = week_window(cutoff, tz, 2 * days)
    last = session.scalar(
        select(func.max(Edition.cutoff)).where(
            Edition.status.in_(LOCKED_STATUSES), Edition.cutoff < cutoff
        )
    )
    if last is not None and last >= reach:
        start = last
    elif _skipped_between(session, plain, cutoff):
        start = reach
    else:
        start = plain
    other = lifecycle.overlapping(session, start, cutoff, None)
    if other is not None and other.cutoff != cutoff:
        tzname = settings.publication.timezone
        raise EditionStateError(
            f"the week ending {cutoff.astimezone(tz):%Y-%m-%d %H:%M} {tzname} overlaps edition "
            f"{other.id} ({other.window_start.astimezone(tz):%Y-%m-%d %H:%M} to "
            f"{other.cutoff.astimezone(tz):%Y-%m-%d %H:%M}), which is {other.status}: no edition "
            "was built"
        )
    return Window(start, cutoff)


def rank_cutoff(session: Session, settings: Settings, cutoff: datetime) -> WeekRanking:
    """What a build for this cut-off would rank, from the stored articles (nothing gathered,
    nothing written): its week, and the staff's edits of the edition it would rebuild."""
    window = week_of(session, settings, cutoff)
    existing = session.scalar(select(Edition).where(Edition.cutoff == cutoff))
    edits = list(existing.edits) if existing is not None else []
    own_id = existing.id if existing is not None else None
    return rank_week(session, settings, window.start, window.cutoff, edits, own_id)


def _skipped_between(session: Session, start: datetime, cutoff: datetime) -> bool:
    query = select(Edition.id).where(
        Edition.status == SKIPPED, Edition.cutoff >= start, Edition.cutoff < cutoff
    )
    return session.scalar(query.limit(1)) is not None


def _version_at(session: Session, cutoff: datetime) -> tuple[int, int] | None:
    row = session.execute(
        select(Edition.id, Edition.version).where(Edition.cutoff == cutoff)
    ).first()
    return None if row is None else (row[0], row[1])


def _edition_for(
    session: Session,
    settings: Settings,
    window: Window,
    now: datetime,
    seen: tuple[int, int] | None,
    actor: str,
) -> tuple[Edition, bool]:
    """The draft of this cut-off (rebuilt in place, edits kept) or a new one."""
    existing = session.scalar(select(Edition).where(Edition.cutoff == window.cutoff))
    if (existing is None) != (seen is None) or (
        existing is not None and seen != (existing.id, existing.version)
    ):
        raise lifecycle.EditionChanged(
            f"another build or an edit of the week ending {_local(window.cutoff, settings)} "
            "finished while this build gathered; this one changed nothing (see `digest edition "
            "list`)"
        )
    if existing is None:
        edition = Edition(
            status=DRAFT, window_start=window.start, cutoff=window.cutoff, created_at=now
        )
        _defaults(edition, settings)
        edition.built_at = now
        session.add(edition)
        session.flush()
        lifecycle.record(session, edition, "built", actor, now, from_status="")
        return edition, False
    if existing.status not in (DRAFT, SKIPPED, CANCELLED):
        raise EditionStateError(
            f"edition {existing.id} for this week is already {existing.status}; "
            "it cannot be rebuilt"
        )
    if existing.status != DRAFT:
        lifecycle.move(session, existing, DRAFT, actor, now, action="rebuilt")
        existing.status_reason = None
    else:
        lifecycle.record(session, existing, "rebuilt", actor, now)
    existing.window_start = window.start
    existing.built_at = now
    # A new version even when the row's values stay the same (a rebuild at the same `now`): a
    # build of this week that read the old one while gathering is refused, not mixed in.
    lifecycle.bump(session, existing, existing.version, "this build")
    return existing, True


def _local(moment: datetime, settings: Settings) -> str:
    """A moment as the people who read the error think of it: the publication's local time."""
    tz = settings.publication.tz
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} {settings.publication.timezone}"


def _default_texts(edition: Edition, settings: Settings) -> dict[str, str]:
    """Subject, preheader and intro as the configuration makes them for this cut-off."""
    nl = settings.newsletter
    local_cutoff = edition.cutoff.astimezone(settings.publication.tz)
    return {
        "subject": nl.subject.format(title=nl.title, date=date_label(local_cutoff)),
        "preheader": "",
        "intro": nl.intro,
    }


def _defaults(edition: Edition, settings: Settings) -> None:
    _set_texts(edition, _default_texts(edition, settings))


def _set_texts(edition: Edition, texts: dict[str, str]) -> None:
    edition.subject, edition.preheader, edition.intro = (
        texts["subject"],
        texts["preheader"],
        texts["intro"],
    )


def _thin_reason(composed: Composed, window: Window, settings: Settings) -> str | None:
    found, minimum = len(composed.chosen), settings.newsletter.min_items
    if found >= minimum:
        return None
    tz = settings.publication.tz
    return (
        f"only {found} article(s) between {window.start.astimezone(tz):%Y-%m-%d %H:%M} and "
        f"{window.cutoff.astimezone(tz):%Y-%m-%d %H:%M} {settings.publication.timezone} "
        f"(min_items is {minimum})"
    )


def compose(session: Session, edition: Edition, settings: Settings) -> Composed:
    """The week's candidates ranked with the staff's pins, drops and lead inside the ranking
    (digest.edition.ranking: articles another edition took stay out), then the staff's moves
    and texts applied in the order they were made."""
    week = rank_week(
        session, settings, edition.window_start, edition.cutoff, edition.edits, edition.id
    )
    stale = list(week.stale)
    chosen = _apply_moves(list(week.result.chosen), edition.edits, stale)
    _apply_texts(edition, settings)
    return Composed(chosen=chosen, in_window=week.in_window, stale_edits=stale)


def _apply_moves(
    chosen: list[Ranked], edits: Sequence[EditionEdit], stale: list[str]
) -> list[Ranked]:
    out = list(chosen)
    for e in edits:
        if e.kind != "move":
            continue
        at = next((i for i, r in enumerate(out) if article_id(r.candidate) == e.article_id), None)
        if at is None:
            stale.append(
                f"move of article {e.article_id} no longer applies: it is not in the edition"
            )
            continue
        item = out.pop(at)
        if "section" in e.value:
            section = str(e.value["section"])
            moved = item._replace(
                candidate=_with_section(item.candidate, section),
                reasons=(*item.reasons, f"moved to section {section} by {e.actor}"),
            )
            last = max(
                (i for i, r in enumerate(out) if r.candidate.section == section), default=None
            )
            out.insert(len(out) if last is None else last + 1, moved)
        else:
            position = max(1, min(int(e.value["position"]), len(out) + 1))
            out.insert(
                position - 1,
                item._replace(
                    reasons=(*item.reasons, f"moved to position {position} by {e.actor}")
                ),
            )
        out = _grouped(out)
    return out


def _with_section(candidate: Candidate, section: str) -> Candidate:
    return replace(candidate, section=section)


def _grouped(items: list[Ranked]) -> list[Ranked]:
    """Items stay with their section; sections come in the order of their first item (the
    email shows each section once, so this is the order a reader sees)."""
    order = list(dict.fromkeys(r.candidate.section or "" for r in items))
    return sorted(items, key=lambda r: order.index(r.candidate.section or ""))


def _apply_texts(edition: Edition, settings: Settings) -> None:
    defaults = _default_texts(edition, settings)
    texts = dict(defaults)
    for e in edition.edits:
        if e.kind in texts:
            # An empty text is "back to the default", not an empty subject or intro.
            texts[e.kind] = str(e.value["text"]) or defaults[e.kind]
    _set_texts(edition, texts)


def write_items(session: Session, edition: Edition, chosen: Sequence[Ranked]) -> None:
    """Replace the edition's items (deleted first: one article appears once per edition)."""
    edition.items.clear()
    session.flush()
    for position, r in enumerate(chosen, start=1):
        c = r.candidate
        edition.items.append(
            EditionItem(
                article_id=article_id(c),
                position=position,
                section=c.section or "",
                title=c.title,
                url=c.url,
                summary=c.summary,
                author=c.author,
                image_url=c.image_url,
                published_at=c.published_at,
                score=r.score,
                reasons=list(r.reasons),
                pinned=r.pinned,
            )
        )
    session.flush()


def published_article_ids(session: Session, own_id: int | None = None) -> set[int]:
    """Articles an approved, sending or sent edition carries: never repeated in another."""
    query = (
        select(EditionItem.article_id)
        .join(Edition, Edition.id == EditionItem.edition_id)
        .where(Edition.status.in_(LOCKED_STATUSES))
    )
    if own_id is not None:
        query = query.where(Edition.id != own_id)
    return set(session.scalars(query))


def source_warnings(reports: Sequence[SourceReport]) -> list[str]:
    """One line per failed source (URL and reason), then what was odd about the others."""
    failed = [f"source failed: {r.url}: {r.error}" for r in reports if not r.ok]
    odd = [f"{r.label}: {w}" for r in reports if r.ok for w in r.warnings]
    return failed + odd

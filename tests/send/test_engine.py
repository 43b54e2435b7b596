"""The send engine over the ledger with an in-process backend: exactly once, retries, splits,
unsubscribes mid-send, cancel, warm-up, throttling, resume."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.backends.base import (
    BackendConfigError,
    Batch,
    PermanentError,
    RecipientStatus,
    TransientError,
)
from digest.backends.memory import MemoryBackend
from digest.config import Settings
from digest.edition import preflight
from digest.errors import ConfigError, DeliveryError, UsageError
from digest.ledger import registry
from digest.ledger.tally import LedgerRow
from digest.send import claims, compose
from digest.send.engine import (
    begin,
    dry_run,
    resume,
    run,
    send_edition,
    send_test,
    work,
)
from digest.send.status import cancel
from digest.send.worker import WorkerReport
from digest.store.db import transaction
from digest.store.models import (
    ACCEPTED,
    CLAIMED,
    FAILED,
    PLANNED,
    SENT,
    SKIPPED,
    SUBMITTED,
    Delivery,
    Edition,
    EditionSend,
    SendBatch,
)
from subscribers.models import UNSUBSCRIBED, Subscriber
from subscribers.tokens import MANAGE, UNSUBSCRIBE, read_token
from tests.send_helpers import (
    SECTIONS,
    add_subscribers,
    ledger_rows,
    make_edition,
    with_delivery,
    with_values,
)
from tests.send_runtime import FakeTime


@pytest.fixture
def edition(factory: sessionmaker[Session], now: datetime) -> int:
    return make_edition(factory, now)


def _send(factory, settings, backend, now, clock: FakeTime | None = None, **kw):
    clock = clock or FakeTime(now)
    return send_edition(
        factory,
        settings,
        backend,
        edition_id=kw.pop("edition_id", None),
        now=now,
        runtime=clock.runtime(),
        **kw,
    )


def _rows(factory: sessionmaker[Session]) -> dict[str, LedgerRow]:
    return ledger_rows(factory)


def _accept(batch: Batch) -> list[RecipientStatus]:
    return [RecipientStatus(r.delivery_id, "accepted", "m") for r in batch.recipients]


def test_every_subscriber_gets_exactly_one_copy(factory, settings, edition, now) -> None:
    add_subscribers(factory, 25, now)
    backend = MemoryBackend()
    report = _send(factory, with_delivery(settings, batch_size=10), backend, now)
    assert Counter(backend.sent_to) == {f"user{i}@example.com": 1 for i in range(25)}
    assert sorted(len(b.recipients) for b in backend.batches) == [5, 10, 10]  # sent at once
    assert report.counts == {ACCEPTED: 25} and report.finished
    with factory() as session:
        assert session.get(Edition, edition).status == SENT  # type: ignore[union-attr]
        assert session.get(EditionSend, edition).state == "finished"  # type: ignore[union-attr]


def test_each_variant_is_rendered_once_and_batches_hold_one_variant(
    factory, settings, edition, now, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscribers(factory, 30, now, sections=[["Asia"], ["Europe", "Asia"], None])
    calls: list[tuple[str, ...] | None] = []
    real = compose.render_edition

    def counting(view, brand, sections=None):
        calls.append(tuple(sections) if sections else None)
        return real(view, brand, sections)

    monkeypatch.setattr(compose, "render_edition", counting)
    monkeypatch.setattr(preflight, "render_edition", counting)
    backend = MemoryBackend()
    _send(factory, with_delivery(settings, batch_size=4), backend, now)
    # Once each, by the preflight before the start: the send uses what it rendered.
    assert len(calls) == 3 == len(set(calls))
    assert len(backend.batches) >= 9
    rows = _rows(factory)
    for batch in backend.batches:
        assert len({rows[r.email].variant for r in batch.recipients}) == 1


def test_links_and_unsubscribe_headers_are_personal(factory, settings, edition, now) -> None:
    add_subscribers(factory, 3, now)
    backend = MemoryBackend()
    _send(factory, with_delivery(settings, unsubscribe_mailto="unsub@news.example"), backend, now)
    urls = set()
    for r in backend.batches[0].recipients:
        url = r.substitutions["%%unsubscribe_url%%"]
        assert url.startswith("http://127.0.0.1:8000/u/")
        assert (
            r.headers["List-Unsubscribe"]
            == f"<{url}>, <mailto:unsub@news.example?subject=unsubscribe>"
        )
        assert r.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert r.substitutions["%%manage_url%%"].startswith("http://127.0.0.1:8000/manage/")
        urls.add(url)
        # The tokens are the subscriber's own, for their purpose (what the web app reads).
        with factory() as session:
            public_id = session.scalar(
                select(Subscriber.public_id).where(Subscriber.email == r.email)
            )
        keys = settings.secret_keys()
        assert read_token(keys, UNSUBSCRIBE, url.rsplit("/", 1)[1], now) == public_id
        manage = r.substitutions["%%manage_url%%"].rsplit("/", 1)[1]
        assert read_token(keys, MANAGE, manage, now) == public_id
    assert len(urls) == 3
    assert backend.batches[0].headers["List-Id"]


def test_an_unsubscribe_during_the_send_is_honoured_for_unclaimed_batches(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 9, now)

    def unsubscribe_user8_then_accept(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            session.execute(
                update(Subscriber)
                .where(Subscriber.email == "user8@example.com")
                .values(status=UNSUBSCRIBED)
            )
        return _accept(batch)

    backend = MemoryBackend(unsubscribe_user8_then_accept)
    # One batch at a time: user8's (the third) is claimed after the first was sent.
    report = _send(factory, with_delivery(settings, batch_size=3, concurrency=1), backend, now)
    assert "user8@example.com" not in backend.sent_to
    assert len(backend.sent_to) == 8
    assert _rows(factory)["user8@example.com"].status == SKIPPED
    assert report.counts[SKIPPED] == 1 and report.finished


def _change_user8_then_accept(
    factory: sessionmaker[Session], **values: object
) -> Callable[[Batch], list[RecipientStatus]]:
    def respond(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            session.execute(
                update(Subscriber).where(Subscriber.email == "user8@example.com").values(**values)
            )
        return _accept(batch)

    return respond


@pytest.mark.parametrize(
    "change",
    [
        {"paused_until": datetime(2027, 1, 1, tzinfo=UTC)},  # paused for a few weeks
        {"sections": ["Sports"]},  # none of this edition's sections any more
    ],
    ids=["paused", "left-the-sections"],
)
def test_a_pause_or_section_change_during_the_send_is_honoured_for_unclaimed_batches(
    factory, settings, edition, now, change: dict[str, object]
) -> None:
    add_subscribers(factory, 9, now)
    backend = MemoryBackend(_change_user8_then_accept(factory, **change))
    report = _send(factory, with_delivery(settings, batch_size=3, concurrency=1), backend, now)
    assert "user8@example.com" not in backend.sent_to and len(backend.sent_to) == 8
    assert _rows(factory)["user8@example.com"].status == SKIPPED
    assert report.counts[SKIPPED] == 1 and report.finished


def test_dropping_one_of_several_sections_during_the_send_still_gets_the_frozen_variant(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 9, now)
    backend = MemoryBackend(_change_user8_then_accept(factory, sections=[SECTIONS[0]]))
    _send(factory, with_delivery(settings, batch_size=3), backend, now)
    assert "user8@example.com" in backend.sent_to


def _flaky(failures: list[Exception]) -> Callable[[Batch], list[RecipientStatus]]:
    def respond(batch: Batch) -> list[RecipientStatus]:
        if failures:
            raise failures.pop(0)
        return _accept(batch)

    return respond


def test_transient_errors_are_retried_with_jittered_exponential_backoff(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 4, now)
    backend = MemoryBackend(_flaky([TransientError("503"), TransientError("503")]))
    clock = FakeTime(now)
    s = with_delivery(settings, retry_base_delay=2.0, retry_max_attempts=5)
    report = _send(factory, s, backend, now, clock)
    assert report.counts[ACCEPTED] == 4
    first, second = [w for w in clock.slept if w > 0][:2]
    assert 1.0 <= first <= 2.0 and 2.0 <= second <= 4.0  # base·2^(n-1), half of it random
    assert {d.attempts for d in _rows(factory).values()} == {3}


def test_backoff_is_reproducible_with_a_seed(factory, settings, edition, now) -> None:
    add_subscribers(factory, 2, now)
    waits = []
    for _ in range(2):
        with transaction(factory) as session:
            session.execute(update(Edition).values(status="approved"))
            session.execute(Delivery.__table__.delete())
            session.execute(SendBatch.__table__.delete())
            session.execute(EditionSend.__table__.delete())
        clock = FakeTime(now, seed=3)
        _send(factory, settings, MemoryBackend(_flaky([TransientError("500")])), now, clock)
        waits.append(clock.slept)
    assert waits[0] == waits[1]


def test_the_providers_retry_after_is_honoured(factory, settings, edition, now) -> None:
    add_subscribers(factory, 2, now)
    backend = MemoryBackend(_flaky([TransientError("429", retry_after=17.0)]))
    clock = FakeTime(now)
    _send(factory, settings, backend, now, clock)
    assert sum(clock.slept) == pytest.approx(17.0)  # naps of at most 5 s, to notice a cancel


def test_gives_up_after_the_last_attempt_and_keeps_the_reason(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 2, now)
    backend = MemoryBackend(_flaky([TransientError("SendGrid 500: boom")] * 10))
    report = _send(factory, with_delivery(settings, retry_max_attempts=3), backend, now)
    rows = _rows(factory)
    assert {r.status for r in rows.values()} == {FAILED}
    assert rows["user0@example.com"].error == "gave up after 3 tries: SendGrid 500: boom"
    assert len(backend.batches) == 3
    assert report.counts[FAILED] == 2 and report.finished


def _refusing(bad: str, *, blame: bool) -> Callable[[Batch], list[RecipientStatus]]:
    def respond(batch: Batch) -> list[RecipientStatus]:
        emails = [r.email for r in batch.recipients]
        if bad in emails:
            index = emails.index(bad) if blame else None
            raise PermanentError("SendGrid 400: Does not contain a valid address.", bad_index=index)
        return _accept(batch)

    return respond


@pytest.mark.parametrize("blame", [True, False], ids=["blamed", "bisected"])
def test_a_batch_refused_for_one_address_still_reaches_the_others(
    factory, settings, edition, now, blame: bool
) -> None:
    add_subscribers(factory, 16, now)
    backend = MemoryBackend(_refusing("user11@example.com", blame=blame))
    report = _send(factory, with_delivery(settings, batch_size=16), backend, now)
    rows = _rows(factory)
    assert rows["user11@example.com"].status == FAILED
    assert "Does not contain a valid address" in (rows["user11@example.com"].error or "")
    assert Counter(backend.sent_to)["user0@example.com"] >= 1
    accepted = [e for e, r in rows.items() if r.status == ACCEPTED]
    assert len(accepted) == 15 and report.counts[ACCEPTED] == 15
    assert len(backend.batches) <= (3 if blame else 9)


def test_bad_credentials_stop_the_send_and_leave_rows_planned(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 3, now)
    backend = MemoryBackend(_flaky([BackendConfigError("SendGrid refused the API key (401)")]))
    with pytest.raises(DeliveryError, match=r"refused the API key \(401\)"):
        _send(factory, settings, backend, now)
    assert {r.status for r in _rows(factory).values()} == {PLANNED}


def test_a_recipient_the_backend_cannot_vouch_for_stays_uncertain(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 3, now)

    def lose_user1(batch: Batch) -> list[RecipientStatus]:
        return [s for s in _accept(batch) if s.delivery_id != 2]

    report = _send(factory, settings, MemoryBackend(lose_user1), now)
    assert not report.finished
    assert _rows(factory)["user1@example.com"].status == SUBMITTED
    resumed = resume(factory, settings, edition, now)
    assert resumed.uncertain == [2]
    again = MemoryBackend()
    report = _send(
        factory, settings, again, now, edition_id=edition, resume_send=True, resend_uncertain=True
    )
    assert again.sent_to == ["user1@example.com"] and report.finished


def _timeout() -> TransientError:
    return TransientError("SendGrid did not answer in 30 s", maybe_sent=True)


def test_a_timeout_is_not_sent_again_when_retry_on_timeout_is_off(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 3, now)
    backend = MemoryBackend(_flaky([_timeout()]))
    s = with_delivery(settings, retry_on_timeout=False)
    report = _send(factory, s, backend, now)
    assert len(backend.batches) == 1  # the provider may have it: no second request
    assert not report.finished
    assert {r.status for r in _rows(factory).values()} == {SUBMITTED}
    assert sorted(resume(factory, s, edition, now).uncertain) == [1, 2, 3]


def test_a_timeout_is_sent_again_by_default(factory, settings, edition, now) -> None:
    add_subscribers(factory, 3, now)
    backend = MemoryBackend(_flaky([_timeout()]))
    report = _send(factory, settings, backend, now)
    assert len(backend.batches) == 2 and report.finished
    assert report.counts[ACCEPTED] == 3


def test_a_long_provider_wait_is_honoured_beyond_our_own_backoff_cap(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 2, now)
    backend = MemoryBackend(_flaky([TransientError("429", retry_after=900.0)]))
    clock = FakeTime(now)
    s = with_delivery(settings, retry_max_delay=60.0)
    report = _send(factory, s, backend, now, clock)
    assert report.finished and sum(clock.slept) == pytest.approx(900.0)


def test_cancel_stops_claiming_and_resume_continues(factory, settings, edition, now) -> None:
    add_subscribers(factory, 9, now)

    def cancel_after_first(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            cancel(session, edition, now)
        return _accept(batch)

    s = with_delivery(settings, batch_size=3, concurrency=1)
    report = _send(factory, s, MemoryBackend(cancel_after_first), now)
    assert report.stopped == "cancelled" and not report.finished
    assert report.counts == {ACCEPTED: 3, PLANNED: 6}
    rest = MemoryBackend()
    report = _send(factory, s, rest, now, edition_id=edition, resume_send=True)
    assert len(rest.sent_to) == 6 and report.finished


def test_resume_sends_the_claimed_rows_of_a_crashed_worker(factory, settings, edition, now) -> None:
    from digest.ledger import registry
    from digest.send import claims

    add_subscribers(factory, 5, now)
    begin(factory, edition, now)
    with transaction(factory) as session:
        dead = registry.register_worker(session, edition, now)
        assert claims.claim(session, edition, dead, 2, now) is not None
        registry.stop_worker(session, dead, now)
    assert Counter(r.status for r in _rows(factory).values()) == {CLAIMED: 2, PLANNED: 3}
    backend = MemoryBackend()
    report = _send(factory, settings, backend, now, edition_id=edition, resume_send=True)
    assert report.released == 2
    assert sorted(backend.sent_to) == [f"user{i}@example.com" for i in range(5)]


def test_deferred_recipients_are_tried_again_when_due(factory, settings, edition, now) -> None:
    add_subscribers(factory, 3, now)
    seen: Counter[str] = Counter()

    def greylist_user2(batch: Batch) -> list[RecipientStatus]:
        out = []
        for r in batch.recipients:
            seen[r.email] += 1
            if r.email == "user2@example.com" and seen[r.email] == 1:
                out.append(RecipientStatus(r.delivery_id, "deferred", reason="SMTP 451 later"))
            else:
                out.append(RecipientStatus(r.delivery_id, "accepted", "m"))
        return out

    clock = FakeTime(now)
    report = _send(factory, settings, MemoryBackend(greylist_user2), now, clock)
    assert seen["user2@example.com"] == 2 and report.finished
    assert _rows(factory)["user2@example.com"].status == ACCEPTED
    assert sum(clock.slept) >= 1.0


def test_the_warm_up_cap_stops_the_send_for_the_day(factory, settings, edition, now) -> None:
    add_subscribers(factory, 10, now)
    s = with_delivery(settings, warmup_start=date(2026, 11, 20), warmup_daily=[4, 100])
    clock = FakeTime(now)
    report = _send(factory, s, MemoryBackend(), now, clock)
    assert report.stopped == "warm-up" and report.counts[ACCEPTED] == 4
    clock.now += timedelta(days=1)
    report = _send(factory, s, MemoryBackend(), now, clock, edition_id=edition, resume_send=True)
    assert report.counts[ACCEPTED] == 10 and report.finished


def test_the_warm_up_cap_counts_what_another_worker_has_claimed(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 10, now)
    s = with_delivery(settings, warmup_start=date(2026, 11, 20), warmup_daily=[5])
    begin(factory, edition, now, batch_size=3)
    with transaction(factory) as session:  # another worker holds a batch of 3, not sent yet
        held = claims.claim(session, edition, 99, 3, now)
    assert held is not None and len(held.rows) == 3
    backend = MemoryBackend()
    report = run(factory, s, backend, edition, runtime=FakeTime(now).runtime())
    assert len(backend.sent_to) == 2 and report.stopped == "warm-up"


def test_the_rate_per_second_paces_batches(factory, settings, edition, now) -> None:
    add_subscribers(factory, 20, now)
    clock = FakeTime(now)
    backend = MemoryBackend()
    _send(factory, with_delivery(settings, rate_per_second=5), backend, now, clock)
    assert {len(b.recipients) for b in backend.batches} == {5}
    assert sum(clock.slept) == pytest.approx(3.0)


def test_a_test_send_touches_neither_ledger_nor_edition(factory, settings, edition, now) -> None:
    add_subscribers(factory, 3, now)
    backend = MemoryBackend()
    batch, statuses = send_test(settings, backend, factory, edition, ["a@x.example"], now)
    assert backend.sent_to == ["a@x.example"] and batch.test
    assert batch.subject.startswith("[TEST] ")
    assert [s.status for s in statuses] == ["accepted"]
    with factory() as session:
        assert session.scalar(select(Delivery.id)) is None
        assert session.get(Edition, edition).status == "approved"  # type: ignore[union-attr]


def test_dry_run_counts_variants_and_writes_nothing(factory, settings, edition, now) -> None:
    add_subscribers(factory, 6, now, sections=[["Asia"], None])
    report = dry_run(factory, settings, edition, now)
    assert report.planned == 6 and len(report.variants) == 2
    with factory() as session:
        assert session.scalar(select(Delivery.id)) is None


def test_sqlite_refuses_a_second_live_worker(factory, settings: Settings, edition, now) -> None:
    from digest.errors import EditionStateError
    from digest.ledger import registry

    add_subscribers(factory, 2, now)
    begin(factory, edition, now)
    with transaction(factory) as session:
        registry.register_worker(session, edition, now)  # this process: alive
    with pytest.raises(EditionStateError, match="SQLite runs one worker"):
        _send(factory, settings, MemoryBackend(), now, edition_id=edition, resume_send=True)


def test_a_deferred_row_a_crashed_worker_held_is_sent_after_resume(
    factory, settings, edition, now
) -> None:
    from digest.ledger import registry
    from digest.send import claims

    add_subscribers(factory, 3, now)
    begin(factory, edition, now)
    with transaction(factory) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == 1)
            .values(status="deferred", not_before=now - timedelta(seconds=1), attempts=1)
        )
        session.execute(update(Delivery).where(Delivery.id > 1).values(status="accepted"))
        dead = registry.register_worker(session, edition, now)
        claimed = claims.claim(session, edition, dead, 10, now)
        assert claimed is not None and [r.delivery_id for r in claimed.rows] == [1]
        registry.stop_worker(session, dead, now)
    backend = MemoryBackend()
    report = _send(factory, settings, backend, now, edition_id=edition, resume_send=True)
    assert backend.sent_to == ["user0@example.com"]
    assert report.finished and report.released == 1


# --- the one entry point: progress, the SQLite rule, the worker loop ---------------------------


class _Recorded:
    """A Progress that keeps what it was told."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.dones: list[int] = []

    def total(self, count: int) -> None:
        self.totals.append(count)

    def done(self, count: int) -> None:
        self.dones.append(count)


def test_progress_hears_the_total_then_a_running_count(factory, settings, edition, now) -> None:
    add_subscribers(factory, 7, now)
    progress = _Recorded()
    _send(factory, with_delivery(settings, batch_size=3), MemoryBackend(), now, progress=progress)
    assert progress.totals == [7]
    assert progress.dones == sorted(progress.dones) and progress.dones[-1] == 7


def test_progress_of_a_resume_counts_only_what_is_left(factory, settings, edition, now) -> None:
    add_subscribers(factory, 9, now)

    def cancel_after_first(batch: Batch) -> list[RecipientStatus]:
        with transaction(factory) as session:
            cancel(session, edition, now)
        return _accept(batch)

    s = with_delivery(settings, batch_size=3, concurrency=1)
    _send(factory, s, MemoryBackend(cancel_after_first), now)
    progress = _Recorded()
    _send(factory, s, MemoryBackend(), now, edition_id=edition, resume_send=True, progress=progress)
    assert progress.totals == [6] and progress.dones[-1] == 6


@pytest.mark.parametrize("how", ["argument", "setting"])
def test_more_than_one_worker_on_sqlite_is_refused_before_anything_starts(
    factory, settings, edition, now, how: str
) -> None:
    add_subscribers(factory, 2, now)
    if how == "argument":
        s, kw = settings, {"workers": 3}
    else:
        s, kw = with_delivery(settings, workers=3), {}
    with pytest.raises(UsageError) as refused:
        _send(factory, s, MemoryBackend(), now, **kw)
    assert str(refused.value) == (
        "--workers 3 needs PostgreSQL: SQLite runs one worker per send "
        "(set [database] url to a postgresql+psycopg:// URL, or use --workers 1)"
    )
    with factory() as session:
        assert session.get(Edition, edition).status == "approved"  # type: ignore[union-attr]
        assert session.scalar(select(Delivery.id)) is None


def test_without_a_secret_key_the_edition_is_not_marked_as_being_sent(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 2, now)
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY is not set"):
        _send(factory, with_values(settings, secret_key=None), MemoryBackend(), now)
    with factory() as session:
        assert session.get(Edition, edition).status == "approved"  # type: ignore[union-attr]


def test_the_default_backend_is_the_configured_one(factory, settings, edition, now) -> None:
    add_subscribers(factory, 2, now)
    report = send_edition(factory, settings, edition_id=edition, now=now)
    assert report.finished and report.counts == {ACCEPTED: 2}
    assert len(list((Path(settings.delivery.outbox_dir) / f"edition-{edition}").glob("*.eml"))) == 2


def test_running_editions_are_those_being_sent_and_not_cancelled(factory, now) -> None:
    draft, running, cancelled, finished = (make_edition(factory, now) for _ in range(4))
    add_subscribers(factory, 1, now)
    for eid in (running, cancelled, finished):
        begin(factory, eid, now)
    with transaction(factory) as session:
        cancel(session, cancelled, now)
        session.execute(update(Edition).where(Edition.id == finished).values(status="sent"))
    with factory() as session:
        assert registry.running_editions(session) == [running]
        assert registry.running_editions(session, running) == [running]
        assert registry.running_editions(session, draft) == []


def test_the_worker_loop_until_done_sends_every_running_edition(factory, settings, now) -> None:
    first, second = make_edition(factory, now), make_edition(factory, now)
    add_subscribers(factory, 4, now)
    begin(factory, first, now)
    begin(factory, second, now)
    backend = MemoryBackend()
    runs: list[tuple[int, Counter[str]]] = []
    work(
        factory,
        settings,
        backend,
        until_done=True,
        runtime=FakeTime(now).runtime(),
        on_run=lambda eid, report: runs.append((eid, report.counts)),
    )
    assert runs == [(first, Counter({ACCEPTED: 4})), (second, Counter({ACCEPTED: 4}))]
    with factory() as session:
        assert {session.get(Edition, e).status for e in (first, second)} == {SENT}  # type: ignore[union-attr]


def test_the_worker_loop_stops_while_waiting_once_its_flag_is_set(factory, settings, now) -> None:
    clock = FakeTime(now)
    stop = [False]
    idle: list[bool] = []

    def on_idle() -> None:
        idle.append(True)
        stop[0] = True  # as SIGTERM does

    work(
        factory,
        settings,
        MemoryBackend(),
        poll_s=60.0,
        stop=lambda: stop[0],
        runtime=clock.runtime(),
        on_idle=on_idle,
    )
    assert idle == [True] and clock.slept == []


def test_the_worker_loop_polls_until_a_send_appears(factory, settings, edition, now) -> None:
    add_subscribers(factory, 3, now)
    clock = FakeTime(now)
    stop = [False]
    runs: list[Counter[str]] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 7:  # the send starts while the worker waits
            begin(factory, edition, now)

    runtime = clock.runtime()
    runtime.sleep = sleep

    def on_run(eid: int, report: WorkerReport) -> None:
        runs.append(report.counts)
        stop[0] = True

    work(
        factory,
        settings,
        MemoryBackend(),
        poll_s=1.0,
        stop=lambda: stop[0],
        runtime=runtime,
        on_run=on_run,
    )
    assert runs == [Counter({ACCEPTED: 3})]
    assert max(clock.slept) <= 0.2  # short naps, so that SIGTERM is noticed at once
    with factory() as session:
        assert session.get(Edition, edition).status == SENT  # type: ignore[union-attr]


def test_the_worker_loop_stops_between_batches_when_its_flag_is_set(
    factory, settings, edition, now
) -> None:
    add_subscribers(factory, 9, now)
    begin(factory, edition, now, batch_size=3)
    stop = [False]

    def stop_after_first(batch: Batch) -> list[RecipientStatus]:
        stop[0] = True
        return _accept(batch)

    runs: list[WorkerReport] = []
    s = with_delivery(settings, batch_size=3, concurrency=1)
    work(
        factory,
        s,
        MemoryBackend(stop_after_first),
        stop=lambda: stop[0],
        runtime=FakeTime(now).runtime(),
        on_run=lambda eid, report: runs.append(report),
    )
    assert [(r.stopped, r.counts) for r in runs] == [("stopped", Counter({ACCEPTED: 3}))]
    assert Counter(r.status for r in _rows(factory).values()) == {ACCEPTED: 3, PLANNED: 6}
    with factory() as session:
        assert session.get(Edition, edition).status == "sending"  # type: ignore[union-attr]

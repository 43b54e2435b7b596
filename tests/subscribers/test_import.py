"""CSV import and export: every bad row named, nothing half-imported, opt-outs never undone."""

from __future__ import annotations

import io
import json
import shutil
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.db import make_engine, session_factory
from subscribers.consent import Evidence
from subscribers.errors import SubscriberError
from subscribers.export import write_csv, write_json
from subscribers.importer import CHUNK, ImportResult, InvalidFile, Options, import_file
from subscribers.lifecycle import (
    Policy,
    erase,
    find_by_email,
    is_suppressed,
    recipients_for,
    unsubscribe,
)
from subscribers.models import ACTIVE, PENDING, UNSUBSCRIBED, Consent, Subscriber
from tests.conftest import EXAMPLES, TEST_SECRET
from tests.subscribers_helpers import SECTIONS

KEYS = [TEST_SECRET]
HEADER = "email,name,sections,status,source,consented_at\n"
OK_ROW = "ok@example.com,Ok,,active,web form,2026-01-01T00:00:00Z\n"


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(
    session: Session, path: Path, now: datetime, *, skip: bool = False, **options: object
) -> ImportResult:
    opts = Options(SECTIONS, now, **options)  # type: ignore[arg-type]
    return import_file(session, path, options=opts, keys=KEYS, skip_invalid=skip)


def errors_of(session: Session, path: Path, now: datetime) -> list[str]:
    with pytest.raises(InvalidFile) as exc:
        run(session, path, now)
    return [str(e) for e in exc.value.errors]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Subscriber)) or 0)


def test_the_demo_list_imports_with_its_statuses(session, now) -> None:
    result = run(session, EXAMPLES / "subscribers.csv", now)
    assert (result.added, result.updated, result.unchanged) == (20, 0, 0)
    query = select(Subscriber.status, func.count()).group_by(Subscriber.status)
    statuses = {status: n for status, n in session.execute(query)}
    assert statuses == {ACTIVE: 15, PENDING: 4, UNSUBSCRIBED: 1}
    assert len(list(recipients_for(session, SECTIONS, now))) == 15


def test_row_level_evidence_is_kept(session, now) -> None:
    run(session, EXAMPLES / "subscribers.csv", now)
    sub = find_by_email(session, "priya.raman@example.net")
    assert sub is not None and sub.confirmed_at == datetime.fromisoformat("2026-09-18T16:05:00Z")
    event = sub.consents[0]
    assert (event.event, event.source) == ("import", "conference sign-up sheet 2026-09")
    assert event.detail and event.detail["file"] == "subscribers.csv" and event.detail["line"] == 13


def test_running_the_same_file_again_changes_nothing(session, now) -> None:
    run(session, EXAMPLES / "subscribers.csv", now)
    before = io.StringIO()
    write_csv(session, before)
    consents = session.scalar(select(func.count()).select_from(Consent))
    again = run(session, EXAMPLES / "subscribers.csv", now)
    after = io.StringIO()
    write_csv(session, after)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 20)
    assert after.getvalue() == before.getvalue()
    assert session.scalar(select(func.count()).select_from(Consent)) == consents


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(
    session, now, tmp_path
) -> None:
    path = write(
        tmp_path,
        HEADER
        + OK_ROW
        + "not-an-address,,,,,\n"
        + "ok@example.com,Again,,,,\n"
        + "sport@example.com,,Sport;Europe,,,\n"
        + "status@example.com,,,subscribed,,\n"
        + "date@example.com,,,active,form,last tuesday\n"
        + "future@example.com,,,active,form,2030-01-01T00:00:00Z\n"
        + "noproof@example.com,,,active,,\n"
        + "wide@example.com,,,,,,extra\n",
    )
    errors = errors_of(session, path, now)
    assert errors[0].startswith("line 3: invalid email address 'not-an-address'")
    assert errors[1] == "line 4: duplicate of line 2: ok@example.com"
    assert errors[2].startswith("line 5: unknown section(s) 'Sport'")
    assert errors[3].startswith("line 6: unknown status 'subscribed'")
    assert errors[4].startswith("line 7: consented_at is not an ISO-8601 date-time")
    assert errors[5] == "line 8: consented_at '2030-01-01T00:00:00Z' is in the future"
    assert errors[6].startswith("line 9: status 'active' needs consent evidence")
    assert errors[7] == "line 10: 7 fields but the header has 6 columns"
    assert len(errors) == 8
    assert count(session) == 0


def test_skip_invalid_imports_the_good_rows_and_lists_the_bad(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + OK_ROW + "broken,,,,,\n")
    result = run(session, path, now, skip=True)
    assert result.added == 1
    assert [e.line for e in result.errors] == [3]


def test_a_quoted_field_over_two_lines_keeps_the_line_numbers_right(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + 'multi@example.com,"Two\nLines",,,,\n' + "bad,,,,,\n")
    assert errors_of(session, path, now)[0].startswith("line 4: invalid email")


def test_an_unclosed_quote_is_reported_and_nothing_is_imported(session, now, tmp_path) -> None:
    text = HEADER + OK_ROW + '"open@example.com,Never closed,,,,\n' + OK_ROW.replace("ok@", "k2@")
    path = write(tmp_path, text)
    errors = errors_of(session, path, now)
    assert len(errors) == 1 and errors[0].startswith("line 3: ")
    assert count(session) == 0


def test_addresses_are_normalised_before_the_duplicate_check(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + "Ann@Example.com,,,,,\n" + " ann@example.COM ,,,,,\n")
    assert errors_of(session, path, now) == ["line 3: duplicate of line 2: ann@example.com"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file is empty"),
        ("name,status\nAnn,active\n", "line 1: the header has no 'email' column"),
        ("email,stauts\na@example.com,active\n", "line 1: unknown column(s) 'stauts'"),
        ("email,email\na@example.com,b@example.com\n", "line 1: column(s) named twice: email"),
    ],
)
def test_a_bad_header_is_one_clear_error(session, now, tmp_path, text: str, message: str) -> None:
    assert errors_of(session, write(tmp_path, text), now)[0].startswith(message)


def test_a_file_that_is_not_utf8_names_the_line(session, now, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "m@example.com,Müller,,,,\n").encode("latin-1"))
    assert errors_of(session, path, now) == [
        "line 2: not UTF-8 (byte 0xfc); save the file as UTF-8"
    ]


def test_a_byte_order_mark_is_fine(session, now, tmp_path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + OK_ROW).encode("utf-8"))
    assert run(session, path, now).added == 1


def test_an_unsubscribed_address_is_never_added_back(session, now, tmp_path) -> None:
    run(session, write(tmp_path, HEADER + OK_ROW), now)
    sub = find_by_email(session, "ok@example.com")
    assert sub is not None
    unsubscribe(
        session, sub, evidence=Evidence("page"), now=now, keys=KEYS, policy=Policy(SECTIONS)
    )
    result = run(session, write(tmp_path, HEADER + OK_ROW, "again.csv"), now)
    assert result.suppressed == [2]
    assert sub.status == UNSUBSCRIBED


def test_an_erased_address_is_never_added_back(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + OK_ROW)
    run(session, path, now)
    erase(session, find_by_email(session, "ok@example.com"), now=now, keys=KEYS)  # type: ignore[arg-type]
    result = run(session, path, now)
    assert (result.added, result.suppressed) == (0, [2])
    assert count(session) == 0


def test_an_opt_out_in_the_file_goes_on_the_suppression_list(session, now, tmp_path) -> None:
    run(session, write(tmp_path, HEADER + "out@example.com,,,unsubscribed,,\n"), now)
    assert is_suppressed(session, "out@example.com", KEYS)
    later = write(
        tmp_path, HEADER + "out@example.com,,,active,form,2026-01-01T00:00:00Z\n", "b.csv"
    )
    assert run(session, later, now).suppressed == [2]


def test_an_opt_out_in_the_file_unsubscribes_an_existing_subscriber(session, now, tmp_path) -> None:
    run(session, write(tmp_path, HEADER + OK_ROW), now)
    result = run(
        session, write(tmp_path, HEADER + "ok@example.com,,,unsubscribed,,\n", "b.csv"), now
    )
    assert result.updated == 1
    assert find_by_email(session, "ok@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]


def test_an_existing_subscribers_own_choices_are_kept(session, now, tmp_path) -> None:
    run(
        session,
        write(tmp_path, HEADER + "keep@example.com,,Asia,active,form,2026-01-01T00:00:00Z\n"),
        now,
    )
    other = HEADER + "keep@example.com,Kim,Europe,pending,,\n"
    result = run(session, write(tmp_path, other, "b.csv"), now)
    sub = find_by_email(session, "keep@example.com")
    assert sub is not None and (sub.status, sub.sections, sub.name) == (ACTIVE, ["Asia"], "Kim")
    assert result.updated == 1  # only the missing name was filled in


def test_evidence_in_the_file_activates_a_pending_subscriber(session, now, tmp_path) -> None:
    run(session, write(tmp_path, HEADER + "wait@example.com,,,pending,,\n"), now)
    proof = HEADER + "wait@example.com,,,active,paper form,2026-02-01T10:00:00Z\n"
    assert run(session, write(tmp_path, proof, "b.csv"), now).updated == 1
    assert find_by_email(session, "wait@example.com").status == ACTIVE  # type: ignore[union-attr]


def test_confirmed_needs_a_source() -> None:
    with pytest.raises(SubscriberError, match="--confirmed needs --source"):
        Options(SECTIONS, datetime.now().astimezone(), confirmed=True)


def test_confirmed_makes_rows_active_with_the_source_as_evidence(session, now, tmp_path) -> None:
    path = write(tmp_path, "email\nplain@example.com\n")
    run(session, path, now, confirmed=True, source="old CRM export, opt-in column = yes")
    sub = find_by_email(session, "plain@example.com")
    assert sub is not None and sub.status == ACTIVE
    assert sub.consents[0].source == "old CRM export, opt-in column = yes"


def test_confirmed_never_turns_an_opt_out_into_a_subscriber(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + "no@example.com,,,unsubscribed,,\n")
    run(session, path, now, confirmed=True, source="crm")
    assert find_by_email(session, "no@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]


def test_an_export_imports_into_an_empty_database_unchanged(
    session, now, tmp_path, template_db
) -> None:
    run(session, EXAMPLES / "subscribers.csv", now)
    session.commit()
    exported = tmp_path / "export.csv"
    with exported.open("w", encoding="utf-8", newline="") as out:
        write_csv(session, out)
    copy = tmp_path / "second.db"
    shutil.copy(template_db, copy)
    engine = make_engine(f"sqlite:///{copy}")
    with session_factory(engine)() as other:
        assert run(other, exported, now).added == 20
        query = select(Subscriber.email, Subscriber.status, Subscriber.sections, Subscriber.name)
        assert sorted(other.execute(query).all()) == sorted(session.execute(query).all())
    engine.dispose()


def test_the_json_export_has_each_persons_consent_history(session, now) -> None:
    run(session, EXAMPLES / "subscribers.csv", now)
    out = io.StringIO()
    assert write_json(session, out, KEYS, status=UNSUBSCRIBED) == 1
    (person,) = json.loads(out.getvalue())
    assert person["subscriber"]["email"] == "g.harrington@example.org"
    assert person["consent_history"][0]["source"] == "website signup form"
    assert person["suppression"]["reason"] == "unsubscribed"


def test_an_empty_export_is_valid_json(session) -> None:
    out = io.StringIO()
    write_json(session, out, KEYS)
    assert json.loads(out.getvalue()) == []


def test_a_file_of_several_chunks_keeps_every_rows_own_values(session, now, tmp_path) -> None:
    """Rows go to the database in bulk, a chunk at a time; each still gets its own timestamps,
    sections, evidence and (for an opt-out) suppression entry, as the rules say."""
    statuses = (ACTIVE, PENDING, UNSUBSCRIBED)
    lines = [HEADER.strip()]
    for i in range(2 * CHUNK + 7):
        status = statuses[i % 3]
        sections = ";".join(SECTIONS[: i % 4])
        evidence = f"form {i},2026-01-{i % 28 + 1:02d}T08:00:00Z" if status == ACTIVE else ","
        lines.append(f"r{i}@example.com,Reader {i},{sections},{status},{evidence}")
    result = run(session, write(tmp_path, "\n".join(lines) + "\n"), now)
    assert (result.added, result.updated, result.unchanged) == (2 * CHUNK + 7, 0, 0)
    session.commit()
    subs = session.scalars(select(Subscriber).order_by(Subscriber.id)).all()
    assert [s.email for s in subs] == [f"r{i}@example.com" for i in range(2 * CHUNK + 7)]
    for i, sub in enumerate(subs):
        status = statuses[i % 3]
        consented = datetime(2026, 1, i % 28 + 1, 8, tzinfo=now.tzinfo)
        when = consented if status == ACTIVE else now
        assert (sub.status, sub.name, sub.created_at, sub.updated_at) == (
            status,
            f"Reader {i}",
            when,
            now,
        )
        assert sub.sections == (list(SECTIONS[: i % 4]) or None)
        assert sub.confirmed_at == (when if status in (ACTIVE, UNSUBSCRIBED) else None)
        assert sub.unsubscribed_at == (now if status == UNSUBSCRIBED else None)
        assert sub.requested_at == (now if status == PENDING else None)
        (event,) = sub.consents
        assert (event.event, event.at, event.ip, event.user_agent) == ("import", now, None, None)
        assert event.source == (f"form {i}" if status == ACTIVE else "import of list.csv")
        detail = {"status": status, "file": "list.csv", "line": i + 2}
        if status == ACTIVE:
            detail["consented_at"] = consented.isoformat()
        assert event.detail == detail
        assert is_suppressed(session, sub.email, KEYS) == (status == UNSUBSCRIBED)
    assert len({s.public_id for s in subs}) == len(subs)
    assert all(uuid.UUID(s.public_id).version == 4 for s in subs)
    assert all(uuid.UUID(s.public_id).hex == s.public_id for s in subs)


def test_pending_changes_in_the_session_are_seen_by_the_import(session, now, tmp_path) -> None:
    """The importer's lookups go to the driver, past the ORM: it flushes first."""
    run(session, write(tmp_path, HEADER + OK_ROW), now)
    sub = find_by_email(session, "ok@example.com")
    assert sub is not None
    sub.status = UNSUBSCRIBED  # not flushed yet
    result = run(session, write(tmp_path, HEADER + OK_ROW, "again.csv"), now)
    assert (result.added, result.unchanged, result.suppressed) == (0, 0, [2])


def test_skipping_every_row_is_not_an_import(session, now, tmp_path) -> None:
    path = write(tmp_path, HEADER + "broken,,,,,\nalso broken,,,,,\n")
    with pytest.raises(InvalidFile) as exc:
        run(session, path, now, skip=True)
    assert str(exc.value) == "the file has no valid row; nothing imported"
    assert [e.line for e in exc.value.errors] == [2, 3]
    assert count(session) == 0


def test_an_unclosed_quote_in_a_name_does_not_swallow_the_file_into_one_row(
    session, now, tmp_path
) -> None:
    """Read leniently, the name would run to the end of the file and the row would pass."""
    rest = "".join(f"r{i}@example.com,R,,,,\n" for i in range(3))
    path = write(tmp_path, HEADER + OK_ROW + 'open@example.com,"Open,,,,\n' + rest)
    result = run(session, path, now, skip=True)
    assert result.added == 1
    assert [str(e) for e in result.errors] == [
        "line 3: a quote opened on this line is never closed, so the 3 lines after it were not "
        "read; fix it and run again"
    ]
    assert find_by_email(session, "open@example.com") is None

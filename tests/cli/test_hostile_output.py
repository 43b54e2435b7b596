"""Names and addresses cannot attack an operator (issue 19, item 6): every CLI line and table that
prints one shows Rich markup as text and control characters as visible escapes, `--json` output
escapes what a terminal would act on, and every CSV cell a spreadsheet would run as a formula
is guarded (and the export still imports back)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from sqlalchemy import update

from digest.cli.safe import shown
from digest.send.engine import begin
from digest.store.db import make_engine, session_factory, transaction, upgrade
from digest.store.models import FAILED, Delivery
from subscribers.consent import Evidence
from subscribers.export import json_text
from subscribers.lifecycle import Policy, add_confirmed, find_by_email, suppress
from subscribers.models import Subscriber
from tests.conftest import TEST_SECRET, CliRun
from tests.send_helpers import add_subscribers, make_edition
from tests.subscribers_helpers import SECTIONS

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
LINK = "[link=https://evil.example]Call support[/link]"
# A terminal hyperlink, a screen clear, a bell, a bidi override, CSI as a C1 control.
ESCAPES = "\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\ \x1b[2J\x07 \u202eevil \x9b31m"
UNSAFE = ("\x1b", "\x07", "\u202e", "\x9b", "\r")
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))


@pytest.fixture
def db(tmp_path: Path):
    """The database the `cli` fixture's commands use, migrated, with an edition."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    factory = session_factory(engine)
    make_edition(factory, NOW)
    yield factory
    engine.dispose()


def _store_raw(db, email: str, name: str) -> None:
    """A subscriber whose name was stored before names were cleaned (or by another tool)."""
    with transaction(db) as session:
        add_confirmed(
            session,
            email,
            evidence=Evidence(source=f"paper form {ESCAPES}"),
            now=NOW,
            keys=[TEST_SECRET],
            policy=Policy(SECTIONS),
        )
        session.execute(update(Subscriber).where(Subscriber.email == email).values(name=name))


# --- shown and json_text ----------------------------------------------------------------------


@given(ANY_TEXT)
def test_shown_text_renders_as_itself_with_nothing_a_terminal_acts_on(value: str) -> None:
    rendered = Text.from_markup(shown(value)).plain  # Rich parses no markup out of it
    assert not any(c in rendered for c in UNSAFE)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in rendered)
    printable = "".join(c for c in value if c.isprintable() and not ("\ud800" <= c <= "\udfff"))
    assert all(c in rendered for c in printable)


def test_shown_as_written() -> None:
    assert Text.from_markup(shown(LINK)).plain == LINK
    assert Text.from_markup(shown("a\x1b[2Jb\r\n\u202e")).plain == "a\\x1b[2Jb\\x0d\\x0a\\u202e"


@given(st.recursive(st.none() | ANY_TEXT | st.integers(), lambda c: st.lists(c, max_size=3)))
def test_json_text_is_the_same_json_with_nothing_a_terminal_acts_on(value: object) -> None:
    text = json_text(value)
    assert json.loads(text) == value
    assert not any(c in text for c in UNSAFE)
    text.encode("utf-8")  # no lone surrogate left to make a write fail


# --- the commands -----------------------------------------------------------------------------


def test_subscribers_show_prints_markup_as_text_and_escapes_as_escapes(cli: CliRun, db) -> None:
    _store_raw(db, "victim@example.com", f"{LINK} {ESCAPES}")
    code, out, err = cli("subscribers", "show", "victim@example.com")
    assert code == 0, err
    assert LINK in out  # shown as typed: not turned into a link
    assert not any(c in out for c in UNSAFE)
    assert "\\x1b]8;;https://evil.example" in out and "\\u202eevil" in out


def test_subscribers_show_json_escapes_what_a_terminal_acts_on(cli: CliRun, db) -> None:
    _store_raw(db, "victim@example.com", f"{LINK} {ESCAPES}")
    code, out, _ = cli("subscribers", "show", "--json", "victim@example.com")
    assert code == 0
    assert not any(c in out for c in UNSAFE)
    assert json.loads(out)["subscriber"]["name"] == f"{LINK} {ESCAPES}"


def test_an_error_line_shows_what_was_typed_as_text(cli: CliRun, db) -> None:
    code, _, err = cli("subscribers", "remove", "[bold]x\x1b[2J@example.com")
    assert code != 0
    assert "[bold]" in err and "\x1b" not in err and "Traceback" not in err


def test_the_csv_export_guards_formulas_and_imports_back(
    cli: CliRun, db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    formula = '=HYPERLINK("https://evil.example","Call support")'
    _store_raw(db, "=cmd@example.com", formula)
    _store_raw(db, "plain@example.com", "-1+2")
    code, out, _ = cli("subscribers", "export")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1][:2] == ["'=cmd@example.com", "'" + formula]
    assert rows[2][:2] == ["plain@example.com", "'-1+2"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    exported = tmp_path / "export.csv"
    exported.write_text(out, encoding="utf-8")
    monkeypatch.setenv("DIGEST_DATABASE__URL", f"sqlite:///{tmp_path / 'other.db'}")
    code, out, err = cli("subscribers", "import", str(exported))
    assert code == 0 and "2 added" in out, err
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with session_factory(engine)() as session:
        sub = find_by_email(session, "=cmd@example.com")
        assert sub is not None and sub.name == formula
        assert find_by_email(session, "plain@example.com").name == "-1+2"  # type: ignore[union-attr]
    engine.dispose()


def test_the_send_report_guards_formulas(cli: CliRun, db) -> None:
    add_subscribers(db, 2, NOW)
    begin(db, 1, NOW)
    cli("send", "--resume", "1")
    with transaction(db) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == 1)
            .values(status=FAILED, email="+1@example.com", error='=HYPERLINK("x","y")')
        )
    code, out, _ = cli("send", "report", "1", "--failed")
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["email"] == "'+1@example.com" and row["reason"] == '\'=HYPERLINK("x","y")'


def test_an_imported_name_is_cleaned_and_a_nul_is_a_row_error(
    cli: CliRun, db, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name\n"
        'a@example.com,"Jane\r\nDoe\u202e\x1b[31m"\n'
        "b@example.com,Bad\x00Name\n"
        "c@example.com,ok\n",
        encoding="utf-8",
    )
    code, _, err = cli("subscribers", "import", str(people))
    assert code == 1
    assert f"{people}:4: the name column contains a NUL character" in err  # row 2 is 2 lines
    code, out, _ = cli("subscribers", "import", "--skip-invalid", str(people))
    assert code == 0 and "2 added" in out
    with db() as session:
        assert find_by_email(session, "a@example.com").name == "Jane Doe[31m"  # type: ignore[union-attr]


def test_adding_a_bounced_address_is_refused_with_the_reason(
    cli: CliRun, db, tmp_path: Path
) -> None:
    _store_raw(db, "gone@example.com", "Gone")
    with transaction(db) as session:
        sub = find_by_email(session, "gone@example.com")
        assert sub is not None
        suppress(session, sub, "bounced", now=NOW, keys=[TEST_SECRET], source="test")
    code, _, err = cli("subscribers", "add", "gone@example.com")
    assert code == 9
    assert err.strip() == (
        "error: gone@example.com is on the suppression list (bounced): no email, not even a "
        "confirmation, is sent to it"
    )
    assert not list((tmp_path / "outbox").rglob("*.eml"))

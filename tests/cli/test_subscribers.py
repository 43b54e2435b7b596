"""`digest subscribers ...` and `digest serve`: one clear line per mistake, meaningful exits."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from subscribers.tokens import UNSUBSCRIBE, make_token
from tests.conftest import EXAMPLES, ROOT, TEST_SECRET
from tests.send_helpers import digest_env
from tests.subscribers_helpers import read_outbox

DEMO = str(EXAMPLES / "subscribers.csv")


def test_import_reports_what_it_did(cli) -> None:
    code, out, _ = cli("subscribers", "import", DEMO)
    assert code == 0
    assert "20 added, 0 updated, 0 unchanged, 0 suppressed, 0 invalid" in out


def test_importing_the_same_file_twice_changes_nothing(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "import", DEMO)
    assert code == 0 and "0 added, 0 updated, 20 unchanged" in out


def test_a_bad_file_lists_every_bad_row_and_imports_nothing(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("email,sections\nok@example.com,\nbroken,\nx@example.com,Sport\n")
    code, _, err = cli("subscribers", "import", str(bad))
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{bad}:3: invalid email address 'broken'")
    assert lines[1].startswith(f"{bad}:4: unknown section(s) 'Sport'")
    assert "2 invalid rows; nothing imported (fix them, or pass --skip-invalid)" in lines[2]
    assert "Traceback" not in err
    _, out, _ = cli("subscribers", "export")
    assert out.strip().count("\n") == 0  # the header only


def test_skip_invalid_imports_the_rest(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nok@example.com\nbroken\n")
    code, out, err = cli("subscribers", "import", "--skip-invalid", str(bad))
    assert code == 0 and "1 added" in out and "1 invalid" in out
    assert f"skipped {bad}:3" in err


def test_confirmed_without_a_source_is_a_usage_error(cli) -> None:
    code, _, err = cli("subscribers", "import", "--confirmed", DEMO)
    assert code == 2 and "--confirmed needs --source TEXT" in err
    assert len(err.strip().splitlines()) == 1


def test_confirmed_with_a_source_makes_pending_rows_active(cli) -> None:
    code, out, _ = cli("subscribers", "import", "--confirmed", "--source", "paper forms", DEMO)
    assert code == 0
    _, out, _ = cli("subscribers", "export", "--status", "pending")
    assert out.strip().count("\n") == 0


def test_a_missing_file_is_a_usage_error(cli, tmp_path: Path) -> None:
    code, _, err = cli("subscribers", "import", str(tmp_path / "none.csv"))
    assert code == 2 and "no such file" in err


def test_export_csv_has_the_import_columns_first(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "export")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 20
    assert list(rows[0])[:6] == ["email", "name", "sections", "status", "source", "consented_at"]


def test_export_json_to_a_file(cli, tmp_path: Path) -> None:
    cli("subscribers", "import", DEMO)
    target = tmp_path / "all.json"
    code, out, _ = cli("subscribers", "export", "--format", "json", "--output", str(target))
    people = json.loads(target.read_text())
    assert code == 0 and "Wrote 20 subscribers" in out
    assert {p["subscriber"]["status"] for p in people} == {"active", "pending", "unsubscribed"}


def test_export_with_an_unknown_status_is_a_usage_error(cli) -> None:
    code, _, err = cli("subscribers", "export", "--status", "gone")
    assert code == 2 and "--status 'gone' is not one of" in err


def test_add_sends_a_confirmation_email(cli, tmp_path: Path) -> None:
    code, out, _ = cli("subscribers", "add", "New@Example.com", "--section", "Asia")
    assert code == 0 and "new@example.com is pending: a confirmation email is on its way" in out
    (message,) = read_outbox(tmp_path / "outbox")
    assert message["To"] == "new@example.com"


def test_add_confirmed_with_a_source_is_active_at_once(cli) -> None:
    code, out, _ = cli("subscribers", "add", "a@example.com", "--confirmed", "--source", "paper")
    assert code == 0 and "a@example.com is now active" in out


def test_add_an_invalid_address_exits_2(cli) -> None:
    code, _, err = cli("subscribers", "add", "not-an-address")
    assert code == 2 and "@-sign" in err and "Traceback" not in err


def test_add_back_an_unsubscribed_address_exits_9(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, _, err = cli(
        "subscribers", "add", "g.harrington@example.org", "--confirmed", "--source", "x"
    )
    assert code == 9 and "suppression list" in err


def test_remove_unsubscribes_and_is_idempotent(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "remove", "amara.okafor@example.com")
    assert code == 0 and "unsubscribed from everything" in out
    _, again, _ = cli("subscribers", "remove", "amara.okafor@example.com")
    assert "was already unsubscribed" in again


def test_remove_one_section(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "remove", "j.lindgren@example.org", "--section", "Europe")
    assert code == 0 and "unsubscribed from Europe" in out
    _, shown, _ = cli("subscribers", "show", "j.lindgren@example.org", "--json")
    assert json.loads(shown)["subscriber"]["sections"] == ["Diplomacy"]


def test_remove_an_unknown_address_exits_3(cli) -> None:
    code, _, err = cli("subscribers", "remove", "nobody@example.com")
    assert code == 3 and "no subscriber with the address nobody@example.com" in err


def test_show_prints_the_state_and_the_consent_history(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "show", "priya.raman@example.net")
    assert code == 0 and "active" in out and "conference sign-up sheet 2026-09" in out


def test_show_json_is_everything_held_about_the_person(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "show", "--json", "priya.raman@example.net")
    record = json.loads(out)
    assert code == 0
    assert set(record) == {
        "subscriber",
        "consent_history",
        "suppression",
        "deliveries",
        "webhook_events",
    }


def test_erase_leaves_only_a_hash_and_blocks_reimport(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "erase", "--yes", "priya.raman@example.net")
    assert code == 0 and "only a keyed hash is kept" in out
    code, _, _ = cli("subscribers", "show", "priya.raman@example.net")
    assert code == 3
    _, out, err = cli("subscribers", "import", DEMO)
    assert "0 added" in out and "1 suppressed" in out
    assert f"not re-added {DEMO}:13" in err


def test_erase_asks_first(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("subscribers", "import", DEMO)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, _ = cli("subscribers", "erase", "priya.raman@example.net")
    assert code == 1
    assert cli("subscribers", "show", "priya.raman@example.net")[0] == 0


def test_resend_all_pending_mails_each_pending_subscriber(cli, tmp_path: Path) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "resend", "--all-pending")
    assert code == 0 and "4 confirmation emails sent" in out
    assert len(read_outbox(tmp_path / "outbox")) == 4


def test_resend_needs_an_address_or_all_pending(cli) -> None:
    code, _, err = cli("subscribers", "resend")
    assert code == 2 and "--all-pending" in err


def test_purge_pending_deletes_old_requests(cli) -> None:
    cli("subscribers", "add", "fresh@example.com")
    code, out, _ = cli("subscribers", "purge-pending")
    assert code == 0 and "Deleted 0 requests left unconfirmed for 7 days" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_answers_and_keeps_tokens_out_of_the_access_log(tmp_path: Path) -> None:
    port = free_port()
    env = digest_env(
        {
            "DIGEST_CONFIG": str(ROOT / "digest.toml"),
            "DIGEST_DATABASE__URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "DIGEST_DELIVERY__OUTBOX_DIR": str(tmp_path / "outbox"),
            "DIGEST_SECRET_KEY": TEST_SECRET,
        }
    )
    digest = Path(sys.executable).parent / "digest"
    command = [str(digest), "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    token = make_token([TEST_SECRET], UNSUBSCRIBE, "0" * 32, datetime.now(UTC))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.1)
        assert httpx.post(f"{url}/u/{token}").status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=20)
    log = out.decode() + err.decode()
    assert f"Serving The Weekly Round-up on http://127.0.0.1:{port}" in log
    assert "POST /u/[token]" in log
    assert token not in log


def test_import_without_a_secret_key_names_the_variable(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    code, _, err = cli("subscribers", "import", DEMO)
    assert code == 2 and "DIGEST_SECRET_KEY is not set" in err


def test_a_bad_subscribers_setting_is_one_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SUBSCRIBERS__CONFIRM_DAILY_CAP", "0")
    code, _, err = cli("subscribers", "add", "a@example.com")
    assert code == 2 and "[subscribers] confirm_daily_cap" in err
    assert len(err.strip().splitlines()) == 1


def test_add_with_an_unknown_section_exits_2(cli) -> None:
    code, _, err = cli("subscribers", "add", "a@example.com", "--section", "Sport")
    assert code == 2 and "unknown section(s): 'Sport'" in err


# --- a file with no valid row, an unclosed quote, --source alone (issue 18) ----------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mail,name\na@example.com,Ann\n", "the header has no 'email' column"),
        ("", "the file is empty"),
        ("email\nbroken\nalso-broken\n", "invalid email address 'broken'"),
        ("email\n", "the header is the only line"),
        ('email,name\na@example.com,"Ann\nb@example.com,Bob\n', "is never closed"),
    ],
    ids=["wrong header", "empty", "every row bad", "header only", "unclosed quote"],
)
@pytest.mark.parametrize("flag", [[], ["--skip-invalid"]], ids=["plain", "skip-invalid"])
def test_a_file_without_one_valid_row_is_exit_1_with_or_without_skip_invalid(
    cli, tmp_path: Path, text: str, says: str, flag: list[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    code, out, err = cli("subscribers", "import", *flag, str(bad))
    assert code == 1, out
    assert says in err
    assert err.strip().splitlines()[-1] == "error: the file has no valid row; nothing imported"
    assert "Traceback" not in err and out == ""
    _, exported, _ = cli("subscribers", "export")
    assert exported.strip().count("\n") == 0  # nobody was added


def test_an_unclosed_quote_says_how_many_lines_were_not_read(cli, tmp_path: Path) -> None:
    """A quote left open in a name would swallow the rest of the file into one field: the row
    before it is fine, the line is named, and so are the lines after it that were not read."""
    bad = tmp_path / "quote.csv"
    rows = "".join(f"reader{i}@example.com,Reader {i}\n" for i in range(5))
    bad.write_text('email,name\nfirst@example.com,First\nopen@example.com,"Open\n' + rows)
    code, _, err = cli("subscribers", "import", "--skip-invalid", str(bad))
    assert code == 0  # the one good row before it is imported; the rest is reported
    assert (
        f"{bad}:3: a quote opened on this line is never closed, so the 5 lines after it were not "
        "read; fix it and run again"
    ) in err
    code, _, err = cli("subscribers", "import", str(bad))
    assert code == 1 and "1 invalid row; nothing imported" in err


def test_source_without_confirmed_is_a_usage_error(cli) -> None:
    code, out, err = cli("subscribers", "import", "--source", "paper forms", DEMO)
    assert code == 2
    assert err.startswith("error: --source goes with --confirmed")
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_staff_adding_an_active_address_mails_nobody(cli, tmp_path: Path) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "add", "amara.okafor@example.com")
    assert code == 0
    assert (
        "amara.okafor@example.com is already active; nothing changed and no email was sent" in out
    )
    assert read_outbox(tmp_path / "outbox") == []


# --- subscribers list ------------------------------------------------------------------------


def test_list_shows_everyone_and_the_counts_per_status_and_section(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "list")
    assert code == 0
    assert "amara.okafor@example.com" in out and "Amara Okafor" in out
    assert "20 subscribers." in out
    assert "Per section and status" in out
    counts = json.loads(cli("subscribers", "list", "--json")[1])
    assert counts["total"] == 20
    assert counts["by_status"] == {"active": 15, "pending": 4, "unsubscribed": 1}
    # Everyone who gets every section counts in each, and those who chose Europe in it.
    europe = counts["by_section"]["Europe"]
    rows = list(csv.DictReader(io.StringIO(Path(DEMO).read_text(encoding="utf-8"))))
    chose = [r for r in rows if not r["sections"] or "Europe" in r["sections"].split(";")]
    assert sum(europe.values()) == len(chose)


def test_list_filters_by_status_section_and_search(cli) -> None:
    cli("subscribers", "import", DEMO)
    listed = json.loads(cli("subscribers", "list", "--status", "pending", "--json")[1])
    assert {p["status"] for p in listed["subscribers"]} == {"pending"}
    listed = json.loads(cli("subscribers", "list", "--section", "Asia", "--json")[1])
    assert all(p["sections"] is None or "Asia" in p["sections"] for p in listed["subscribers"])
    listed = json.loads(cli("subscribers", "list", "--search", "LINDGREN", "--json")[1])
    assert [p["email"] for p in listed["subscribers"]] == ["j.lindgren@example.org"]
    assert listed["subscribers"][0]["created_at"].endswith("Z")  # ISO 8601 in JSON
    listed = json.loads(cli("subscribers", "list", "--limit", "3", "--json")[1])
    assert listed["total"] == 20 and listed["shown"] == 3


def test_list_with_a_limit_says_how_to_see_all(cli) -> None:
    cli("subscribers", "import", DEMO)
    code, out, _ = cli("subscribers", "list", "--limit", "2")
    assert code == 0 and "20 subscribers (showing 2; --limit 0 shows all)." in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--section", "Sport"), "--section 'Sport' is not a section of this newsletter"),
        (("--status", "gone"), "--status 'gone' is not one of"),
    ],
)
def test_list_with_an_unknown_section_or_status_exits_2(cli, args, message: str) -> None:
    code, _, err = cli("subscribers", "list", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_list_of_nobody_says_so(cli) -> None:
    code, out, _ = cli("subscribers", "list", "--search", "nobody")
    assert code == 0 and out.strip() == "No subscribers match."


# --- show, in words and local times ----------------------------------------------------------


def test_show_prints_people_words_and_local_times_not_python(cli) -> None:
    cli("subscribers", "import", DEMO)
    cli("subscribers", "remove", "amara.okafor@example.com")
    code, out, _ = cli("subscribers", "show", "amara.okafor@example.com")
    assert code == 0
    assert "{" not in out and "'reason'" not in out  # no Python dict
    assert "T14:32:08" not in out and "+00:00" not in out  # no raw ISO time
    # consented 2026-02-11T14:32:08Z: 09:32 in New York, standard time
    assert "2026-02-11 09:32 EST" in out
    assert re.search(r"yes: unsubscribed since \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T", out)
    assert "No edition was sent to them." in out

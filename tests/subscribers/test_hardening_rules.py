"""The pure rules of issue 19, with property tests: the canonical mailbox the per-address limits
count, the per-IP key (an IPv6 client's /64), names cleaned on the way in, and CSV cells no
spreadsheet runs (reversible, so that an export imports back)."""

from __future__ import annotations

import ipaddress
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from subscribers.addresses import canonical_mailbox
from subscribers.csvcells import FORMULA_STARTS, csv_cell, csv_value
from subscribers.errors import InvalidName
from subscribers.names import BIDI_CONTROLS, MAX_NAME, clean_name
from subscribers.ratelimit import client_key

# Any text at all: every plane, controls, bidi, lone surrogates.
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()))
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
DOMAIN = st.sampled_from(["example.com", "example.org", "mail.example.net", "gmail.com"])


# --- canonical_mailbox -------------------------------------------------------------------------


def test_the_spellings_of_one_inbox_are_one_mailbox() -> None:
    one = {
        canonical_mailbox(a)
        for a in ("victim@gmail.com", "victim+1@gmail.com", "Victim+2@GMail.com",
                  "v.i.c.t.i.m@gmail.com", "v.ictim+x@googlemail.com")
    }  # fmt: skip
    assert one == {"victim@gmail.com"}
    assert canonical_mailbox("Jane.Doe+news@Example.org") == "jane.doe@example.org"


def test_dots_count_outside_gmail() -> None:
    assert canonical_mailbox("j.doe@example.com") != canonical_mailbox("jdoe@example.com")


@given(ANY_TEXT)
def test_canonical_mailbox_is_total_and_idempotent(text: str) -> None:
    once = canonical_mailbox(text)
    assert canonical_mailbox(once) == once


@given(LOCAL, DOMAIN, st.text("abcxyz0189-_.", max_size=12))
def test_a_plus_tag_never_makes_a_new_mailbox(local: str, domain: str, tag: str) -> None:
    assert canonical_mailbox(f"{local}+{tag}@{domain}") == canonical_mailbox(f"{local}@{domain}")


@given(LOCAL, DOMAIN)
def test_letter_case_never_makes_a_new_mailbox(local: str, domain: str) -> None:
    assert canonical_mailbox(f"{local.upper()}@{domain.upper()}") == canonical_mailbox(
        f"{local}@{domain}"
    )


@given(LOCAL, st.sampled_from(["gmail.com", "googlemail.com"]), st.data())
def test_dots_never_make_a_new_gmail_mailbox(local: str, domain: str, data: st.DataObject) -> None:
    dotless = local.replace(".", "")
    assume(dotless)
    at = data.draw(st.integers(1, len(dotless)))
    dotted = dotless[:at] + "." + dotless[at:]
    assert canonical_mailbox(f"{dotted}@{domain}") == canonical_mailbox(f"{dotless}@gmail.com")


# --- client_key --------------------------------------------------------------------------------

# A /64 prefix (never 0: ::ffff:0:0/96, IPv4-mapped, lies in the zero prefix) and a host part.
PREFIX = st.integers(1, 2**64 - 1)
HOST = st.integers(0, 2**64 - 1)


def _v6(prefix: int, host: int) -> str:
    return str(ipaddress.IPv6Address(prefix << 64 | host))


@given(PREFIX, HOST, HOST)
def test_one_ipv6_slash_64_is_one_client(prefix: int, host: int, other: int) -> None:
    assert client_key(_v6(prefix, host)) == client_key(_v6(prefix, other))
    exploded = ipaddress.IPv6Address(prefix << 64 | host).exploded.upper()
    assert client_key(exploded) == client_key(_v6(prefix, host))


@given(PREFIX, PREFIX, HOST, HOST)
def test_different_ipv6_slash_64s_are_different_clients(a: int, b: int, x: int, y: int) -> None:
    assume(a != b)
    assert client_key(_v6(a, x)) != client_key(_v6(b, y))


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_an_ipv4_address_is_its_own_client(address: ipaddress.IPv4Address) -> None:
    assert client_key(str(address)) == str(address)
    assert client_key(f"::ffff:{address}") == str(address)  # as a dual-stack socket reports it


@given(ANY_TEXT)
def test_client_key_is_total(text: str) -> None:
    assert isinstance(client_key(text), str)


def test_client_keys_as_written() -> None:
    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("unknown") == "unknown"


# --- clean_name --------------------------------------------------------------------------------


def _unwanted(char: str) -> bool:
    return (
        char in BIDI_CONTROLS
        or unicodedata.category(char) in ("Cc", "Cs")
        or char
        in (
            "\u2028",
            "\u2029",
        )
    )


@given(ANY_TEXT)
def test_a_clean_name_holds_nothing_that_can_attack_its_reader(raw: str) -> None:
    try:
        name = clean_name(raw)
    except InvalidName:
        assert "\x00" in raw or len(raw) > MAX_NAME
        return
    if name is None:
        return
    assert not any(_unwanted(c) for c in name)
    assert name == name.strip() and "  " not in name and 0 < len(name) <= MAX_NAME
    assert clean_name(name) == name  # idempotent


@given(st.text(st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1, max_size=50))
def test_an_ordinary_name_is_kept_as_typed(raw: str) -> None:
    assert clean_name(raw) == raw


# Letters of other scripts, an emoji joined by ZWJ, a Persian name joined by ZWNJ: all kept.
KEPT = "Zoë 👩\u200d💻 \u0641\u0627\u0637\u0645\u0647\u200c\u0632\u0627\u062f\u0647"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "[link=https://evil.example]Call support[/link]",
            "[link=https://evil.example]Call support[/link]",
        ),
        ("Jane\x1b[31m Doe\x07", "Jane[31m Doe"),
        ("Jane\r\nDoe\tSmith", "Jane Doe Smith"),
        ("\u202emoc.elgoog\u202c", "moc.elgoog"),
        (KEPT, KEPT),
        ("   ", None),
        ("\x1b\x1b", None),
    ],
)
def test_names_as_cleaned(raw: str, clean: str | None) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize("raw", ["Jane\x00Doe", "x" * (MAX_NAME + 1)])
def test_a_nul_or_an_overlong_name_is_refused(raw: str) -> None:
    with pytest.raises(InvalidName):
        clean_name(raw)


# --- csv_cell ----------------------------------------------------------------------------------


@given(ANY_TEXT)
def test_a_guarded_cell_gives_back_its_value(value: str) -> None:
    assert csv_value(csv_cell(value)) == value


@given(ANY_TEXT)
def test_no_cell_starts_like_a_formula(value: str) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(FORMULA_STARTS)
    assert not cell.lstrip().startswith(FORMULA_STARTS) or cell.startswith("'")


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("https://evil.example","Call support")', "+1", "-2+3", "@SUM(A1)", "\t=x"]
)
def test_formula_cells_are_guarded(value: str) -> None:
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Jane Doe", "jane@example.com", "2026-11-20T14:00:00Z", ""])
def test_ordinary_cells_are_left_alone(value: str) -> None:
    assert csv_cell(value) == value == csv_value(value)

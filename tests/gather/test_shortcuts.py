"""Each shortcut taken for speed gives what the procedure it short-cuts gives (properties).

plain(), nh3 with a reusable Cleaner, safe_url's plain-URL path, the root-relative join,
canonical_url's plain-URL path, ASCII headline words, the fast path's join of links.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urljoin

import feedparser
import nh3
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from digest.gather import identity, sanitize, titles
from digest.gather.fastitems import join
from digest.gather.sanitize import DROP_CONTENT, plain_chars

T = TypeVar("T")
SCHEMES = st.sampled_from(["http", "https"]) | st.sampled_from(["HTTP", "ftp", "javascript", ""])
SEPARATORS = st.just("://") | st.sampled_from([":/", ":///", "//", ":"])
LABELS = st.sampled_from(["news", "x", "a-b", "xn--d1a", "1"]) | st.sampled_from(
    ["EXAMPLE", "Desk", "-", "", "ü", "a_b", "a b"]
)
HOSTS = st.lists(LABELS, min_size=1, max_size=3).map(".".join) | st.sampled_from(
    ["[::1]", "u@host.example", "host.example.", "h:1@x"]
)
PORTS = st.just("") | st.sampled_from([":80", ":443", ":8080", ":99999", ":x", ":"])
PLAIN_PATH = "/.-_~aZ09?#&=;:@!$'()*+,%[]\\"
PATHS = st.one_of(
    st.sampled_from(["", "/", "/a/b/", "//double", "/a//b", "/./a", "/a/../b", "/img/1.jpg"]),
    st.sampled_from(["/x;p=1", "/.hidden", "/a/.", "/a/..", "/~u/", "?q", "#f"]),
    st.text(st.sampled_from(PLAIN_PATH), max_size=16).map(lambda p: "/" + p),
    st.text(st.sampled_from(PLAIN_PATH + " \t\x00\x7f\u202eé"), max_size=16),
    st.text(st.sampled_from(PLAIN_PATH + " \t\x00\x7f\u202eé"), max_size=16).map("/a".__add__),
)
PLAIN_URLS = st.builds(
    "{}://{}/{}".format,
    st.sampled_from(["http", "https"]),
    st.lists(st.sampled_from(["news", "x", "a-b", "xn--d1a", "1"]), min_size=1, max_size=3).map(
        ".".join
    ),
    st.text(st.sampled_from(PLAIN_PATH), max_size=12),
)
# The boundaries of the shortcuts, always tried (hypothesis draws near them too).
EDGES = [
    *("https://news.example/a/", "https://news.example/", "https://news.example//"),
    *("https://news:99999/a", "https://news:x/", "https://news:443/a", "https://a:b@news/"),
    *("https://News.example/a/", "https://news.example:8080/a", "https://news.example:99999/"),
    *("https://news.example/a b", "https://news.example/a ", " https://news.example/a"),
    *("https://u@news.example/", "https://news.example./a", "https://news.example/a/../b"),
    *("https://news.example/a//b", "https://news.example/a;p", "http:///news.example/a"),
    *("https://news.example", "HTTPS://news.example/", "https://news.example/%41", "https://-/"),
]


def examples_of(*rows: tuple[object, ...]) -> Callable[[T], T]:
    """Each row as an explicit hypothesis example: the boundaries are always tried."""

    def decorate(test: T) -> T:
        for row in rows:
            test = example(*row)(test)
        return test

    return decorate


ODD = [*" \t\n\x00\x7f\u202eé:@[]%.AZ/?#;\\", ":99999", ":80", ":x", "..", "//"]


@st.composite
def near_plain(draw: st.DrawFn) -> str:
    """A plain URL with one odd character or piece inserted: the edge of every shortcut."""
    url = draw(PLAIN_URLS)
    at = draw(st.integers(0, len(url)))
    return url[:at] + draw(st.sampled_from(ODD)) + url[at:]


URLS = near_plain() | st.one_of(
    PLAIN_URLS,
    st.builds(lambda *p: "".join(p), SCHEMES, SEPARATORS, HOSTS, PORTS, PATHS),
    st.text(max_size=30),
)
BASES = st.none() | st.sampled_from(["", "https://desk.example/a/b", "javascript:x"]) | URLS
WHITESPACE = "".join(chr(c) for c in range(0x3100) if chr(c).isspace())


@given(st.text(st.sampled_from(WHITESPACE) | st.characters(), max_size=40))
def test_plain_collapses_exactly_the_whitespace_the_regex_did(text: str) -> None:
    assert sanitize.plain(text) == re.sub(r"\s+", " ", plain_chars(text)).strip()


HTML = st.text(
    st.sampled_from(list("<>&;\"'=/ apbrscriptimgl:#x1\n")) | st.characters(), max_size=80
)


@given(HTML)
@settings(max_examples=200)
def test_a_reusable_cleaner_cleans_like_nh3_clean(fragment: str) -> None:
    fragment = plain_chars(fragment)
    stripped = nh3.clean(fragment, tags=set(), clean_content_tags=DROP_CONTENT, strip_comments=True)
    assert sanitize._strip_tags(fragment) == stripped
    cleaned = nh3.clean(
        fragment,
        tags=sanitize.ALLOWED_TAGS,
        attributes=sanitize.ALLOWED_ATTRIBUTES,
        url_schemes=sanitize.ALLOWED_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        clean_content_tags=DROP_CONTENT,
    )
    assert sanitize.clean_html(fragment) == cleaned


@examples_of(*((url, "https://desk.example/a") for url in EDGES))
@given(URLS, BASES)
@settings(max_examples=500)
def test_safe_url_shortcut_agrees_with_the_full_checks(value: str, base: str | None) -> None:
    full = sanitize._checked_url(value, base) if value else None
    assert sanitize.safe_url(value, base) == full


@examples_of(
    *(("https://desk.example/7", p) for p in ["/img/1.jpg", "/a/../b", "//cdn.example/x", "/./a"]),
    *(("https://desk.example/7", p) for p in ["/a//b", "/x;p", "/x?q#f", "/x/", "/.x"]),
    *((b, "/x") for b in ["https://d.example:8080/", "https://u@d.example/", "HTTPS://d.example"]),
    *((b, "/x") for b in ["https://Desk.example/a?q", "https://d.example.", "https://d.example#f"]),
)
@given(URLS | st.sampled_from(["https://desk.example/7", "http://a.example?x#y"]), PATHS)
@settings(max_examples=500)
def test_root_relative_join_agrees_with_urljoin(base: str, path: str) -> None:
    try:
        expected = urljoin(base, path)
    except ValueError:
        return
    assert sanitize._urljoin(base, path) == expected


@examples_of(*((url,) for url in EDGES))
@given(URLS)
@settings(max_examples=500)
def test_canonical_url_shortcut_agrees_with_the_full_procedure(url: str) -> None:
    assert identity.canonical_url.__wrapped__(url) == identity._canonical(url)


@given(st.text(max_size=40))
def test_ascii_headlines_fold_like_the_full_procedure(title: str) -> None:
    """fold() skips the typography table and NFKD for ASCII: they would change nothing."""
    typography = title.translate(titles._TYPOGRAPHY)
    full = unicodedata.normalize("NFKD", typography).encode("ascii", "ignore").decode().lower()
    assert titles.fold(title) == full


@examples_of(*((url,) for url in EDGES))
@given(URLS)
@settings(max_examples=300)
def test_fast_path_links_join_like_feedparser_without_a_base(uri: str) -> None:
    """feedparser's own answer, through its public API: the link of a one-item feed."""
    # ASCII only: feedparser also repairs mis-decoded text (Windows-1252, mojibake) in every
    # field, which both paths do elsewhere; join() is only about the slashes.
    assume(uri.isascii() and uri == uri.strip() and not set(uri) & set("<&"))
    document = f"<rss><channel><item><link>{uri}</link></item></channel></rss>"
    parsed = feedparser.parse(document.encode(), sanitize_html=False)
    assume(not parsed.bozo and parsed.entries and "link" in parsed.entries[0])
    assert join(uri) == parsed.entries[0]["link"]

"""Sanitising: hostile HTML, text and URLs in; safe values out (examples and properties)."""

from __future__ import annotations

import re
import string

from hypothesis import example, given
from hypothesis import strategies as st

from digest.gather.sanitize import clean_html, clip, excerpt, first_image, plain, safe_url, to_text

HOSTILE = st.text(
    alphabet=st.sampled_from(list("<>&;\"'=/ ascriptjavbdtmg:\x00\u202e#x1")), max_size=80
)


def test_script_style_and_iframe_content_is_dropped_not_just_the_tags() -> None:
    dirty = "<p>ok</p><script>alert(1)</script><style>p{}</style><iframe>frame</iframe>"
    assert to_text(dirty) == "ok"


def test_clean_html_keeps_the_allow_list_and_only_http_links() -> None:
    cleaned = clean_html('<p onclick="x()">a <a href="javascript:alert(1)">b</a> <img src=x></p>')
    assert cleaned == '<p>a <a rel="noopener noreferrer">b</a> </p>'


def test_entities_are_decoded_exactly_once() -> None:
    assert to_text("R&amp;amp;D &lt;b&gt;") == "R&amp;D <b>"
    assert to_text("Muscat &amp; Doha") == "Muscat & Doha"


def test_plain_text_keeps_angle_brackets_and_ampersands_literally() -> None:
    assert plain("AT&amp;T <b>  bold</b>") == "AT&amp;T <b> bold</b>"


def test_control_characters_bidi_overrides_and_lone_surrogates_are_removed() -> None:
    assert plain("a\x00b\u202ec\ud800d\x7f e") == "abcd e"


def test_excerpt_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert excerpt("<p>one two three, four five</p>", 3) == "one two three…"
    assert excerpt("one two", 5) == "one two"


def test_excerpt_of_one_enormous_word_is_still_bounded() -> None:
    assert len(excerpt("x" * 10_000, 5)) <= 100


def test_clip_cuts_titles_at_a_word_boundary() -> None:
    assert clip("alpha beta gamma delta", 15) == "alpha beta…"


def test_only_http_and_https_urls_survive() -> None:
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "file:///etc/passwd",
        "JaVaScRiPt:alert(1)",
        " java\nscript:alert(1)",
        "http://x:99999/",
        "//",
    ):
        assert safe_url(bad) is None, bad
    assert safe_url("/a b", base="https://x.example/") is None
    assert safe_url("../img.jpg", base="https://x.example/a/b/") == "https://x.example/a/img.jpg"


def test_first_image_skips_tracking_pixels_and_unsafe_sources() -> None:
    html = (
        '<img src="https://t.example/p.gif" width="1" height="1">'
        '<img src="https://t.example/q.gif" style="width:1px;height:1px">'
        '<img src="javascript:alert(1)"><img src="/real.jpg">'
    )
    assert first_image(html, "https://x.example/a") == "https://x.example/real.jpg"
    assert first_image("<p>no picture</p>", None) is None


@given(HOSTILE)
@example("<<a>a")  # the "<" was text; the tag's removal must not leave it touching the "a"
@example("<<a>a>")
@example("<</a>b")
def test_to_text_never_leaves_a_tag_or_a_control_character(value: str) -> None:
    text = to_text(value)
    if "&" not in value:  # with no entities in the input, no markup can be in the output
        # A tag needs a name: a bare "</" at the end of the input is text, not markup.
        assert re.search(r"<[a-zA-Z!?]|</[a-zA-Z]", text) is None
    assert not any(ord(ch) < 0x20 for ch in text)
    assert "\u202e" not in text


@given(HOSTILE)
def test_clean_html_output_has_no_script_no_handlers_no_javascript_urls(value: str) -> None:
    cleaned = clean_html(value).lower()
    assert "<script" not in cleaned and "onclick" not in cleaned
    assert re.search(r"href=\"\s*(javascript|data|vbscript):", cleaned) is None


@given(st.text(max_size=60), st.sampled_from(["https://x.example/a/", None]))
def test_safe_url_returns_none_or_an_absolute_http_url_without_spaces(
    value: str, base: str | None
) -> None:
    url = safe_url(value, base)
    assert url is None or (url.lower().startswith(("http://", "https://")) and " " not in url)


@given(st.text(alphabet=string.ascii_letters + " .,", max_size=300), st.integers(1, 40))
def test_excerpt_never_has_more_words_than_asked(value: str, words: int) -> None:
    assert len(excerpt(value, words).split()) <= words


def test_to_text_keeps_a_text_less_than_apart_from_a_letter_a_removed_tag_brought_it_to() -> None:
    assert to_text("<<a>b") == "< b"
    assert to_text("1 < 2 and x<y") == "1 < 2 and x"  # "<y" starts a tag: removed, not text
    assert to_text("&lt;div&gt; is a tag") == "<div> is a tag"  # written as text: kept so

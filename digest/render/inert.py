"""Values from outside made inert on their way into an email: the renderer's last line of defence.

Gather already sanitises what it stores (digest/gather/sanitize.py), but staff type an edition's
subject, preheader and intro, and a template prints whatever it is given. So the renderer passes
every value through here, whatever its source:

- `clean` (every text value, before any template sees it): one line of text in NFC, without the
  characters MRML cannot parse (C0 controls, U+FFFE, U+FFFF: one of them fails the whole
  edition) or UTF-8 cannot encode (lone surrogates), and without an *unpaired* bidi embedding,
  override or isolate (U+202A..U+202E, U+2066..U+2069). An unpaired one would reorder what
  follows the value: the date after an author in a byline, the rest of a line of the text part.
  A pair closed inside the value is kept (a Hebrew title quoting an English name may need one);
  it cannot reach past the value. The marks (U+200E, U+200F, U+061C) are kept: they open no
  scope. Stripping was chosen over wrapping each value in <bdi> or an FSI..PDI isolate because it
  works the same in every place a value goes: an attribute (alt, aria-label), the subject header
  and the text part, where neither markup nor isolate characters can be relied on.
- `html_value` (the environment's finalize for the MJML templates; autoescaped): HTML-escaped,
  then `%` before another `%` and every `{` written as character references, so a value can
  never spell a per-recipient placeholder (`%%unsubscribe_url%%`) that a backend would fill with
  the reader's own link, nor look like a template leftover to preflight; it reads the same. The
  characters MRML writes as Rust escapes in attribute values (`\\u{202e}`, `\\\\`: a backslash,
  controls, marks, format characters, non-ASCII spaces, combining marks) become character
  references too, which MRML passes through unchanged.
- `text_value` (finalize for the text templates): a WORD JOINER (U+2060, invisible) between two
  `%`, for the same reason. Nothing else changes: a value is never a template, so `{{ 7*7 }}`
  stays `{{ 7*7 }}`.
- `url_value` (links and images): a `%` that starts no percent-escape becomes `%25` (its
  RFC 3986 spelling), so a URL cannot carry a placeholder either.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

# What MRML cannot parse (C0 controls but tab, newline and CR; U+FFFE and U+FFFF), what UTF-8
# cannot encode (lone surrogates), DEL and the C1 controls (never text).
_UNPARSABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")  # LRE, RLE, LRO, RLO: closed by PDF
_ISOLATES = frozenset("\u2066\u2067\u2068")  # LRI, RLI, FSI: closed by PDI
_PDF, _PDI = "\u202c", "\u2069"
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_UNSAFE = re.compile(f"{_UNPARSABLE.pattern}|{_BIDI.pattern}")
# Unicode categories whose characters MRML writes as `\u{...}` in an attribute value.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Mn", "Mc", "Me"})
# Letters and fillers it escapes too (Grapheme_Extend or not printable to Rust's tables).
_ESCAPED_LETTERS = frozenset("\\\u115f\u1160\u3164\uff9e\uff9f\uffa0")
# Printable ASCII (bytes.translate deletes them: what is left needs a look; str.isprintable and
# a regular expression are several times slower, and a render looks at ~200 values).
_PRINTABLE = bytes(range(0x20, 0x7F))
_PLAIN_HTML = bytes(c for c in _PRINTABLE if chr(c) not in "\\%{")
_PERCENT_PAIR = re.compile("%(?=%)")
_LONE_PERCENT = re.compile("%(?![0-9A-Fa-f]{2})")
_WORD_JOINER = "\u2060"


def clean(value: str) -> str:
    """One line of text, safe to print anywhere in an email (see the module docstring)."""
    if value.isascii() and not value.encode("ascii").translate(None, _PRINTABLE):
        # The common case: printable ASCII, nothing to drop, only spaces to collapse.
        if "  " not in value and value[:1] != " " and value[-1:] != " ":
            return value
        return " ".join(value.split())
    if _UNSAFE.search(value):
        value = _UNPARSABLE.sub("", value)
        if _BIDI.search(value):
            value = paired_bidi(value)
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return " ".join(value.split())


def paired_bidi(value: str) -> str:
    """`value` without the bidi embeddings, overrides and isolates that are not closed inside it
    (and the closers that close nothing), nested as the Unicode bidi algorithm pairs them."""
    drop: set[int] = set()
    open_: list[tuple[int, str]] = []  # (index, character) of each opener not yet closed
    for i, char in enumerate(value):
        if char in _EMBEDDINGS or char in _ISOLATES:
            open_.append((i, char))
        elif char == _PDF:
            # A PDF closes the innermost embedding, unless an isolate opened after it.
            if open_ and open_[-1][1] in _EMBEDDINGS:
                open_.pop()
            else:
                drop.add(i)
        elif char == _PDI:
            # A PDI closes the innermost isolate and every embedding opened inside it.
            isolate = next(
                (n for n in range(len(open_) - 1, -1, -1) if open_[n][1] in _ISOLATES), None
            )
            if isolate is None:
                drop.add(i)
            else:
                drop.update(index for index, _ in open_[isolate + 1 :])
                del open_[isolate:]
    drop.update(index for index, _ in open_)
    return "".join(char for i, char in enumerate(value) if i not in drop)


@lru_cache(maxsize=4096)
def _mrml_escaped(char: str) -> bool:
    category = unicodedata.category(char)
    return (
        category in _ESCAPED_CATEGORIES
        or (category == "Zs" and char != " ")
        or char in _ESCAPED_LETTERS
    )


def _references(text: Markup) -> Markup:
    """`%` before `%`, `{` and what MRML would mangle in an attribute, as character references."""
    if text.isascii() and not text.encode("ascii").translate(None, _PLAIN_HTML):
        return text  # the common case: nothing to do
    if "%" in text:
        text = Markup(_PERCENT_PAIR.sub("&#37;", text))
    if "{" in text:
        text = Markup(str.replace(text, "{", "&#123;"))
    # Each distinct character looked at once (a render prints ~100 values, mostly the same few).
    table = {ord(c): f"&#{ord(c)};" for c in set(text) if _mrml_escaped(c)}
    return Markup(str.translate(text, table)) if table else text


@jinja2.pass_eval_context
def finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """Every `{{ value }}` of the email templates: html_value where autoescape is on (the MJML),
    text_value where it is off (the text part)."""
    return html_value(value) if eval_ctx.autoescape else text_value(value)


def html_value(value: Any) -> Any:
    if isinstance(value, Markup):
        return value  # markup the code built on purpose, never a value from outside
    if (
        isinstance(value, str)
        and value.isascii()
        and not value.encode("ascii").translate(None, _PLAIN_HTML)
    ):
        return value  # nothing but escaping to do: Jinja2's autoescape does it, once
    return _references(escape(value))


def text_value(value: Any) -> Any:
    return no_placeholder(value) if isinstance(value, str) else value


def no_placeholder(text: str) -> str:
    """`text` with a WORD JOINER between two `%`: it reads the same and fills no placeholder."""
    return _PERCENT_PAIR.sub("%" + _WORD_JOINER, text) if "%%" in text else text


def subject_value(value: str) -> str:
    """The subject header (a backend fills placeholders in it too: SendGrid does)."""
    return no_placeholder(clean(value))


def url_value(url: str) -> str:
    return _LONE_PERCENT.sub("%25", url) if "%" in url else url

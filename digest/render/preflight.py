"""Checks on one variant's message as a receiver gets it, before anyone does: pure, no I/O.

Each check names what failed and how to fix it. A failed check blocks approval and sending
(unless a person overrides it with `--force --reason`); a warning never blocks. The limits and
their sources are in docs/standards.md §1-2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from digest.render.css_support import unsupported_css

Status = Literal["pass", "fail", "warn"]

# Gmail clips an HTML part past ~102 KB, hiding the footer and its unsubscribe link; the budget
# leaves room for an ESP's click tracking, which lengthens every link.
CLIP_POINT_BYTES = 102 * 1024
MAX_HTML_BYTES = 95 * 1024
MAX_STYLE_BYTES = 16 * 1024  # Gmail drops a <style> past 16 KB
MAX_SUBJECT_CHARS = 100
MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1
ONE_CLICK = "List-Unsubscribe=One-Click"

# Template syntax that must never reach a reader: our placeholders, Jinja2 and MJML.
LEFTOVER = re.compile(r"%%[a-z_]+%%|\{\{|\}\}|\{%|%\}|</?mj-[a-z]")


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Sample:
    """One variant's message, built the way a send builds it, for the recipient with the
    longest possible links (so sizes are the worst case)."""

    subject: str
    preheader: str
    html: str  # the HTML with the per-recipient links filled in
    html_part: bytes  # the HTML part as encoded in the message (quoted-printable, CRLF)
    unsubscribe_offset: int  # bytes of the encoded part before the body's unsubscribe link
    text: str  # the text part with the links filled in
    headers: Sequence[tuple[str, str]]  # as the backend hands them on: raw, not decoded
    unsubscribe_url: str
    postal_address: str
    # The edition's own texts (titles, excerpts, intro): template-like syntax in them is
    # content a source published, not a leftover of ours.
    content: str = ""
    http_allowed: bool = False  # a loopback base_url, for local testing


def check(sample: Sample) -> list[Check]:
    tree = LexborHTMLParser(sample.html)
    tags = _tags(tree)
    return [
        _size(sample),
        _clip(sample),
        _style(sample),
        _images(tags),
        _links(tags),
        _leftovers(sample),
        _text(sample),
        _list_unsubscribe(sample),
        _one_click(sample),
        _subject(sample),
        _preheader(sample),
        *_css(tree),
    ]


def _ok(name: str, message: str) -> Check:
    return Check(name, "pass", message)


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def _size(s: Sample) -> Check:
    size = len(s.html_part)
    if size <= MAX_HTML_BYTES:
        return _ok("size", f"HTML part {_kb(size)} as sent (limit {_kb(MAX_HTML_BYTES)})")
    return Check(
        "size",
        "fail",
        f"the HTML part is {_kb(size)} as sent (quoted-printable, longest links), over the "
        f"{_kb(MAX_HTML_BYTES)} budget: Gmail clips a message past ~102 KB",
        "drop articles (`digest edition drop`) or shorten the intro and excerpts",
    )


def _clip(s: Sample) -> Check:
    where = s.unsubscribe_offset
    if where < 0:
        return Check(
            "clip",
            "fail",
            "the HTML has no unsubscribe link",
            "the footer template must link to %%unsubscribe_url%%",
        )
    if where + len(s.unsubscribe_url) <= CLIP_POINT_BYTES:
        return _ok("clip", f"unsubscribe link at {_kb(where)}, before Gmail's clip point")
    return Check(
        "clip",
        "fail",
        f"the unsubscribe link is at {_kb(where)} of the HTML part, past Gmail's clip point "
        f"({_kb(CLIP_POINT_BYTES)}): Gmail readers would not see it",
        "drop articles until the message is under the size budget",
    )


def _style(s: Sample) -> Check:
    blocks = re.findall(r"<style[^>]*>(.*?)</style>", s.html, re.DOTALL | re.IGNORECASE)
    size = sum(len(b.encode()) for b in blocks)
    if size <= MAX_STYLE_BYTES:
        return _ok("style", f"<style> {_kb(size)} (limit {_kb(MAX_STYLE_BYTES)})")
    return Check(
        "style",
        "fail",
        f"<style> holds {_kb(size)}: Gmail drops styles past {_kb(MAX_STYLE_BYTES)}",
        "move rules into the templates' inline attributes or remove unused ones",
    )


@dataclass(frozen=True)
class _Tags:
    images: list[dict[str, str | None]]
    links: list[str | None]


def _tags(tree: LexborHTMLParser) -> _Tags:
    """Every <img> with its attributes and every <a>'s href, from a real HTML parser (lexbor:
    a preflight of 31 variants cannot spend 10 ms a variant in html.parser)."""
    images = [dict(node.attributes) for node in tree.css("img")]
    links = [node.attributes.get("href") for node in tree.css("a")]
    return _Tags(images, links)


def _shown(values: Sequence[str | None], limit: int = 3) -> str:
    cut = [v if v is None or len(v) <= 80 else v[:79] + "…" for v in values[:limit]]
    shown = ", ".join(map(repr, cut))
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _images(tags: _Tags) -> Check:
    images = tags.images
    no_alt = [i.get("src") for i in images if "alt" not in i]
    insecure = [i.get("src") for i in images if not (i.get("src") or "").startswith("https://")]
    if not no_alt and not insecure:
        return _ok("images", f"{len(images)} images, each with alt text and an https src")
    problems = []
    if no_alt:
        problems.append(f"{len(no_alt)} image(s) without alt: {_shown(no_alt)}")
    if insecure:
        problems.append(f"{len(insecure)} image(s) not on https: {_shown(insecure)}")
    return Check(
        "images",
        "fail",
        "; ".join(problems),
        'give every <img> an alt (alt="" for a decorative one) and an https:// src; an '
        "article's image comes from its source: drop it or fix the source",
    )


def _links(tags: _Tags) -> Check:
    links = tags.links
    bad = [h for h in links if not _absolute(h)]
    if not bad:
        return _ok("links", f"{len(links)} links, all absolute http(s)")
    return Check(
        "links",
        "fail",
        f"{len(bad)} link(s) are not absolute http(s) URLs: {_shown(bad)}",
        "a relative or javascript: link goes nowhere in a mail client: fix the template or drop "
        "the article whose URL it is",
    )


def _absolute(href: str | None) -> bool:
    if not href:
        return False
    if href.startswith("mailto:"):
        return "@" in href
    parts = urlsplit(href)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _leftovers(s: Sample) -> Check:
    found = []
    own = set(LEFTOVER.findall(s.content))  # the articles themselves contain these
    for where, body in (("subject", s.subject), ("HTML", s.html), ("text", s.text)):
        hits = dict.fromkeys(hit for hit in LEFTOVER.findall(body) if hit not in own)
        found += [f"{hit!r} in the {where}" for hit in hits]
    if not found:
        return _ok("leftovers", "no unfilled placeholders or template syntax")
    return Check(
        "leftovers",
        "fail",
        "template leftovers a reader would see: " + ", ".join(found),
        "a template uses a placeholder or syntax nothing fills in: fix the template",
    )


def _text(s: Sample) -> Check:
    if not s.text.strip():
        return Check("text", "fail", "the text part is empty", "check templates/email/*.txt.j2")
    missing = []
    if s.unsubscribe_url not in s.text:
        missing.append("the unsubscribe link")
    if _squash(s.postal_address) not in _squash(s.text):
        missing.append(f"the postal address ({s.postal_address!r})")
    if not missing:
        return _ok("text", "text part with the unsubscribe link and the postal address")
    return Check(
        "text",
        "fail",
        "the text part lacks " + " and ".join(missing),
        "the text template's footer must carry both (CAN-SPAM, Gmail's sender rules)",
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def _header(s: Sample, name: str) -> list[str]:
    return [value for key, value in s.headers if key.lower() == name.lower()]


def _list_unsubscribe(s: Sample) -> Check:
    name = "List-Unsubscribe"
    values = _header(s, name)
    fix = "the backend must write List-Unsubscribe as plain ASCII `<https://…>` (RFC 2369, 8058)"
    if len(values) != 1:
        return Check("list-unsubscribe", "fail", f"{len(values)} {name} headers, not 1", fix)
    raw = values[0]
    urls = re.findall(r"<([^>]*)>", raw)
    problem = None
    if "=?" in raw or not raw.isascii():
        problem = f"{name} is encoded ({raw[:60]!r}…): receivers read it raw and find no URL"
    elif not urls or s.unsubscribe_url not in urls:
        problem = f"{name} does not carry the recipient's unsubscribe URL: {raw[:120]!r}"
    elif not urls[0].startswith("https://") and not s.http_allowed:
        problem = f"{name}'s URL is not https ({urls[0][:60]!r}): one-click needs https"
    elif any(len(line) + len(name) + 2 > MAX_HEADER_LINE for line in raw.split("\r\n")):
        problem = f"a line of {name} is longer than {MAX_HEADER_LINE} characters"
    if problem:
        return Check("list-unsubscribe", "fail", problem, fix)
    return _ok("list-unsubscribe", f"{name}: {len(urls)} URI(s), raw ASCII, first {urls[0][:8]}…")


def _one_click(s: Sample) -> Check:
    values = _header(s, "List-Unsubscribe-Post")
    if values == [ONE_CLICK]:
        return _ok("one-click", f"List-Unsubscribe-Post: {ONE_CLICK}")
    return Check(
        "one-click",
        "fail",
        f"List-Unsubscribe-Post is {values!r}, not [{ONE_CLICK!r}]: Gmail and Yahoo require "
        "one-click unsubscribe for bulk senders",
        "the send must add List-Unsubscribe-Post to every message (send/compose.py)",
    )


def _subject(s: Sample) -> Check:
    subject = s.subject.strip()
    if not subject:
        return Check("subject", "fail", "the subject is empty", "`digest edition subject ID TEXT`")
    if len(subject) > MAX_SUBJECT_CHARS:
        return Check(
            "subject",
            "fail",
            f"the subject has {len(subject)} characters (limit {MAX_SUBJECT_CHARS}): inboxes "
            "cut it off",
            "shorten it: `digest edition subject ID TEXT`",
        )
    return _ok("subject", f"subject {len(subject)} characters")


def _preheader(s: Sample) -> Check:
    if s.preheader.strip():
        return _ok("preheader", f"preheader {len(s.preheader)} characters")
    return Check(
        "preheader",
        "fail",
        "no preheader: inboxes show whatever text comes first instead",
        "set one: `digest edition preheader ID TEXT`",
    )


def _css(tree: LexborHTMLParser) -> Iterator[Check]:
    for warning in unsupported_css(tree):
        yield Check("css", "warn", warning)

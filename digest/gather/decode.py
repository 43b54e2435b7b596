"""Bytes from outside → text, without losing a character and without guessing silently.

The order follows the standards: a byte-order mark wins; then the charset in the Content-Type
header (RFC 7303 §3 for XML, WHATWG Encoding for HTML); then the document's own declaration
(`<?xml encoding=...?>`, `<meta charset>`); then UTF-8. Real feeds mix encodings (a UTF-8 feed
with one pasted Windows-1252 quote): instead of turning the whole document into mojibake, only the
bytes that are not UTF-8 are read as Windows-1252, and the report says how many. Binary data (an
image or PDF served as a feed) and text that fits no declared encoding are "undecodable".
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)[\"']", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_UTF16_XML = {b"<\x00?\x00": "utf-16-le", b"\x00<\x00?": "utf-16-be"}


class DecodeError(Exception):
    """The bytes are not text in any encoding they declare or we can infer."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    warning: str | None = None


def _mixed(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8 is read as Windows-1252 (or Latin-1)."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.start + 1]
    try:
        return bad.decode("cp1252"), error.start + 1
    except UnicodeDecodeError:
        return bad.decode("latin-1"), error.start + 1


codecs.register_error("digest-cp1252", _mixed)


def charset_from_header(content_type: str) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1).lower() if match else None


def decode(body: bytes, content_type: str = "", *, markup: str = "xml") -> Decoded:
    """Text from `body`; `markup` ("xml", "html" or "json") says where to look for a declaration."""
    for bom, name in BOMS:
        if body.startswith(bom):
            return _strict(body[len(bom) :], name, "byte-order mark")
    for prefix, name in _UTF16_XML.items():
        if body.startswith(prefix):
            return _strict(body, name, "UTF-16 XML declaration")
    nul = body.find(b"\x00")
    if nul >= 0:
        raise DecodeError(
            f"undecodable: binary data (a NUL byte at offset {nul}); "
            "is this an image, a PDF or a compressed file?"
        )
    declared = charset_from_header(content_type) or _declared(body, markup)
    return _declared_or_utf8(body, declared)


def _declared(body: bytes, markup: str) -> str | None:
    head = body[:4096]
    if markup == "xml":
        match = _XML_DECL.search(head)
    elif markup == "html":
        match = _META_CHARSET.search(head)
    else:
        match = None
    return match.group(1).decode("ascii").lower() if match else None


def _declared_or_utf8(body: bytes, declared: str | None) -> Decoded:
    warning = None
    if declared and not _is_utf8(declared):
        try:
            codecs.lookup(declared)
        except LookupError:
            warning = f"unknown charset {declared!r}: read as UTF-8"
        else:
            try:
                return Decoded(body.decode(declared), declared)
            except UnicodeDecodeError as exc:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise DecodeError(
                        f"undecodable: not valid {declared} (byte 0x{body[exc.start]:02x} at "
                        f"offset {exc.start}) and not UTF-8 either"
                    ) from None
                return Decoded(text, "utf-8", f"declared {declared} but is UTF-8: read as UTF-8")
    return _utf8(body, warning)


def _utf8(body: bytes, warning: str | None) -> Decoded:
    try:
        return Decoded(body.decode("utf-8"), "utf-8", warning)
    except UnicodeDecodeError as exc:
        first = exc.start
    text = body.decode("utf-8", errors="digest-cp1252")
    note = (
        f"mixed encodings: bytes that are not UTF-8 (the first at offset {first}) were read as "
        "Windows-1252"
    )
    return Decoded(text, "utf-8+cp1252", f"{warning}; {note}" if warning else note)


def _is_utf8(name: str) -> bool:
    return name.replace("_", "-") in ("utf-8", "utf8")


def _strict(body: bytes, name: str, why: str) -> Decoded:
    try:
        return Decoded(body.decode(name), name)
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"undecodable: not valid {name} as its {why} says (offset {exc.start})"
        ) from None


def to_utf8_xml(body: bytes, content_type: str = "") -> tuple[bytes, str | None]:
    """XML re-encoded as UTF-8 with a matching declaration, so an XML parser reads it once, right.

    Raises DecodeError for binary data or text in no declared encoding.
    """
    decoded = decode(body, content_type, markup="xml")
    text = decoded.text
    match = re.match(r"\s*<\?xml[^>]*\?>", text)
    if match:
        decl = re.sub(
            r"encoding\s*=\s*[\"'][^\"']*[\"']", 'encoding="utf-8"', match.group(0), count=1
        )
        text = decl + text[match.end() :]
    return text.encode("utf-8", errors="replace"), decoded.warning

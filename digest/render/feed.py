"""RSS 2.0 of the archive (https://www.rssboard.org/rss-specification), from plain values.

Pure: no database, no settings. ElementTree writes the XML, so every title and headline is
escaped by construction. Each item's description is a short HTML list of the edition's
headlines (escaped as text inside the element, as RSS readers expect); the feed names itself
with atom:link rel="self", as the RSS Advisory Board recommends.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class Channel:
    title: str
    link: str
    self_url: str
    description: str
    language: str
    built_at: datetime


@dataclass(frozen=True)
class FeedItem:
    title: str
    link: str
    published_at: datetime
    summary: str = ""
    headlines: tuple[str, ...] = ()


def rss(channel: Channel, items: Sequence[FeedItem]) -> bytes:
    ET.register_namespace("atom", ATOM)
    root = ET.Element("rss", {"version": "2.0"})
    chan = ET.SubElement(root, "channel")
    _text(chan, "title", channel.title)
    _text(chan, "link", channel.link)
    _text(chan, "description", channel.description)
    _text(chan, "language", channel.language)
    _text(chan, "lastBuildDate", format_datetime(channel.built_at))
    ET.SubElement(
        chan,
        f"{{{ATOM}}}link",
        {"href": channel.self_url, "rel": "self", "type": "application/rss+xml"},
    )
    for item in items:
        node = ET.SubElement(chan, "item")
        _text(node, "title", item.title)
        _text(node, "link", item.link)
        _text(node, "guid", item.link).set("isPermaLink", "true")
        _text(node, "pubDate", format_datetime(item.published_at))
        _text(node, "description", _description(item))
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = value
    return node


def _description(item: FeedItem) -> str:
    parts = [f"<p>{html.escape(item.summary)}</p>"] if item.summary else []
    if item.headlines:
        lines = "".join(f"<li>{html.escape(h)}</li>" for h in item.headlines)
        parts.append(f"<ul>{lines}</ul>")
    return "".join(parts)

"""Which CSS in a rendered email Gmail or Outlook for Windows ignores, from caniemail's data.

Warnings, never blocks: MJML's output is built to degrade in those clients (Outlook gets its own
markup inside `<!--[if mso]>` comments, which is skipped here), but staff should know when a
template change leans on something a large share of readers will not see.

Fast enough to run on every variant of every preflight: the CSS is read once into the set of
what it uses (properties, property:value pairs, at-rules and media features, pseudo-classes,
functions), and each caniemail feature is a lookup in that set; a style attribute's text is
read once however many elements and variants carry it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from selectolax.lexbor import LexborHTMLParser

CLIENT_NAMES = {"gmail": "Gmail", "outlook-windows": "Outlook for Windows"}
_DECLARATION = re.compile(r"(?<![\w-])([a-z-]+)\s*:\s*([^;{}]*)", re.IGNORECASE)
_AT_RULE = re.compile(r"@([a-z-]+)([^{;]*)", re.IGNORECASE)
_MEDIA_FEATURE = re.compile(r"\(\s*([a-z-]+)")
_PSEUDO = re.compile(r"(?<![\w:-])(::?[a-z-]+)")
_FUNCTION = re.compile(r"(?<![\w-])([a-z-]+)\(")
_SELECTORS = re.compile(r"([^{}]*)\{")


@dataclass(frozen=True)
class Feature:
    slug: str
    title: str
    key: str  # what css_used() yields for it: "prop:color", "decl:display:flex", "@media", ...
    unsupported: tuple[str, ...]  # our client names that do not support it

    @property
    def url(self) -> str:
        return f"https://www.caniemail.com/features/{self.slug}/"


@cache
def features() -> tuple[Feature, ...]:
    """The caniemail features we can recognise in CSS and that one of the clients ignores."""
    raw = resources.files("digest.render.caniemail").joinpath("css.json").read_text("utf-8")
    found = []
    for slug, entry in json.loads(raw).items():
        unsupported = tuple(c for c, r in entry["support"].items() if r["support"] == "n")
        title = entry["title"].strip()
        key = feature_key(title.removesuffix(" property"))
        if unsupported and key is not None:
            found.append(Feature(slug, title, key, unsupported))
    return tuple(found)


def feature_key(title: str) -> str | None:
    """caniemail's title of a feature as one of css_used()'s keys, for the kinds we know."""
    if re.fullmatch(r"[a-z-]+", title):
        return f"prop:{title}"
    declaration = re.fullmatch(r"([a-z-]+):\s*([a-z-]+)", title)  # display:flex
    if declaration:
        return "decl:{}:{}".format(*declaration.groups())
    at_rule = re.fullmatch(r"@([a-z-]+)(?:\s*\(([a-z-]+)[^)]*\))?", title)
    if at_rule:
        rule, condition = at_rule.groups()
        return f"@{rule}({condition})" if condition else f"@{rule}"
    pseudo = re.fullmatch(r"(::?[a-z-]+)(?:\(\))?", title)  # :hover, ::before, :has()
    if pseudo:
        return f"pseudo{pseudo.group(1)}"
    function = re.fullmatch(r"([a-z-]+)\(\)", title)  # rgba(), linear-gradient()
    if function:
        return f"fn:{function.group(1)}"
    return None


@lru_cache(maxsize=4096)
def _declarations(css: str) -> frozenset[str]:
    """Properties, property:value pairs and functions in declarations (a style attribute's
    text, or a rule's body)."""
    used = set()
    for prop, value in _DECLARATION.findall(css):
        prop = prop.lower()
        used.add(f"prop:{prop}")
        first = value.strip().split(" ", 1)[0].lower()
        used.add(f"decl:{prop}:{first.removesuffix('!important')}")
        used.update(f"fn:{name.lower()}" for name in _FUNCTION.findall(value))
    return frozenset(used)


@lru_cache(maxsize=256)
def _stylesheet(css: str) -> frozenset[str]:
    """A <style> block: its at-rules (with their media features), selectors' pseudo-classes
    and its declarations."""
    used = set(_declarations(css))
    for rule, condition in _AT_RULE.findall(css):
        used.add(f"@{rule.lower()}")
        used.update(f"@{rule.lower()}({f.lower()})" for f in _MEDIA_FEATURE.findall(condition))
    for selectors in _SELECTORS.findall(_AT_RULE.sub("", css)):
        used.update(f"pseudo{p.lower()}" for p in _PSEUDO.findall(selectors))
    return frozenset(used)


def css_used(tree: LexborHTMLParser) -> frozenset[str]:
    """Everything the CSS of a parsed page uses: its <style> blocks and style attributes. HTML
    comments are not elements, so MJML's Outlook-only markup (`<!--[if mso]>`) is left out."""
    used: set[str] = set()
    for node in tree.css("style"):
        used |= _stylesheet(node.text(deep=True))
    for style in {node.attributes.get("style") or "" for node in tree.css("[style]")}:
        used |= _declarations(style)
    return frozenset(used)


def unsupported_css(html: str | LexborHTMLParser) -> list[str]:
    """One line per feature the HTML uses that Gmail or Outlook for Windows does not support
    (the same line for every variant that uses it, so a report can list it once)."""
    used = css_used(LexborHTMLParser(html) if isinstance(html, str) else html)
    return [
        f"CSS {feature.title} is ignored by "
        f"{' and '.join(CLIENT_NAMES[c] for c in feature.unsupported)}: make sure the email "
        f"reads well without it ({feature.url})"
        for feature in sorted(features(), key=lambda f: f.title)
        if feature.key in used
    ]

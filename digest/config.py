"""Settings: `digest.toml` plus `DIGEST_*` environment variables, read once, in one place.

Precedence (highest first): environment (`DIGEST_<SECTION>__<KEY>`), the TOML file, defaults.
Secrets are read only from the environment, so a config file can be committed and shared.
Everything else receives a `Settings` value; no other module reads `os.environ`.

The environment is layered on the file here (`environment_overrides`), the way pydantic-settings
did it (names in any letter case; a list or a table given as JSON), without importing it: every
command loads the settings, and pydantic-settings alone cost ~0.1 s of each one's start-up.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tomllib
import typing
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from digest import USER_AGENT
from digest.colors import DARK, LIGHT, MIN_CONTRAST, Palette, low_contrast, parse_hex
from digest.crontab import CrontabError
from digest.crontab import parse as parse_crontab
from digest.errors import ConfigError

DEFAULT_CONFIG = "digest.toml"
SECRET_KEYS = ("secret_key", "sendgrid_api_key", "smtp_password")


def _in_range(value: Any, low: int, high: int) -> bool:
    """An integer (or its text, from the environment) within [low, high]."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return False
    return low <= number <= high and str(number) == str(value).strip()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublicationSettings(_Section):
    name: str = Field(description="The publication's name, shown in the email header and footer.")
    url: str = Field(description="The publication's home page (http or https).")
    timezone: str = Field(
        "UTC", description="IANA timezone; 'the week' and send times are computed in it."
    )
    postal_address: str = Field(
        description="Physical postal address printed in every email (CAN-SPAM requires one)."
    )
    logo_url: str | None = Field(None, description="Absolute https URL of the header logo.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _require_http(value)

    @field_validator("logo_url")
    @classmethod
    def _https_logo(cls, value: str | None) -> str | None:
        return None if value is None else _require_http(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class NewsletterSettings(_Section):
    title: str = Field(description="The newsletter's name, e.g. 'The Weekly Round-up'.")
    from_email: str = Field(description="Sender address (its domain must be authenticated).")
    from_name: str | None = Field(None, description="Display name for From:.")
    reply_to: str | None = Field(None, description="Reply-To address.")
    sections: list[str] = Field(min_length=1, description="The sections an edition is built from.")
    max_items: int = Field(12, ge=1, le=100, description="Most articles in one edition.")
    min_items: int = Field(
        3, ge=1, description="Fewest articles; a thinner week is an error, not an email."
    )
    per_section: int = Field(
        4, ge=1, description="Most articles from one section (the section quota)."
    )
    window_days: int = Field(7, ge=1, le=31, description="Length of 'the week' in days.")
    send_window_hours: int = Field(
        24,
        ge=1,
        le=24 * 14,
        description="Hours after an edition's cut-off in which it may be sent; later, `digest "
        "send` refuses it (unless --force --reason).",
    )
    subject: str = Field(
        "{title}: {date}",
        description="Subject template; {title} and {date} (the cut-off date) are filled in.",
    )
    intro: str = Field(
        "The week in {sections}: {stories} chosen by our editors.",
        description="Default intro paragraph of each edition (staff may set another). Filled "
        "in per variant: {sections} (the reader's sections, 'Europe and Asia'), {stories} "
        "('3 stories') and {count} ('3'); empty: no intro.",
    )
    excerpt_words: int = Field(45, ge=5, le=200, description="Excerpt length in words.")
    language: str = Field("en", description="Language tag for the email's <html lang>.")
    templates_dir: str | None = Field(
        None,
        description="A folder of email templates that override ours file by file (same names "
        "as templates/email/, e.g. _footer.mjml.j2); ours stay reachable as digest/NAME.",
    )

    @field_validator("from_email", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or value.startswith("@")):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("sections")
    @classmethod
    def _unique_sections(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("sections must be unique")
        return value


SourceKind = Literal["feed", "sitemap", "listing", "page", "picks"]


# "ftp:", "javascript:", "HTTPS:": a scheme of two letters or more (one letter is a drive).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class SourceSettings(_Section):
    url: str = Field(description="http(s):// URL, file:// URL, or a path relative to the config.")
    kind: SourceKind = Field(
        "feed",
        description="What the URL points at: feed (RSS/Atom/JSON Feed), sitemap (sitemap.xml, "
        "index or Google News sitemap), listing (a section page linking to articles), page "
        "(one article page) or picks (an editor-picks TOML or YAML file).",
    )
    section: str | None = Field(None, description="Section for every article from this source.")
    name: str | None = Field(None, description="A label for reports.")
    link_pattern: str | None = Field(
        None,
        description="listing only: a regular expression an article link must match (searched "
        "in the absolute URL); without it, links in <nav>, <header>, <footer> and <aside> and "
        "links to tag, author and pagination pages are skipped.",
    )
    max_pages: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="sitemap, listing and picks: most article pages fetched per run "
        "(default: [gather] max_pages).",
    )
    timeout_s: float | None = Field(
        None, gt=0, le=600, description="Seconds allowed per fetch (default: [gather] timeout_s)."
    )

    @field_validator("url")
    @classmethod
    def _fetchable(cls, value: str) -> str:
        """A scheme we cannot fetch is a mistake in the file, not a missing local file."""
        value = value.strip()
        if not value:
            raise ValueError("is empty (an http(s):// URL, a file:// URL or a path)")
        scheme = _SCHEME.match(value)
        if scheme and scheme.group(1).lower() not in ("http", "https", "file"):
            raise ValueError(
                f"{scheme.group(1)!r} URLs cannot be fetched "
                "(use http(s)://, file:// or a path relative to the config file)"
            )
        return value

    @field_validator("link_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _options_fit_the_kind(self) -> SourceSettings:
        if self.link_pattern is not None and self.kind != "listing":
            raise ValueError(f"link_pattern applies only to kind = 'listing', not {self.kind!r}")
        if self.max_pages is not None and self.kind not in ("sitemap", "listing", "picks"):
            raise ValueError(f"max_pages applies to sitemap, listing and picks, not {self.kind!r}")
        return self


class GatherSettings(_Section):
    """How sources are fetched: every byte from outside is bounded in time and size."""

    concurrency: int = Field(
        16, ge=1, le=128, description="Most fetches in flight at once, across all sources."
    )
    timeout_s: float = Field(
        15.0, gt=0, le=600, description="Seconds allowed per fetch (connect, redirects, body)."
    )
    max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest response body in bytes (after decompression); bigger is an error.",
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Most redirects followed per fetch.")
    user_agent: str = Field(
        USER_AGENT, description="User-Agent header; the default names digest and its URL."
    )
    max_items_per_source: int = Field(
        500, ge=1, le=100_000, description="Most items kept from one feed (the newest)."
    )
    max_pages: int = Field(
        30, ge=1, le=1000, description="Most article pages fetched per sitemap or listing source."
    )
    title_similarity: float = Field(
        0.8,
        ge=0.5,
        le=1.0,
        description="Headlines whose word sets overlap at least this much (Jaccard) are one "
        "article; 1.0 merges only identical headlines.",
    )
    conditional_get: bool = Field(
        True,
        description="Send the stored ETag / Last-Modified so an unchanged source answers "
        "304 and is not parsed again.",
    )

    @field_validator("user_agent")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("must be one non-empty line (no control characters)")
        return value


class RankSettings(_Section):
    """The ranking's signals and limits (digest.rank); [newsletter] keeps max_items, min_items
    and per_section."""

    half_life_hours: float = Field(
        72.0, gt=0, le=24 * 60, description="Hours after which an article's recency halves."
    )
    section_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Table of section = weight; recency is multiplied by it (default 1.0).",
    )
    pick_bonus: float = Field(
        1.0,
        ge=0,
        le=10,
        description="Added to an editor's pick's score (picks are pinned: always in unless "
        "dropped; the bonus decides their order and the lead).",
    )
    popularity_file: str | None = Field(
        None,
        description="CSV file of `url,score` rows (page views, shares: any number >= 0; an "
        "optional `url,score` header); scores are normalised over the week to 0..1. A missing "
        "file or a bad row stops the build (exit 2) naming the file and line.",
    )
    popularity_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the popularity signal (0..1 per week)."
    )
    clicks_weight: float = Field(
        0.5,
        ge=0,
        le=10,
        description="Weight of the clicks our past editions recorded for an article's URL "
        "(link_clicks, normalised over the week to 0..1).",
    )
    image_bonus: float = Field(0.0, ge=0, le=10, description="Added when an article has an image.")
    excerpt_bonus: float = Field(
        0.0, ge=0, le=10, description="Added when an article has an excerpt."
    )
    per_section_min: int = Field(
        1,
        ge=0,
        description="Each section's best articles taken first, up to this many (0: none), so "
        "one busy section cannot fill the edition.",
    )
    max_per_author: int | None = Field(
        None, ge=1, description="Most articles by one author in an edition (none: no limit)."
    )

    @field_validator("section_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, weight in value.items() if not 0 <= weight <= 100]
        if bad:
            raise ValueError(f"weights must be between 0 and 100 (see {', '.join(bad)})")
        return value


# The palettes' defaults live with the contrast rules (every text >= 4.5:1 on both grounds).
_LIGHT = asdict(LIGHT)
_DARK = asdict(DARK)
_COLOUR_ROLES = {
    "background": "the page around the content, and the footer",
    "surface": "the card the articles sit on",
    "text": "body text: the intro and excerpts",
    "muted": "bylines, dates, the footer's text",
    "headline": "headlines and the masthead",
    "accent": "section names and the footer's links",
    "rule": "dividers (decoration, not text)",
    "button": "a button's fill",
    "button_text": "a button's label",
}
# A font stack goes into style attributes: names, commas, spaces, quotes and hyphens only.
_FONT_STACK = re.compile(r"[A-Za-z0-9 ,'\"-]+")


def _colour(name: str, scheme: str, default: str) -> Any:
    return Field(default, description=f"{scheme} colour of {_COLOUR_ROLES[name]}.")


class BrandingSettings(_Section):
    """How the emails look: two palettes (light, and dark for readers whose mail app is in dark
    mode), fonts and widths. Every text colour must reach 4.5:1 on both grounds (checked at
    load: digest/colors.py)."""

    background: str = _colour("background", "Light", _LIGHT["background"])
    surface: str = _colour("surface", "Light", _LIGHT["surface"])
    text: str = _colour("text", "Light", _LIGHT["text"])
    muted: str = _colour("muted", "Light", _LIGHT["muted"])
    headline: str = _colour("headline", "Light", _LIGHT["headline"])
    accent: str = _colour("accent", "Light", _LIGHT["accent"])
    rule: str = _colour("rule", "Light", _LIGHT["rule"])
    button: str = _colour("button", "Light", _LIGHT["button"])
    button_text: str = _colour("button_text", "Light", _LIGHT["button_text"])
    dark_background: str = _colour("background", "Dark-mode", _DARK["background"])
    dark_surface: str = _colour("surface", "Dark-mode", _DARK["surface"])
    dark_text: str = _colour("text", "Dark-mode", _DARK["text"])
    dark_muted: str = _colour("muted", "Dark-mode", _DARK["muted"])
    dark_headline: str = _colour("headline", "Dark-mode", _DARK["headline"])
    dark_accent: str = _colour("accent", "Dark-mode", _DARK["accent"])
    dark_rule: str = _colour("rule", "Dark-mode", _DARK["rule"])
    dark_button: str = _colour("button", "Dark-mode", _DARK["button"])
    dark_button_text: str = _colour("button_text", "Dark-mode", _DARK["button_text"])
    font_body: str = Field(
        "Helvetica, Arial, sans-serif", description="Font stack of body text (CSS font-family)."
    )
    font_headline: str = Field(
        "Georgia, 'Times New Roman', serif",
        description="Font stack of headlines, section names and the masthead.",
    )
    content_width: int = Field(
        600, ge=480, le=800, description="Width of the email's content column in pixels."
    )
    logo_width: int = Field(
        180,
        ge=40,
        le=800,
        description="Largest width of [publication] logo_url in the header, in pixels (give a "
        "sharp image twice as wide; a narrower one is not stretched).",
    )
    dark_logo_url: str | None = Field(
        None,
        description="A logo for dark mode (light ink on a transparent ground), shown instead "
        "of logo_url by mail apps that follow the reader's dark mode.",
    )

    @field_validator(*_LIGHT, *(f"dark_{name}" for name in _DARK))
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        return parse_hex(value)

    @field_validator("font_body", "font_headline")
    @classmethod
    def _font_stack(cls, value: str) -> str:
        if not _FONT_STACK.fullmatch(value.strip()):
            raise ValueError(
                f"{value!r} is not a font stack like \"Georgia, 'Times New Roman', serif\" "
                "(names, commas, spaces, quotes and hyphens only)"
            )
        return value.strip()

    @field_validator("dark_logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        return None if value is None else _require_http(value)

    @model_validator(mode="after")
    def _logo_fits(self) -> BrandingSettings:
        if self.logo_width > self.content_width:
            raise ValueError(
                f"logo_width ({self.logo_width}) is wider than content_width ({self.content_width})"
            )
        return self

    def palette(self, dark: bool = False) -> Palette:
        prefix = "dark_" if dark else ""
        return Palette(**{name: getattr(self, prefix + name) for name in _LIGHT})

    def contrast_problems(self) -> list[str]:
        """'dark_muted #55585e on dark_surface #1c1f24 is 2.1:1', one per pair below 4.5:1."""
        return [
            clash.describe(prefix)
            for prefix in ("", "dark_")
            for clash in low_contrast(self.palette(dark=bool(prefix)))
        ]


class DatabaseSettings(_Section):
    url: str = Field(
        "sqlite:///digest.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the config file.",
    )


class DeliverySettings(_Section):
    backend: Literal["outbox", "smtp", "sendgrid"] = Field(
        "outbox", description="outbox writes .eml files; smtp and sendgrid send for real."
    )
    outbox_dir: str = Field("outbox", description="Where the outbox backend writes .eml files.")
    sendgrid_host: str = Field(
        "https://api.sendgrid.com", description="SendGrid API base URL (tests use a fake)."
    )
    smtp_host: str = Field("localhost", description="SMTP server host.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="How the SMTP connection is secured."
    )
    smtp_username: str | None = Field(None, description="SMTP login (password from env).")
    batch_size: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Recipients per batch (none: the backend's largest: 1000 for sendgrid and "
        "the outbox, 100 for smtp).",
    )
    unsubscribe_mailto: str | None = Field(
        None, description="Optional mailto: address added to List-Unsubscribe."
    )
    # --- delivery engine (issue 5) ---
    smtp_ca_file: str | None = Field(
        None,
        description="PEM file of CA certificates the SMTP server's certificate must chain "
        "to (default: the system's trust store). Verification is never switched off.",
    )
    request_timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds to wait for the SendGrid API or the SMTP server."
    )
    rate_per_second: float | None = Field(
        None,
        gt=0,
        description="Most messages per second one worker process may hand to this backend "
        "(none: no limit).",
    )
    rate_per_hour: int | None = Field(
        None,
        ge=1,
        description="Most messages per hour one worker process may hand to this backend "
        "(none: no limit).",
    )
    warmup_start: date | None = Field(
        None, description="First day of an IP/domain warm-up; day 1 of `warmup_daily`."
    )
    warmup_daily: list[int] = Field(
        default_factory=list,
        description="Warm-up ramp: most messages on day 1, 2, ... after warmup_start (UTC days); "
        "no cap once the list runs out. A send stops at the cap and continues with --resume.",
    )
    click_tracking: bool = Field(
        False, description="SendGrid click tracking (rewrites links; feeds per-link click counts)."
    )
    open_tracking: bool = Field(
        False, description="SendGrid open tracking (a pixel; feeds the per-edition open count)."
    )
    retry_max_attempts: int = Field(
        5, ge=1, le=50, description="Tries per recipient on 429, 5xx, timeouts, connection errors."
    )
    retry_base_delay: float = Field(
        2.0, gt=0, description="Seconds before the first retry; doubles on each attempt, jittered."
    )
    retry_max_delay: float = Field(
        300.0, gt=0, description="Longest wait of our own backoff between two tries, in seconds."
    )
    retry_max_provider_wait: float = Field(
        3600.0,
        gt=0,
        description="Longest wait the provider may ask for (Retry-After, X-RateLimit-Reset) "
        "that is honoured as given, in seconds; a longer one is cut to this.",
    )
    retry_on_timeout: bool = Field(
        True,
        description="Retry a request that timed out. The provider may have taken it, so "
        "false leaves those recipients uncertain (a miss) instead of risking a duplicate.",
    )
    dkim_key_path: str | None = Field(
        None, description="PEM private key: the smtp backend DKIM-signs every message with it."
    )
    dkim_selector: str | None = Field(None, description="DKIM selector (the s= tag).")
    dkim_domain: str | None = Field(
        None, description="DKIM signing domain (d=); default: the domain of from_email."
    )
    webhook_public_key: str | None = Field(
        None,
        description="SendGrid Event Webhook verification key (base64, as SendGrid shows "
        "it); the webhook refuses every request until it is set.",
    )
    webhook_max_age: int = Field(
        600,
        ge=10,
        le=86400,
        description="Seconds a signed webhook timestamp stays acceptable (replay window).",
    )
    blocked_threshold: int = Field(
        3, ge=1, description="Suppress an address after this many `blocked` bounces."
    )
    concurrency: int = Field(
        32,
        ge=1,
        le=256,
        description="Requests in flight per worker: batches sent at once, each on a keep-alive "
        "connection of its own (at most 8 with smtp; the outbox writes one batch at a time). "
        "Each batch is claimed and committed before its request and recorded after its answer.",
    )
    pipeline_depth: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Deprecated: read as `concurrency` (with a warning) when that is not set.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes for `digest send` (more than 1 needs PostgreSQL).",
    )
    worker_timeout: int = Field(
        120,
        ge=10,
        description="Seconds without a heartbeat after which a worker on another "
        "host is taken for dead, so that --resume may retry its rows.",
    )
    test_subject_prefix: str = Field(
        "[TEST] ", description="Prefixed to the subject of `digest send --test-to` messages."
    )

    @field_validator("webhook_public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            load_der_public_key(base64.b64decode(value.strip(), validate=True))
        except (ValueError, TypeError, binascii.Error):
            raise ValueError("not a base64 DER public key (copy it from SendGrid)") from None
        return value.strip()

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        """`pipeline_depth` (before issue 17) counts as `concurrency` when that is not set."""
        if isinstance(data, dict) and _in_range(data.get("pipeline_depth"), 1, 256):
            data = {"concurrency": data["pipeline_depth"], **data}
        return data  # a bad pipeline_depth is reported by its own field, once

    @model_validator(mode="after")
    def _consistent(self) -> DeliverySettings:
        if bool(self.dkim_key_path) != bool(self.dkim_selector):
            raise ValueError("dkim_key_path and dkim_selector must be set together")
        if self.warmup_daily and self.warmup_start is None:
            raise ValueError("warmup_daily needs warmup_start (the ramp's first day)")
        if any(n < 1 for n in self.warmup_daily):
            raise ValueError("warmup_daily caps must be at least 1")
        return self


class WebSettings(_Section):
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public URL of the web app; unsubscribe and preference links start with it. "
        "With the smtp or sendgrid backend it must be https:// (RFC 8058 one-click), except on "
        "127.0.0.1, localhost or ::1.",
    )
    host: str = Field("127.0.0.1", description="Interface `digest serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `digest serve` listens on.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse-proxy IPs whose X-Forwarded-For is believed (the client IP that "
        "rate limits and consent records use); empty: the TCP peer is the client.",
    )
    subscribe_ip_limit: int = Field(
        20,
        ge=1,
        description="Subscribe and resend requests one client (an IPv4 address, an IPv6 /64) "
        "may make per subscribe_ip_window_minutes (shared by every web process: kept in the "
        "database); more get HTTP 429.",
    )
    subscribe_ip_window_minutes: int = Field(
        60, ge=1, description="The window of subscribe_ip_limit, in minutes."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers, counted from connecting "
        "or from the request's first byte; a slower client is disconnected (`digest serve`).",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a request's body once the app reads it; a "
        "slower client gets HTTP 408 and is disconnected.",
    )
    archive: bool = Field(
        True,
        description="Publish every sent edition at {base_url}/archive/ with an RSS feed; the "
        "emails then carry a 'View in browser' link to it. false: no archive and no link.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _require_http(value).rstrip("/")


class StaffSettings(_Section):
    """Staff sign-in and API tokens (digest.staff): how long a session lasts, and how many
    failures an account or an IP may have before it must wait."""

    session_hours: int = Field(
        12, ge=1, le=720, description="How long a console sign-in lasts, in hours."
    )
    login_failures: int = Field(
        10,
        ge=1,
        description="Failed sign-ins allowed per account and per IP per login_window_minutes "
        "(shared by every web process); past it, sign-in answers HTTP 429 until the window "
        "refills, even with the right password.",
    )
    login_window_minutes: int = Field(
        15, ge=1, description="The window of login_failures, in minutes."
    )
    token_failures: int = Field(
        20,
        ge=1,
        description="API requests with a wrong, expired or revoked token or session one IP may "
        "make per token_window_minutes (shared by every web process); past it, HTTP 429.",
    )
    token_window_minutes: int = Field(
        15, ge=1, description="The window of token_failures, in minutes."
    )


class SubscribersSettings(_Section):
    confirm_ttl_hours: int = Field(
        72, ge=1, le=24 * 14, description="How long a confirmation link works (single use)."
    )
    confirm_interval_minutes: int = Field(
        10,
        ge=1,
        description="At most one confirmation email per address per this many minutes "
        "(shared by every process: kept in the database).",
    )
    confirm_daily_cap: int = Field(
        3, ge=1, description="At most this many confirmation emails per address per 24 hours."
    )
    pending_expiry_days: int = Field(
        7,
        ge=1,
        description="`digest subscribers purge-pending` deletes requests not confirmed "
        "within this many days.",
    )
    max_pause_weeks: int = Field(
        12, ge=1, le=104, description="Longest pause the preference center offers, in weeks."
    )
    consent_text_version: str = Field(
        "1",
        min_length=1,
        max_length=64,
        description="Names the consent wording below; recorded with every consent. Change it "
        "whenever the wording changes.",
    )
    consent_text: str = Field(
        "I would like to receive the newsletter by email. I can unsubscribe at any time with "
        "the link in every email.",
        min_length=1,
        description="What the subscribe form tells people they agree to (stored as evidence).",
    )
    from_email: str | None = Field(
        None,
        description="Sender of confirmation emails (default: [newsletter] from_email); Google "
        "asks for transactional mail to come from a different address than newsletters.",
    )
    from_name: str | None = Field(
        None, description="Display name for confirmation emails (default: [newsletter] from_name)."
    )
    welcome_email: bool = Field(
        False,
        description="Send a welcome email when someone confirms: what they will get, how "
        "often, their sections, and their links to change them or leave.",
    )

    @field_validator("from_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or value.startswith("@")):
            raise ValueError(f"not an email address: {value!r}")
        return value


class ScheduleSettings(_Section):
    """When the edition builds and goes out by itself (`digest schedule`, `digest run-due`)."""

    cron: str | None = Field(
        None,
        description="When the edition goes out: a five-field cron expression (minute hour "
        "day-of-month month day-of-week, read as crontab(5) reads it) in [publication] "
        'timezone, e.g. "0 7 * * mon"; none: nothing is scheduled.',
    )
    build_lead_hours: int = Field(
        24,
        ge=0,
        le=24 * 14,
        description="The draft is built this many hours before the slot, for staff to review; "
        "its cut-off is the slot itself.",
    )
    approval: Literal["require", "auto"] = Field(
        "require",
        description="require: nothing is sent unless staff approved the edition; auto: the "
        "scheduler rebuilds the draft at the slot and approves it if preflight passes.",
    )
    notify: list[str] = Field(
        default_factory=list,
        description="Staff addresses told of every build, skip and failure (and each send).",
    )

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None or not value.strip():  # DIGEST_SCHEDULE__CRON= switches it off
            return None
        try:
            parsed = parse_crontab(value)
        except CrontabError as exc:
            raise ValueError(str(exc)) from None
        if len(parsed.minute) != 1:
            minute = value.split()[0]
            raise ValueError(
                f"an edition at most once an hour: the minute field must name one minute, "
                f"not {minute!r}"
            )
        return " ".join(value.split())

    @field_validator("notify")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or address.startswith("@") or any(c.isspace() for c in address):
                raise ValueError(f"not an email address: {address!r}")
        return value


class Settings(BaseModel):
    """The whole configuration. Build it with `load_settings` (the file and the environment);
    tests may construct it directly (no environment is read then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publication: PublicationSettings
    newsletter: NewsletterSettings
    sources: list[SourceSettings] = Field(default_factory=list)
    database: DatabaseSettings = DatabaseSettings()
    delivery: DeliverySettings = DeliverySettings()
    web: WebSettings = WebSettings()
    subscribers: SubscribersSettings = SubscribersSettings()
    staff: StaffSettings = StaffSettings()
    gather: GatherSettings = GatherSettings()
    rank: RankSettings = RankSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    branding: BrandingSettings = BrandingSettings()
    secret_key: SecretStr | None = Field(
        None, description="Signs subscriber links; several keys comma-separated, newest first."
    )
    sendgrid_api_key: SecretStr | None = Field(None, description="SendGrid API key.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    config_dir: Path = Field(Path("."), description="Directory relative paths are resolved in.")

    def secret_keys(self) -> list[str]:
        """Signing keys, newest first; raises a ConfigError when none is set."""
        raw = self.secret_key.get_secret_value() if self.secret_key else ""
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        if not keys:
            raise ConfigError(
                "DIGEST_SECRET_KEY is not set: subscriber links cannot be signed "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return keys

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.config_dir / path).resolve()

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against the config dir."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = url[len(prefix) :]
            if path and not path.startswith("/"):
                return prefix + str(self.resolve_path(path))
        return url

    @property
    def outbox_path(self) -> Path:
        return self.resolve_path(self.delivery.outbox_dir)

    def source_location(self, source: SourceSettings) -> str:
        """A source's URL, with a bare relative path made absolute against the config dir."""
        if "://" in source.url:
            return source.url
        return str(self.resolve_path(source.url))


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Backends that send real mail: their List-Unsubscribe one-click URL must be https (RFC 8058 §3.1).
_REAL_SEND_BACKENDS = frozenset({"smtp", "sendgrid"})


def https_base_url_problem(settings: Settings) -> str | None:
    """Why [web] base_url cannot be used with the configured backend, or None: the smtp and
    sendgrid backends need https (a loopback host may use http, for local testing)."""
    backend = settings.delivery.backend
    url = settings.web.base_url
    if backend not in _REAL_SEND_BACKENDS or url.startswith("https://"):
        return None
    if (urlsplit(url).hostname or "").lower() in _LOOPBACK_HOSTS:
        return None
    return (
        f"[web] base_url: must start with https:// with the {backend} backend, got {url!r} "
        "(RFC 8058 one-click unsubscribe needs https; http is only for 127.0.0.1, localhost or ::1)"
    )


def deprecations(settings: Settings) -> list[str]:
    """Keys that still work under an old name, one warning line each (the CLI prints them)."""
    d = settings.delivery
    if d.pipeline_depth is None:
        return []
    if d.concurrency != d.pipeline_depth:
        return [
            f"[delivery] pipeline_depth is deprecated and ignored: [delivery] concurrency = "
            f"{d.concurrency} is set (remove pipeline_depth)"
        ]
    return [
        f"[delivery] pipeline_depth is deprecated: read as [delivery] concurrency = "
        f"{d.concurrency} (requests in flight per worker); rename the key"
    ]


def _require_http(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {value!r}")
    return value


def config_path(explicit: str | os.PathLike[str] | None, environ: dict[str, str]) -> Path:
    """`--config` wins, then DIGEST_CONFIG, then ./digest.toml."""
    return Path(explicit or environ.get("DIGEST_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: Path, **overrides: Any) -> Settings:
    """Read the TOML file, layer the environment on top, validate; errors become ConfigError."""
    data = _read_toml(path)
    _refuse_secrets(data, path)
    data.pop("config_dir", None)
    _merge(data, environment_overrides(dict(os.environ)))
    data.update(overrides)
    try:
        settings = Settings(config_dir=path.resolve().parent, **data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    _check_cross_references(settings, path)
    return settings


ENV_PREFIX = "DIGEST_"
ENV_NESTING = "__"


def environment_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """The DIGEST_* variables that name a setting, as the nested data they override:
    DIGEST_DELIVERY__BACKEND=smtp -> {"delivery": {"backend": "smtp"}}, DIGEST_SECRET_KEY ->
    {"secret_key": ...}. Any key of a section is passed on, so a misspelt one is reported as an
    unknown key (naming the variable); a variable that names no setting (DIGEST_CONFIG,
    DIGEST_TEST_...) is not ours to read here. A list or a table is written as JSON."""
    found: dict[str, Any] = {}
    fields = Settings.model_fields
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        head, _, key = upper[len(ENV_PREFIX) :].lower().partition(ENV_NESTING.lower())
        field = fields.get(head)
        if field is None or head == "config_dir":
            continue
        value = environ[name]
        section = _model_of(field.annotation)
        if key and section is not None:
            inner = section.model_fields.get(key)
            decoded = _decode(name, value, inner.annotation if inner else None)
            found.setdefault(head, {})[key] = decoded
        elif not key:
            found[head] = _decode(name, value, field.annotation)
    return found


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _decode(variable: str, value: str, annotation: Any) -> Any:
    """A list, a table or a section is JSON in an environment variable; anything else is given
    to the model as text, which validates and converts it like a TOML value."""
    structured = _model_of(annotation) is not None or typing.get_origin(annotation) in (list, dict)
    if not structured:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{variable}: not valid JSON ({exc.msg}): a list or a table is JSON "
            "in an environment variable, e.g. '[1000, 2000]'"
        ) from None


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Deep-merge: a variable overrides one key of a section, and the rest of it survives."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


# Where each secret comes from, and names a person may give one in the file by mistake.
SECRET_VARIABLES = {
    "secret_key": "DIGEST_SECRET_KEY",
    "sendgrid_api_key": "DIGEST_SENDGRID_API_KEY",
    "smtp_password": "DIGEST_SMTP_PASSWORD",
}


def secret_variable(key: str) -> str | None:
    """The environment variable a secret-looking key belongs in: `[delivery] sendgrid_api_key`,
    `api_key`, `smtp_password`, `password`, `[web] secret_key`, ... (None: not a secret)."""
    name = key.lower()
    if name in SECRET_VARIABLES:
        return SECRET_VARIABLES[name]
    if "password" in name or name in ("smtp_pass", "pass"):
        return SECRET_VARIABLES["smtp_password"]
    if "api_key" in name or "apikey" in name or ("sendgrid" in name and "key" in name):
        return SECRET_VARIABLES["sendgrid_api_key"]
    if "secret" in name or name in ("signing_key", "signing_keys"):
        return SECRET_VARIABLES["secret_key"]
    return None


def _refuse_secrets(data: dict[str, Any], path: Path) -> None:
    """A secret in the file, at the top or in any table, is refused naming its variable: a
    config file is committed and shared, so secrets live only in the environment."""
    places: list[tuple[str, str]] = [("", key) for key in data if not isinstance(data[key], dict)]
    for table, values in data.items():
        if isinstance(values, dict):
            places += [(f"[{table}] ", key) for key in values]
    for where, key in places:
        variable = secret_variable(key)
        if variable is not None:
            raise ConfigError(
                f"{path}: {where}{key}: a secret does not belong in the config file (it is "
                f"shared and committed); set the environment variable {variable} instead"
            )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (pass --config PATH or set DIGEST_CONFIG)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def format_validation_error(exc: ValidationError, path: Path) -> str:
    """One line per problem, naming the key the way it is written in the TOML file."""
    lines = []
    for err in exc.errors():
        key = _toml_key(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif err["type"] == "missing":
            message = "required key is missing"
        variable = _env_variable(err["loc"])
        where = f"{variable} (overrides {path})" if variable else str(path)
        lines.append(f"{where}: {key}: {message}")
    return "\n".join(lines)


def _env_variable(loc: tuple[int | str, ...]) -> str | None:
    """The DIGEST_<SECTION>__<KEY> variable set for this key, if one is: the value came from
    there, so pointing at the file would send the reader to the wrong place."""
    if len(loc) < 2 or not all(isinstance(part, str) for part in loc[:2]):
        return None
    name = f"DIGEST_{str(loc[0]).upper()}__{str(loc[1]).upper()}"
    matches = [key for key in os.environ if key.upper() == name]
    return matches[0] if matches else None


def _toml_key(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "(top level)"
    head, *rest = loc
    if head == "sources" and rest and isinstance(rest[0], int):
        tail = ".".join(str(p) for p in rest[1:])
        return f"[[sources]] #{rest[0] + 1}" + (f" {tail}" if tail else "")
    if rest:
        return f"[{head}] " + ".".join(str(p) for p in rest)
    return str(head)


def _check_cross_references(settings: Settings, path: Path) -> None:
    problem = https_base_url_problem(settings)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    _check_design(settings, path)
    known = set(settings.newsletter.sections)
    for section in settings.rank.section_weights:
        if section not in known:
            raise ConfigError(
                f"{path}: [rank] section_weights: {section!r} is not one of [newsletter] "
                f"sections {sorted(known)}"
            )
    if settings.rank.per_section_min > settings.newsletter.per_section:
        raise ConfigError(
            f"{path}: [rank] per_section_min ({settings.rank.per_section_min}) is more than "
            f"[newsletter] per_section ({settings.newsletter.per_section})"
        )
    for index, source in enumerate(settings.sources, start=1):
        if source.section is not None and source.section not in known:
            raise ConfigError(
                f"{path}: [[sources]] #{index} section: {source.section!r} is not one of "
                f"[newsletter] sections {sorted(known)}"
            )


def _check_design(settings: Settings, path: Path) -> None:
    """The palettes' contrast and the templates folder: an email that some readers cannot read,
    or templates that are not there, are found at load, not in a reader's inbox."""
    clashes = settings.branding.contrast_problems()
    if clashes:
        # The colour may come from the environment: name the variable, as for a bad key.
        variables = [_env_variable(("branding", clash.split(" ", 1)[0])) for clash in clashes]
        where = next((f"{v} (overrides {path})" for v in variables if v), str(path))
        raise ConfigError(
            f"{where}: [branding] text too faint to read: {'; '.join(clashes)} (every text "
            f"colour needs {MIN_CONTRAST}:1 on the surface and the background, and "
            'button_text on button: see README "The email\'s design")'
        )
    folder = settings.newsletter.templates_dir
    if folder is not None and not settings.resolve_path(folder).is_dir():
        raise ConfigError(
            f"{path}: [newsletter] templates_dir: {settings.resolve_path(folder)} is not a folder"
        )

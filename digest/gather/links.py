"""Which links found inside a fetched document may be followed.

A sitemap, a listing page or an article's rel=canonical is written by whoever controls that
site. So a link found in a document is followed only when it stays on the same site: an http(s)
document may lead to http(s) pages on its own host (www. ignored) or a subdomain of it, never to
`file:`, never to another site. A local document (file:// or a path, which staff configured) may
lead to files in its own directory tree, or to http(s) pages.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from digest.gather.fetch import is_http, local_path
from digest.gather.sanitize import plain_chars, safe_url


def is_local(url: str) -> bool:
    return not is_http(url)


def resolve_link(href: str | None, base: str, *, same_site_only: bool = True) -> str | None:
    """`href` made absolute against `base`, or None when it may not be followed."""
    if not href:
        return None
    href = plain_chars(href).strip()
    if is_local(base):
        return _local_link(href, base)
    url = safe_url(href, base=base)
    if url is None:
        return None
    if same_site_only and not same_site(url, base):
        return None
    return url


def _local_link(href: str, base: str) -> str | None:
    if is_http(href):
        return safe_url(href)
    if ":" in href.split("/", 1)[0] and not href.lower().startswith("file:"):
        return None  # javascript:, data:, mailto: ...
    base_path = local_path(base).resolve()
    target = urlsplit(urljoin(base_path.as_uri(), href))
    if target.scheme != "file":
        return None
    path = Path(unquote(target.path)).resolve()
    if not path.is_relative_to(base_path.parent):
        return None
    return path.as_uri()


def site_of(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


def same_site(a: str, b: str) -> bool:
    """Same host (www. ignored), or one a subdomain of the other.

    Sibling subdomains (news. and blog.) are not matched: telling example.co.uk's siblings from
    two different .co.uk sites would need the Public Suffix List.
    """
    ha, hb = site_of(a), site_of(b)
    if not ha or not hb:
        return False
    return ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha)

"""The per-recipient placeholders a rendered body carries; a backend fills them per recipient
(SendGrid substitutions, or `backends.base.personalise`), so one body serves a whole batch."""

UNSUBSCRIBE_URL = "%%unsubscribe_url%%"
MANAGE_URL = "%%manage_url%%"
PLACEHOLDERS = (UNSUBSCRIBE_URL, MANAGE_URL)

# `digest preview`: harmless sample links in place of each placeholder, plainly not a real token
# (a real one is `<public id>.<signature>`), so a click shows the "link not valid" page.
PREVIEW_TOKEN = "preview"
_PREVIEW_PATHS = {UNSUBSCRIBE_URL: "/u/", MANAGE_URL: "/manage/"}


def preview_values(base_url: str) -> dict[str, str]:
    """The value of each placeholder in a preview: `{base_url}/u/preview` and the like."""
    return {key: f"{base_url}{path}{PREVIEW_TOKEN}" for key, path in _PREVIEW_PATHS.items()}


def fill_preview(body: str, base_url: str) -> str:
    for key, value in preview_values(base_url).items():
        body = body.replace(key, value)
    return body


def without_personal_links(body: str, replacement: str) -> str:
    """A body for everyone (the archive's web copy): every per-recipient placeholder becomes
    `replacement` (the subscribe page). Our web-copy footer prints none; a publication's own
    template might, and no page may show a placeholder or anyone's link."""
    for key in PLACEHOLDERS:
        body = body.replace(key, replacement)
    return body

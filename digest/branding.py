"""Settings -> the renderer's Branding: how every email digest sends looks (the editions, the
confirmation, the welcome), from [publication], [newsletter] and [branding].

Its own module because both the editions (edition/) and the notices to one person (people/)
render with it, and edition/ already imports people/.
"""

from __future__ import annotations

from digest.config import Settings
from digest.render.email import Branding


def branding(settings: Settings) -> Branding:
    pub, nl, look = settings.publication, settings.newsletter, settings.branding
    return Branding(
        publication_name=pub.name,
        publication_url=pub.url,
        postal_address=pub.postal_address,
        title=nl.title,
        timezone=pub.timezone,
        logo_url=pub.logo_url,
        language=nl.language,
        light=look.palette(),
        dark=look.palette(dark=True),
        font_body=look.font_body,
        font_headline=look.font_headline,
        content_width=look.content_width,
        logo_width=look.logo_width,
        dark_logo_url=look.dark_logo_url,
        templates_dir=(
            str(settings.resolve_path(nl.templates_dir)) if nl.templates_dir is not None else None
        ),
    )

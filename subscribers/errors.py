"""The subscriber domain's exceptions. `digest` maps them onto its own tree for the CLI and web.

Messages are written for a person and never contain a secret; they may contain the address the
person typed (it is theirs), never anybody else's.
"""

from __future__ import annotations


class SubscriberError(Exception):
    """Something a caller asked of the subscriber domain that it cannot do."""


class InvalidEmail(SubscriberError, ValueError):
    """The text is not an email address we can mail (the reason says why)."""


class InvalidName(SubscriberError, ValueError):
    """A name that cannot be stored (a NUL character, or longer than the limit)."""


class InvalidSections(SubscriberError, ValueError):
    """A section that the newsletter does not have, or no section at all."""


class InvalidPause(SubscriberError, ValueError):
    """A pause that is not a whole number of weeks within the allowed range."""


class UnknownSubscriber(SubscriberError, LookupError):
    """No subscriber with that address (or id)."""


class Suppressed(SubscriberError):
    """The address is on the suppression list: it must not be added back by an operator."""


class ConsentTextChanged(SubscriberError):
    """The configured consent text differs from the text recorded for the same version."""


class StaleConsentText(SubscriberError):
    """The request agreed to a consent text version that is no longer the current one."""

    def __init__(self, shown: str, current: str) -> None:
        super().__init__(f"version {shown!r} is not the current consent text ({current!r})")
        self.shown = shown
        self.current = current

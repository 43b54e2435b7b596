"""One exception tree for everything a user can get wrong or the world can break.

The CLI turns a DigestError into one line on stderr and its `exit_code`: no traceback for a
mistake the user can fix. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DigestError(Exception):
    """A failure with a message meant for the person running digest."""

    exit_code = 1


class EmptyAudienceError(DigestError):
    """A send found nobody to send to; it did not start (the edition stays approved)."""

    exit_code = 1


class ConfigError(DigestError):
    """The configuration is wrong: a bad, missing or mistyped key, or a missing secret."""

    exit_code = 2


class UsageError(DigestError):
    """A command was given arguments it cannot use (a malformed --now, say)."""

    exit_code = 2


class NotFoundError(DigestError):
    """An id or name given on the command line does not exist."""

    exit_code = 3


class GatherError(DigestError):
    """No source could be read, so there is nothing to build an edition from."""

    exit_code = 4


class EmptyWeekError(DigestError):
    """The week had too few articles for an edition; it is recorded as skipped. `warnings` are
    the source warnings that may explain why (the CLI prints them before the error)."""

    exit_code = 5

    def __init__(self, message: str, warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.warnings = list(warnings or [])


class EditionStateError(DigestError):
    """The edition is in a state that does not allow this (sending a draft twice, say)."""

    exit_code = 6


class RenderError(DigestError):
    """A template failed to render or compile."""

    exit_code = 7


class DeliveryError(DigestError):
    """The email backend could not deliver, or is misconfigured."""

    exit_code = 8


class SubscriberStateError(DigestError):
    """The subscriber's state does not allow this (adding back a suppressed address, say)."""

    exit_code = 9


class PreflightError(DigestError):
    """The email failed a preflight check (too big, a broken link, an unreadable header...):
    approving and sending it are refused until it is fixed or a person overrides with
    --force --reason. `report` is the whole preflight report."""

    exit_code = 10

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class AccessError(DigestError):
    """Staff access refused: not signed in (or a wrong, expired or revoked token), or a role
    that does not allow the action. Only the web app raises it; it answers 401 or 403."""

    exit_code = 2
    status = 401


class NotSignedIn(AccessError):
    """No valid credential: the web app answers 401."""

    status = 401


class Forbidden(AccessError):
    """A valid staff member whose role does not allow this: the web app answers 403."""

    status = 403


class PortInUseError(DigestError):
    """The port `digest serve` was to listen on is taken (another server runs there)."""

    exit_code = 11

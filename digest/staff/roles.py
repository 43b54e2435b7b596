"""Who may do what. Editors read everything, edit drafts and send tests; publishers also
approve, send and cancel (and undo an approval, skip a week, resume a send) and erase a
subscriber (GDPR Art. 17: it cannot be undone).

`Principal` is a staff member as a request sees them: who, which role, and how they proved it
(an API token or a console session). Every check is `check(principal, action)`, so the rule
lives here and not in each route.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from digest.edition.queries import get_edition
from digest.errors import Forbidden
from digest.store.models import DRAFT, EDITOR, PUBLISHER

READ = "read"
EDIT = "edit"
TEST = "test"
APPROVE = "approve"
UNAPPROVE = "unapprove"
CANCEL = "cancel"
SKIP = "skip"
SEND = "send"
ERASE = "erase"
ACTIONS = (READ, EDIT, TEST, APPROVE, UNAPPROVE, CANCEL, SKIP, SEND, ERASE)

MAY: dict[str, frozenset[str]] = {
    EDITOR: frozenset({READ, EDIT, TEST}),
    PUBLISHER: frozenset(ACTIONS),
}

TOKEN = "token"
SESSION = "session"


@dataclass(frozen=True)
class Principal:
    staff_id: int
    email: str
    role: str
    via: str  # TOKEN or SESSION
    token_id: int | None = None
    # The console session's CSRF token (unsafe requests must echo it); None for a token.
    csrf_token: str | None = None


def allowed(role: str, action: str) -> bool:
    return action in MAY.get(role, frozenset())


def check(principal: Principal, action: str) -> None:
    """Raise Forbidden unless the principal's role allows `action`."""
    if not allowed(principal.role, action):
        raise Forbidden(
            f"{principal.email} is {_article(principal.role)} {principal.role}: only a "
            f"publisher may {action}"
        )


def check_edit(principal: Principal, edition_id: int, status: str) -> None:
    """Editors edit drafts. An edit of an approved edition undoes the approval (the edits
    module does that, with a warning), which is a publisher's decision."""
    check(principal, EDIT)
    if status != DRAFT and not allowed(principal.role, UNAPPROVE):
        raise Forbidden(
            f"edition {edition_id} is {status}: editors edit drafts; a publisher must "
            "unapprove it first"
        )


def check_edit_of(session: Session, principal: Principal, edition_id: int) -> None:
    """`check_edit` of a stored edition: NotFoundError for an unknown one (so that a missing
    article in a request is that request's mistake, not a missing page)."""
    found = get_edition(session, edition_id)
    check_edit(principal, found.id, found.status)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"

"""The console's edition page (`/staff/editions/{id}`) and its forms.

The page: the week's ranked candidates with their reasons (chosen and left out); pin, drop,
lead, reorder (up/down buttons, or drag with the console's script), move to another section;
the subject, preheader and intro; the email as it will be sent, per variant, in desktop and
phone widths (iframes of `/staff/preview/{id}`), its text part and the preflight report; a test
send; approve and the other status changes (publishers); the send's live progress with a cancel
button, and after the send the CSV of who did not get it.

Each form calls the core function the API and the CLI call (digest.edition.edits, the send
engine through site.sends, digest.send.status), with the staff member as the actor.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from digest.backends import get_backend
from digest.edition import edits, lifecycle
from digest.edition.outgoing import outgoing
from digest.edition.preflight import preflight_edition
from digest.errors import DigestError, NotFoundError, UsageError
from digest.send import status, testmail
from digest.staff import roles, views
from digest.staff.roles import Principal
from digest.store.models import APPROVED, DRAFT
from digest.web import console
from digest.web.apierrors import about
from digest.web.site import Site, site_of
from digest.web.staff import SignedIn

pages = console.pages()
actions = console.actions()

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
Variant = Annotated[str, Query(max_length=1000)]
Text = Annotated[str, Form(max_length=20_000)]
Reason = Annotated[str, Form(max_length=2000)]


def edition_path(edition_id: int, anchor: str = "") -> str:
    return f"/staff/editions/{edition_id}" + (f"#{anchor}" if anchor else "")


@pages.get("/editions/{edition_id}")
def show(request: Request, who: SignedIn, edition_id: Id, variant: Variant = "") -> Response:
    return page(request, who, edition_id, variant)


def page(
    request: Request,
    who: Principal,
    edition_id: int,
    variant: str = "",
    *,
    status_code: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The edition page; after a refused change, with its error and the form as typed."""
    site = site_of(request)
    now = site.clock()
    try:
        with site.sessions() as session:
            detail = views.edition(session, site.settings, edition_id, now)
            editable = detail["status"] in (DRAFT, APPROVED)
            week = views.candidates(session, site.settings, edition_id) if editable else None
    except NotFoundError as exc:
        return console.render(
            request, who, "missing.html", status=404, section="dashboard", error=str(exc)
        )
    shown, shown_error = _preview(site, edition_id, variant, detail)
    report, report_error = _preflight(site, edition_id, detail)
    texts = {k: detail[k] for k in edits.TEXTS} | (typed or {})
    return console.render(
        request,
        who,
        "edition.html",
        status=status_code,
        section="dashboard",
        error=error,
        edition=detail,
        week=week,
        variant=",".join(shown.sections) if shown and variant else "",
        preview=shown,
        preview_error=shown_error,
        preflight=report,
        preflight_error=report_error,
        texts=texts,
        typed=typed or {},
        may_edit=editable and (detail["status"] == DRAFT or console.may(who, roles.UNAPPROVE)),
        sections=site.settings.newsletter.sections,
        text_limits=edits.TEXT_LIMITS,
        max_test=testmail.MAX_ADDRESSES,
    )


def _preview(
    site: Site, edition_id: int, variant: str, detail: dict[str, Any]
) -> tuple[Any, str | None]:
    if not detail["items"]:
        return None, None
    try:
        return outgoing(site.sessions, site.settings, edition_id, variant, site.clock()), None
    except DigestError as exc:
        return None, str(exc)


def _preflight(site: Site, edition_id: int, detail: dict[str, Any]) -> tuple[Any, str | None]:
    """The checks approving runs (every variant with readers); a sent edition was checked."""
    if not detail["items"] or detail["status"] not in (DRAFT, APPROVED):
        return None, None
    try:
        report = preflight_edition(site.sessions, site.settings, edition_id, site.clock())
    except DigestError as exc:
        return None, str(exc)
    return report.as_json(), None


@pages.get("/preview/{edition_id}")
def preview_html(
    request: Request, who: SignedIn, edition_id: Id, variant: Variant = ""
) -> Response:
    """The email's HTML exactly as rendered for the variant (sample links for each reader's
    own), for the edition page's iframes (its own CSP: digest/web/security.py)."""
    site = site_of(request)
    try:
        shown = outgoing(site.sessions, site.settings, edition_id, variant, site.clock())
    except DigestError as exc:
        body = f"No preview: {exc}\n"
        return Response(body, status_code=console.refused_status(exc), media_type="text/plain")
    return HTMLResponse(shown.html)


@pages.get("/editions/{edition_id}/undelivered.csv")
def undelivered(request: Request, who: SignedIn, edition_id: Id) -> Response:
    """Who did not get the edition and why (failed, skipped, uncertain, not sent), as CSV."""
    site = site_of(request)
    out = io.StringIO()
    try:
        with site.sessions() as session:
            status.write_report(out, status.report_rows(session, edition_id, failed_only=True))
    except DigestError as exc:
        return page(
            request, who, edition_id, status_code=console.refused_status(exc), error=str(exc)
        )
    name = f"edition-{edition_id}-not-delivered.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# What a change says when it worked: a message, and the core's warnings.
Done = tuple[str, list[str]]


def change(
    request: Request,
    who: Principal,
    edition_id: int,
    work: Callable[[], Done],
    *,
    anchor: str = "",
    typed: dict[str, str] | None = None,
) -> Response:
    """Run one change; on success back to the page with what it did (and the core's
    warnings), on a refusal the page again with the error, its status and what was typed."""
    try:
        message, warnings = work()
    except DigestError as exc:
        return page(
            request,
            who,
            edition_id,
            status_code=console.refused_status(exc),
            error=str(exc),
            typed=typed,
        )
    return console.done(request, edition_path(edition_id, anchor), message, warnings=warnings)


def _editing(site: Site, who: Principal, edition_id: int) -> None:
    with site.sessions() as session:
        roles.check_edit_of(session, who, edition_id)


def _result(message: str, result: edits.EditResult) -> Done:
    return message, result.warnings


ArticleRef = Annotated[str, Form(max_length=2000)]


@actions.post("/editions/{edition_id}/pin")
def pin(request: Request, who: SignedIn, edition_id: Id, article: ArticleRef) -> Response:
    """Keep an article in, whatever the ranking says."""
    return _item(request, who, edition_id, article, "pin")


@actions.post("/editions/{edition_id}/lead")
def lead(request: Request, who: SignedIn, edition_id: Id, article: ArticleRef) -> Response:
    """Pin an article and make it the lead story."""
    return _item(request, who, edition_id, article, "lead")


@actions.post("/editions/{edition_id}/drop")
def drop(request: Request, who: SignedIn, edition_id: Id, article: ArticleRef) -> Response:
    """Keep an article out; the next best takes its place."""
    return _item(request, who, edition_id, article, "drop")


def _item(request: Request, who: Principal, edition_id: int, article: str, kind: str) -> Response:
    site = site_of(request)
    now = site.clock()

    def work() -> Done:
        _editing(site, who, edition_id)
        with about("article"):  # an unknown article is the form's mistake (422), not a 404
            return _item_edit(site, who, edition_id, article, kind, now)

    return change(request, who, edition_id, work, anchor="articles")


def _item_edit(
    site: Site, who: Principal, edition_id: int, article: str, kind: str, now: datetime
) -> Done:
    factory, settings = site.sessions, site.settings
    if kind == "drop":
        result = edits.drop(factory, settings, edition_id, article, who.email, now)
        return _result(f"Dropped article {article}; the next best took its place.", result)
    result = edits.pin(factory, settings, edition_id, article, who.email, now, lead=kind == "lead")
    done = "is the lead story" if kind == "lead" else "is pinned"
    return _result(f"Article {article} {done}.", result)


@actions.post("/editions/{edition_id}/move")
def move(
    request: Request,
    who: SignedIn,
    edition_id: Id,
    article: ArticleRef,
    position: Annotated[str, Form(max_length=20)] = "",
    section: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """To a position in the reading order (up/down buttons, drag and drop), or a section."""
    site = site_of(request)

    def work() -> Done:
        _editing(site, who, edition_id)
        at = position_of(position) if position.strip() else None
        with about("article"):
            result = edits.move(
                site.sessions,
                site.settings,
                edition_id,
                article,
                who.email,
                site.clock(),
                position=at,
                section=section or None,
            )
        where = f"into {section}" if section else f"to position {result.position}"
        return _result(f"Moved article {article} {where}.", result)

    return change(request, who, edition_id, work, anchor="articles")


def position_of(text: str) -> int:
    """A position from a form (a button's value, or where an article was dropped)."""
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"position {text.strip()!r} is not a whole number") from None


def _text_route(kind: str) -> None:
    def route(request: Request, who: SignedIn, edition_id: Id, text: Text = "") -> Response:
        site = site_of(request)

        def work() -> Done:
            _editing(site, who, edition_id)
            result = edits.set_text(
                site.sessions, site.settings, edition_id, kind, text, who.email, site.clock()
            )
            done = f"Saved the {kind}." if text.strip() else f"The {kind} is the default again."
            return _result(done, result)

        return change(request, who, edition_id, work, anchor="texts", typed={kind: text})

    route.__name__ = f"set_{kind}"
    route.__doc__ = f'The {kind} ("" restores the default).'
    actions.post(f"/editions/{{edition_id}}/{kind}")(route)


for _kind in edits.TEXTS:
    _text_route(_kind)


@actions.post("/editions/{edition_id}/test")
def send_test(
    request: Request,
    who: SignedIn,
    edition_id: Id,
    to: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """The whole edition to a few addresses, outside the ledger; each address's outcome."""
    site = site_of(request)

    def work() -> Done:
        roles.check(who, roles.TEST)
        addresses = testmail.addresses(testmail.split(to))
        backend = site.backend if site.backend is not None else get_backend(site.settings)
        sent = testmail.send_test_to(
            site.sessions, site.settings, backend, edition_id, addresses, site.clock(), who.email
        )
        each = [
            f"{r.email}: {r.status}" + (f" ({r.reason})" if r.reason else "") for r in sent.results
        ]
        message = f"Test sent ({sent.subject}). " + "; ".join(each)
        return message, [] if sent.ok else ["Not every address took the test: see above."]

    return change(request, who, edition_id, work, anchor="test", typed={"to": to})


def _override(force: str, reason: str) -> lifecycle.Override | None:
    """The form's "anyway" box and its reason (the CLI's --force --reason TEXT)."""
    if not force:
        return None
    if not reason.strip():
        raise UsageError("say why in the reason box: an override is kept in the history with it")
    return lifecycle.Override(reason.strip())


def _status_route(action: str, done: str) -> None:
    def route(
        request: Request,
        who: SignedIn,
        edition_id: Id,
        reason: Reason = "",
        force: Annotated[str, Form(max_length=10)] = "",
    ) -> Response:
        site = site_of(request)

        def work() -> Done:
            roles.check(who, action)
            override = _override(force, reason)
            result = edits.change_status(
                site.sessions,
                site.settings,
                edition_id,
                action,
                who.email,
                site.clock(),
                reason=reason.strip() or None,
                force=override,
            )
            return _result(done, result)

        typed = {"reason": reason}
        return change(request, who, edition_id, work, anchor="status", typed=typed)

    route.__name__ = action
    route.__doc__ = done
    actions.post(f"/editions/{{edition_id}}/{action}")(route)


_status_route(roles.APPROVE, "Approved: the content is frozen for sending.")
_status_route(roles.UNAPPROVE, "Back to draft.")
_status_route(roles.CANCEL, "Cancelled: this edition will not be sent.")
_status_route(roles.SKIP, "Skipped: nothing is sent this week; its articles wait for the next.")


@actions.post("/editions/{edition_id}/send")
def start_send(
    request: Request,
    who: SignedIn,
    edition_id: Id,
    reason: Reason = "",
    force: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Start the send (publishers): refused at once (a draft, a closed window, nobody to send
    to), or delivered by a worker thread of this server while the page shows its progress."""
    site = site_of(request)

    def work() -> Done:
        roles.check(who, roles.SEND)
        override = _override(force, reason)
        report = site.sends.start(edition_id, who.email, override)
        return f"The send has started: {report.planned:,} recipients planned.", []

    typed = {"reason": reason}
    return change(request, who, edition_id, work, anchor="send", typed=typed)


@actions.post("/editions/{edition_id}/send/cancel")
def cancel_send(request: Request, who: SignedIn, edition_id: Id) -> Response:
    """Stop claiming batches (publishers); the batch in hand finishes; resume continues."""
    site = site_of(request)

    def work() -> Done:
        roles.check(who, roles.SEND)
        with site.write() as session:
            left = status.cancel(session, edition_id, site.clock(), actor=who.email)
        return f"The send is cancelled: {left:,} recipients not sent (resume sends them).", []

    return change(request, who, edition_id, work, anchor="send")


@actions.post("/editions/{edition_id}/send/resume")
def resume_send(
    request: Request,
    who: SignedIn,
    edition_id: Id,
    resend_uncertain: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Continue a cancelled or interrupted send (publishers)."""
    site = site_of(request)

    def work() -> Done:
        roles.check(who, roles.SEND)
        site.sends.resume(edition_id, who.email, resend_uncertain=bool(resend_uncertain))
        return "The send continues.", []

    return change(request, who, edition_id, work, anchor="send")

"""The console's subscriber pages: search by address or name (and status) with the list's
counts by status and section, one person's record with their consent history, the deliveries
and the events about them, export (the list as CSV, one person as JSON), and erasure
(publishers, after typing the address again).

People are named in these addresses by their opaque public id, never by their address, so
that no access log or browser history holds a subscriber's email address.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, TextIO, cast

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from digest.errors import DigestError
from digest.people.audience import as_digest_errors
from digest.people.privacy import erase_confirmed
from digest.staff import roles, views
from digest.staff.roles import Principal
from digest.web import console
from digest.web.site import site_of
from digest.web.staff import SignedIn
from subscribers import export
from subscribers.export import json_text

pages = console.pages()
actions = console.actions()

PublicId = Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
PAGE = 50
CHUNK = 64 * 1024


@pages.get("/subscribers")
def search(
    request: Request,
    who: SignedIn,
    q: Annotated[str, Query(max_length=320)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
) -> HTMLResponse:
    """Subscribers whose address or name contains `q`, by address; the list's numbers."""
    site = site_of(request)
    error = None
    with site.sessions() as session:
        numbers = views.stats(session, site.settings, site.clock())["subscribers"]
        try:
            found = views.subscribers(session, q, PAGE, offset, status or None)
        except DigestError as exc:
            found, error = None, str(exc)
    return console.render(
        request,
        who,
        "subscribers.html",
        status=422 if error else 200,
        section="subscribers",
        error=error,
        numbers=numbers,
        found=found,
        q=q,
        status_filter=status,
        statuses=views.LISTED_STATUSES,
        page_size=PAGE,
    )


@pages.get("/subscribers/export.csv")
def export_csv(
    request: Request, who: SignedIn, status: Annotated[str, Query(max_length=20)] = ""
) -> Response:
    """Every subscriber (or those in `status`) as the CSV `digest subscribers export` writes:
    it imports back unchanged, and no cell can run as a spreadsheet formula."""
    site = site_of(request)
    if status and status not in views.LISTED_STATUSES:
        return search(request, who, status=status)
    # Written whole first (the session closes before the answer starts), on disk past 1 MB;
    # the answer's iterator closes it.
    spool: IO[str] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="w+", newline="")  # noqa: SIM115
    try:
        with site.sessions() as session:
            export.write_csv(session, cast(TextIO, spool), status or None)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    name = f"subscribers{'-' + status if status else ''}.csv"
    return StreamingResponse(
        _chunks(spool),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _chunks(spool: IO[str]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk.encode("utf-8")


def _person(request: Request, public_id: str) -> dict[str, Any]:
    site = site_of(request)
    with site.sessions() as session, as_digest_errors():
        return views.person(session, public_id, site.keys)


@pages.get("/subscribers/{public_id}")
def person(request: Request, who: SignedIn, public_id: PublicId) -> HTMLResponse:
    """One person: state, sections, consent history, deliveries, events."""
    try:
        record = _person(request, public_id)
    except DigestError as exc:
        return _missing(request, who, exc)
    return console.render(
        request, who, "subscriber.html", section="subscribers", record=record, public_id=public_id
    )


@pages.get("/subscribers/{public_id}/export.json")
def person_json(request: Request, who: SignedIn, public_id: PublicId) -> Response:
    """Everything held about the person (GDPR Art. 15/20), as `digest subscribers show
    --json` prints it."""
    try:
        record = _person(request, public_id)
    except DigestError as exc:
        return _missing(request, who, exc)
    return Response(
        json_text(record, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="subscriber-{public_id}.json"'},
    )


@pages.get("/subscribers/{public_id}/erase")
def erase_page(request: Request, who: SignedIn, public_id: PublicId) -> HTMLResponse:
    """Asks for confirmation: erasure cannot be undone."""
    return _erase_form(request, who, public_id)


def _erase_form(
    request: Request,
    who: Principal,
    public_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    typed: str = "",
) -> HTMLResponse:
    try:
        record = _person(request, public_id)
    except DigestError as exc:
        return _missing(request, who, exc)
    try:
        roles.check(who, roles.ERASE)
    except DigestError as exc:
        return console.render(
            request,
            who,
            "subscriber.html",
            status=console.refused_status(exc),
            section="subscribers",
            error=str(exc),
            record=record,
            public_id=public_id,
        )
    return console.render(
        request,
        who,
        "erase.html",
        status=status,
        section="subscribers",
        error=error,
        record=record,
        public_id=public_id,
        typed=typed,
    )


@actions.post("/subscribers/{public_id}/erase")
def erase(
    request: Request,
    who: SignedIn,
    public_id: PublicId,
    confirm: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Erase the person (publishers): only a keyed hash stays, so no import adds them back."""
    site = site_of(request)
    try:
        roles.check(who, roles.ERASE)
        with site.write() as session, as_digest_errors():
            erase_confirmed(session, public_id, confirm, now=site.clock(), keys=site.keys)
    except DigestError as exc:
        status = console.refused_status(exc)
        return _erase_form(request, who, public_id, status=status, error=str(exc), typed=confirm)
    return console.done(
        request,
        "/staff/subscribers",
        "Erased the subscriber: only a keyed hash is kept on the suppression list, so no "
        "import adds them back.",
    )


def _missing(request: Request, who: Principal, exc: DigestError) -> HTMLResponse:
    return console.render(
        request, who, "missing.html", status=404, section="subscribers", error=str(exc)
    )

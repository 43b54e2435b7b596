"""The preference center: sections, a pause, leaving, and coming back by double opt-in."""

from __future__ import annotations

from datetime import timedelta

import httpx

from subscribers.lifecycle import find_by_email, recipients_for
from subscribers.models import ACTIVE, UNSUBSCRIBED
from tests.subscribers_helpers import (
    SECTIONS,
    Web,
    csrf_token,
    link,
)


def manage_path(web: Web, address: str = "prefs@example.com") -> str:
    """Subscribe and confirm; the confirmation page links to the preferences."""
    done = web.confirm(address)
    start = done.text.index('href="') + len('href="')
    return web.path(done.text[start : done.text.index('"', start)])


def sections_of(web: Web, address: str = "prefs@example.com") -> list[str] | None:
    with web.session() as session:
        sub = find_by_email(session, address)
        assert sub is not None
        return sub.sections


def post(web: Web, path: str, **data: object) -> httpx.Response:
    page = "/".join(path.split("/")[:3])  # the form's page: /manage/<token>
    token = csrf_token(web.client.get(page).text)
    return web.client.post(path, data={"csrf_token": token, **data})


def test_the_page_shows_the_masked_address_and_the_current_sections(web: Web) -> None:
    path = manage_path(web)
    page = web.client.get(path)
    assert page.status_code == 200 and "p•••@example.com" in page.text
    assert "prefs@example.com" not in page.text
    assert all(f'value="{s}" checked' in page.text for s in SECTIONS)


def test_saving_sections_changes_what_the_next_edition_brings(web: Web) -> None:
    path = manage_path(web)
    response = post(web, path, sections=["Asia", "Diplomacy"])
    assert response.status_code == 303
    assert response.headers["location"] == f"{web.url}{path}?m=saved"
    assert sections_of(web) == ["Asia", "Diplomacy"]
    page = web.client.get(f"{path}?m=saved")
    assert "Your sections are saved." in page.text
    assert 'value="Europe" checked' not in page.text and 'value="Asia" checked' in page.text


def test_saving_no_section_is_explained_and_changes_nothing(web: Web) -> None:
    path = manage_path(web)
    response = post(web, path, sections=[])
    assert response.status_code == 400
    assert "Choose at least one section" in response.text
    assert sections_of(web) is None


def test_an_unknown_section_is_refused(web: Web) -> None:
    path = manage_path(web)
    assert post(web, path, sections=["Sport"]).status_code == 400


def test_pausing_skips_the_next_editions_and_resuming_ends_it(web: Web) -> None:
    path = manage_path(web)
    assert post(web, f"{path}/pause", weeks="4").status_code == 303
    with web.session() as session:
        assert list(recipients_for(session, SECTIONS, web.clock())) == []
    page = web.client.get(f"{path}?m=paused")
    assert "Paused until December 18, 2026" in page.text
    post(web, f"{path}/resume")
    with web.session() as session:
        assert len(list(recipients_for(session, SECTIONS, web.clock()))) == 1


def test_a_pause_longer_than_allowed_is_refused(web: Web) -> None:
    path = manage_path(web)
    response = post(web, f"{path}/pause", weeks="99")
    assert response.status_code == 400
    assert "1 to 12 weeks" in response.text
    bad = post(web, f"{path}/pause", weeks="soon")
    assert bad.status_code == 400


def test_unsubscribing_from_everything_on_the_page(web: Web) -> None:
    path = manage_path(web)
    response = post(web, f"{path}/unsubscribe")
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    with web.session() as session:
        assert find_by_email(session, "prefs@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]


def test_forms_without_csrf_change_nothing(web: Web) -> None:
    path = manage_path(web)
    for target in (path, f"{path}/pause", f"{path}/unsubscribe", f"{path}/resubscribe"):
        assert web.client.post(target, data={"sections": "Asia", "weeks": "2"}).status_code == 403
    with web.session() as session:
        sub = find_by_email(session, "prefs@example.com")
        assert sub is not None and sub.status == ACTIVE and sub.sections is None
        assert sub.paused_until is None


def test_coming_back_after_leaving_needs_a_new_confirmation(web: Web) -> None:
    path = manage_path(web)
    post(web, f"{path}/unsubscribe")
    page = web.client.get(path)
    assert "You are not subscribed" in page.text and "Subscribe again" in page.text
    web.clock.advance(minutes=11)
    response = post(web, f"{path}/resubscribe")
    assert response.status_code == 303
    message = web.messages()[-1]
    assert message["Subject"].startswith("Confirm your subscription")
    with web.session() as session:
        assert find_by_email(session, "prefs@example.com").status == UNSUBSCRIBED  # type: ignore[union-attr]
    target = web.path(link(message, "/confirm/"))
    confirm_page = web.client.get(target)
    web.client.post(target, data={"csrf_token": csrf_token(confirm_page.text)})
    with web.session() as session:
        assert find_by_email(session, "prefs@example.com").status == ACTIVE  # type: ignore[union-attr]


def test_a_forged_manage_link_is_not_valid(web: Web) -> None:
    page = web.client.get("/manage/0123.abc")
    assert page.status_code == 404 and "This link is not valid" in page.text


def test_the_manage_link_keeps_working_long_after(web: Web) -> None:
    path = manage_path(web)
    web.clock.advance(days=3 * 365)
    assert web.client.get(path).status_code == 200


def test_an_erased_persons_manage_link_is_like_a_forged_one(web: Web) -> None:
    from subscribers.lifecycle import erase

    path = manage_path(web)
    with web.session() as session, session.begin():
        sub = find_by_email(session, "prefs@example.com")
        erase(session, sub, now=web.clock() + timedelta(seconds=1), keys=web.keys)  # type: ignore[arg-type]
    erased = web.client.get(path)
    forged = web.client.get("/manage/0123.abc")
    assert erased.status_code == forged.status_code == 404
    assert erased.text.split("<main>")[1] == forged.text.split("<main>")[1]


def test_the_pause_ends_on_the_publications_day_not_utcs() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from digest.web.manage import _date

    end = datetime(2026, 12, 19, 2, 0, tzinfo=UTC)  # 21:00 on the 18th in New York
    assert _date(end, ZoneInfo("America/New_York")) == "December 18, 2026"
    assert _date(end, UTC) == "December 19, 2026"

"""The guards every POST passes (digest/web/guards.py): the routes declare them, so these tests
walk the app's routes rather than trusting a list that a new form could be missing from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy import Engine

from digest.config import Settings
from digest.store.ratelimit import Limit
from digest.web.app import create_app
from digest.web.console import console_csrf
from digest.web.guards import csrf_form
from digest.web.staffauth import staff
from tests.subscribers_helpers import Web, csrf_token

# The POSTs that carry no CSRF pair, and why: the JSON API takes only application/json and acts
# on no cookie; the ESP webhook is signed by the provider; the staff API's routes are guarded
# by `staff` (a token, or the session cookie with its X-CSRF-Token header); the console's forms
# by `console_csrf` (the session's own token: tests/web/test_console_access.py). Any other POST
# is a form.
NOT_FORMS = {"/api/subscribe", "/api/resend", "/webhooks/sendgrid"}
# The POSTs that can send a confirmation email, so count against the per-IP limit.
LIMITED = {"/subscribe", "/resend", "/manage/{token}/resubscribe", "/api/subscribe", "/api/resend"}


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    built = create_app(settings)
    yield built
    engine = built.state.sessions.kw["bind"]
    assert isinstance(engine, Engine)
    engine.dispose()


def posts(app: FastAPI) -> list[RouteContext]:
    """Every POST route as the app serves it (with its router's prefix and dependencies)."""
    routes = iter_route_contexts(app.routes)
    apis = [r for r in routes if isinstance(r.original_route, APIRoute)]
    return [r for r in apis if "POST" in (r.methods or ())]


def path_of(route: RouteContext) -> str:
    assert route.path is not None
    return route.path


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def staff_api(route: RouteContext) -> bool:
    """A staff API route, or a console form: guarded by the staff session (or a token)."""
    return bool({staff, console_csrf} & set(calls(route.dependant)))


def test_every_post_but_the_api_and_the_webhook_is_a_form_that_checks_csrf(app: FastAPI) -> None:
    routes = [r for r in posts(app) if not staff_api(r)]
    unguarded = {path_of(r) for r in routes if csrf_form not in set(calls(r.dependant))}
    assert unguarded == NOT_FORMS
    assert {"/subscribe", "/confirm/{token}", "/manage/{token}"} <= {path_of(r) for r in routes}


def test_every_form_post_without_a_csrf_token_gets_the_reload_page(web: Web, app: FastAPI) -> None:
    forms = [path_of(r) for r in posts(app) if path_of(r) not in NOT_FORMS and not staff_api(r)]
    for path in forms:
        response = web.client.post(concrete(path), data={"email": "x@example.com", "weeks": "2"})
        assert response.status_code == 403, path
        assert "Reload the page" in response.text, path


def test_over_the_limit_exactly_the_limited_posts_answer_429_in_their_own_format(
    web: Web, app: FastAPI
) -> None:
    web.site.limiter = web.site.limits.bound(Limit("one", 1, timedelta(hours=1)))
    web.site.limiter.hit("127.0.0.1", web.clock())
    token = csrf_token(web.client.get("/subscribe").text)
    limited = set()
    for route in [r for r in posts(app) if not staff_api(r)]:
        path = path_of(route)
        if path in NOT_FORMS:
            response = web.client.post(path, json={"email": "x@example.com"})
        else:
            response = web.client.post(concrete(path), data={"csrf_token": token})
        if response.status_code != 429:
            continue
        limited.add(path)
        assert response.headers["retry-after"] == "3600", path
        if path.startswith("/api/"):
            assert response.json()["error"]["message"] == "too many requests from this address"
        else:
            assert "Too many requests from your network" in response.text, path
    assert limited == LIMITED


def test_a_forged_form_or_a_malformed_body_is_refused_before_the_limit(web: Web) -> None:
    """CSRF before the limit (a forged form costs the client nothing), and the API's body
    before it (a malformed request is explained, not counted)."""
    web.site.limiter = web.site.limits.bound(Limit("one", 1, timedelta(hours=1)))
    assert web.client.post("/subscribe", data={"email": "x@example.com"}).status_code == 403
    assert web.client.post("/api/subscribe", data={"email": "x@example.com"}).status_code == 415
    assert web.client.post("/api/subscribe", json={"mail": "x"}).status_code == 422
    assert web.client.post("/api/subscribe", json={"email": "x@example.com"}).status_code == 202
    # Now the one request is spent: the same refusals still come first, not the 429.
    assert web.client.post("/subscribe", data={"email": "x@example.com"}).status_code == 403
    assert web.client.post("/api/subscribe", data={"email": "x@example.com"}).status_code == 415
    assert web.client.post("/api/subscribe", json={"email": "x@example.com"}).status_code == 429

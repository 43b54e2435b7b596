"""schemathesis against /api/openapi.json with a publisher's token: for data generated from the
schema (valid and invalid), no answer is a 5xx, and every answer is documented and matches the
schema: its status, its content type, its headers and its body.

The run uses the schema as a client gets it (over HTTP, behind the token), on the demo week's
draft with subscribers, so the routes have real editions to act on. Generated edition ids are
mostly unknown (404, documented); the demo edition's own id is among those tried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.staff_helpers import StaffWeb, start_staff_web

EXAMPLES = 15
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[StaffWeb]:
    """One app for the whole run (each operation's examples act on what the last ones left)."""
    import shutil

    tmp = tmp_path_factory.mktemp("schema")
    db = tmp / "digest.db"
    shutil.copy(template_db, db)
    running = start_staff_web(tmp, db)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def api_schema(live: StaffWeb) -> schemathesis.BaseSchema:
    document = httpx.get(
        f"{live.web.url}/api/openapi.json",
        headers={"Authorization": f"Bearer {live.publisher_token}"},
    ).json()
    return schemathesis.openapi.from_dict(document)


def run_operation(
    operation: Any, live: StaffWeb, mode: GenerationMode, path: dict[str, Any] | None
) -> None:
    """Hypothesis over one operation: every generated request is sent and validated."""

    @given(case=operation.as_strategy(mode, path_parameters=path))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=live.web.url,
            headers={"Authorization": f"Bearer {live.publisher_token}"},
            checks=CHECKS,
        )

    try:
        run()
    except Unsatisfiable:
        # Negative data for an operation with nothing to get wrong (no parameter, no body).
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_every_answer_matches_the_schema_and_none_is_a_5xx(
    live: StaffWeb, api_schema: schemathesis.BaseSchema
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        wants_edition = "{edition_id}" in operation.path
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Random ids (nearly all unknown: 404) and the demo edition's own.
            run_operation(operation, live, mode, None)
            if wants_edition and mode is GenerationMode.POSITIVE:
                run_operation(operation, live, mode, {"edition_id": live.edition_id})


def test_the_schema_describes_the_api_and_nothing_else(api_schema: schemathesis.BaseSchema) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert all(p.startswith("/api/") for p in paths)
    assert {
        "/api/editions",
        "/api/editions/{edition_id}",
        "/api/editions/{edition_id}/candidates",
        "/api/editions/{edition_id}/approve",
        "/api/editions/{edition_id}/test",
        "/api/editions/{edition_id}/send",
        "/api/editions/{edition_id}/preflight",
        "/api/subscribers",
        "/api/stats",
        "/api/subscribe",
        "/api/resend",
        "/api/consent",
    } <= paths
    security = api_schema.raw_schema["components"]["securitySchemes"]
    assert security["HTTPBearer"]["scheme"] == "bearer"

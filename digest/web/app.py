"""`create_app(settings)`: the ASGI app served by `digest serve` (uvicorn)."""

from __future__ import annotations

from fastapi import FastAPI

from digest.config import Settings
from digest.db import open_database, session_factory


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="digest", docs_url=None, redoc_url=None, openapi_url=None)
    engine = open_database(settings.database_url)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""The staff API's request bodies and answers, as pydantic models: they are the OpenAPI schema
(`/api/openapi.json`), and FastAPI checks every answer against them before it leaves.

Bodies refuse unknown fields, and each limit here is the core's own (the texts' lengths are
digest.edition.edits.TEXT_LIMITS), so a mistake is a 422 naming the field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from digest.edition.edits import TEXT_LIMITS

MAX_ID = 2**31 - 1  # the database's integer ids
MAX_TEST_ADDRESSES = 10


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleBody(Body):
    article: int | str = Field(
        description="The article's id (`candidates`, the edition's items) or its URL.",
        examples=[31, "https://meridianreview.example/europe/some-story"],
    )

    @model_validator(mode="after")
    def _not_empty(self) -> ArticleBody:
        if isinstance(self.article, str) and not self.article.strip():
            raise ValueError("article: give an article id or its URL")
        if isinstance(self.article, str) and len(self.article) > 2000:
            raise ValueError("article: at most 2000 characters")
        if isinstance(self.article, int) and not 1 <= self.article <= MAX_ID:
            raise ValueError(f"article: an id is between 1 and {MAX_ID}")
        return self


class MoveBody(ArticleBody):
    position: int | None = Field(None, ge=1, le=10_000, description="1 is the top.")
    section: str | None = Field(None, max_length=100, description="Move it into this section.")

    @model_validator(mode="after")
    def _one_target(self) -> MoveBody:
        if (self.position is None) == (self.section is None):
            raise ValueError("say where to: position or section (one of them)")
        return self


def _text_body(kind: str) -> type[Body]:
    text = Field(max_length=TEXT_LIMITS[kind], description=f'The {kind}; "" restores the default.')
    return create_model(f"{kind.capitalize()}Body", __base__=Body, text=(str, text))


SubjectBody = _text_body("subject")
PreheaderBody = _text_body("preheader")
IntroBody = _text_body("intro")


class ReasonBody(Body):
    reason: str | None = Field(None, max_length=2000, description="Kept in the history.")


class ForceBody(ReasonBody):
    force: bool = Field(
        False, description="Pass a gate that would refuse it (a thin week, a late send)."
    )

    @model_validator(mode="after")
    def _reason_with_force(self) -> ForceBody:
        if self.force and not (self.reason or "").strip():
            raise ValueError("reason: force needs a reason; it goes into the history")
        return self


class SkipBody(Body):
    reason: str = Field(min_length=1, max_length=2000, description="Why this week gets no email.")


class TestBody(Body):
    to: list[str] = Field(
        min_length=1, max_length=MAX_TEST_ADDRESSES, description="Addresses for the test copy."
    )


class ResumeBody(Body):
    resend_uncertain: bool = Field(
        False, description="Also send again what was handed to the provider unconfirmed."
    )


# --- answers ---


class Item(BaseModel):
    position: int
    article_id: int
    section: str
    title: str
    url: str
    author: str | None
    published_at: str | None
    score: float
    pinned: bool
    reasons: list[str]


class Variant(BaseModel):
    sections: list[str]
    recipients: int


class HistoryEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: str
    actor: str
    action: str
    from_status: str | None = Field(alias="from")
    to_status: str | None = Field(alias="to")
    reason: str | None
    forced: bool
    detail: str | None


class Link(BaseModel):
    url: str
    clicks: int


class SendProgress(BaseModel):
    edition_id: int
    edition_status: str
    state: str
    planned: int
    counts: dict[str, int]
    remaining: int
    percent: int = Field(description="Recipients settled (accepted, failed or skipped), in %.")
    done: bool
    started_at: str
    rate_per_s: float
    eta_s: float | None
    live_workers: list[int]
    uncertain: int
    opens: int
    machine_opens: int
    clicks: int
    top_links: list[Link]


class EditionSummary(BaseModel):
    id: int
    status: str
    status_reason: str | None
    window_start: str
    cutoff: str
    send_window: list[str]
    subject: str
    preheader: str
    intro: str
    items: int
    built_at: str | None
    approved_at: str | None
    approved_by: str | None
    send_started_at: str | None
    sent_at: str | None
    archive_url: str | None


class EditionDetail(EditionSummary):
    items: list[Item]  # type: ignore[assignment]
    variants: list[Variant]
    history: list[HistoryEvent]
    send: SendProgress | None


class Edited(BaseModel):
    edition: EditionDetail
    warnings: list[str]
    position: int | None = None


class Candidate(BaseModel):
    id: int
    rank: int
    url: str
    title: str
    section: str | None
    author: str | None
    published_at: str | None
    score: float
    chosen: bool
    pinned: bool
    lead: bool
    reasons: list[str]


class Candidates(BaseModel):
    edition_id: int
    in_window: int
    stale_edits: list[str]
    candidates: list[Candidate]


class TestOutcome(BaseModel):
    email: str
    status: str
    reason: str | None


class TestSent(BaseModel):
    edition_id: int
    subject: str
    results: list[TestOutcome]


class SubscriberRow(BaseModel):
    email: str
    name: str | None
    status: str
    sections: list[str] | None
    public_id: str
    created_at: str
    confirmed_at: str | None
    unsubscribed_at: str | None
    paused_until: str | None


class SubscriberPage(BaseModel):
    search: str
    status: str | None = None
    total: int
    limit: int
    offset: int
    subscribers: list[SubscriberRow]


class SubscriberNumbers(BaseModel):
    total: int
    by_status: dict[str, int]
    active_by_section: dict[str, int]


class EditionNumbers(BaseModel):
    total: int
    by_status: dict[str, int]


class Stats(BaseModel):
    subscribers: SubscriberNumbers
    editions: EditionNumbers
    latest_send: SendProgress | None


class Me(BaseModel):
    email: str
    role: str
    via: str
    may: list[str]


class PreflightCheck(BaseModel):
    check: str
    status: str  # pass, warn or fail
    message: str
    fix: str


class PreflightVariant(BaseModel):
    sections: list[str]
    recipients: int | None
    html_bytes: int
    ok: bool
    checks: list[PreflightCheck]


class Preflight(BaseModel):
    """digest.edition.preflight's report: the full edition and each variant, every check."""

    edition: int
    ok: bool
    summary: str
    variants: list[PreflightVariant]
    warnings: list[str]

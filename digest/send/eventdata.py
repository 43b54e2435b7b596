"""What a SendGrid event may hold: each field's type and range, checked before anything of it
is stored or looked up.

A signed batch comes from SendGrid, but its events quote whatever a remote mail server said and
carry our custom_args back as SendGrid stored them; and a key can leak. So an event whose
fields do not fit is skipped and counted (`EventResult.invalid`), and the rest of its batch
is processed: a NaN timestamp, a year-3 million date, a delivery id PostgreSQL's INTEGER
columns cannot hold, a NUL byte or a lone surrogate is one bad event, not a 500
that rolls back the whole batch (and makes SendGrid post it again for a day).

`parse_batch` reads the body with the standard JSON parser, but keeps the numbers a bad event
may carry (NaN, Infinity, a 5,000-digit integer) as values the event's check refuses, so that
they too cost only their own event.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# The id columns (deliveries.id, editions.id, webhook_events.*_id) are INTEGER: PostgreSQL's
# int4. A larger id cannot be one of ours, and would fail the insert.
MAX_ID = 2**31 - 1
# 9999-12-31T23:59:59Z, the last second a Python datetime holds; 0 is 1970.
MAX_TIMESTAMP = 253_402_300_799
# Longest integer literal kept as a number; a longer one (int() would refuse beyond 4,300
# digits anyway) becomes a marker that no field accepts.
MAX_DIGITS = 30
# custom_args {delivery: "test"}: a `digest send --test-to` message, outside the ledger.
TEST_DELIVERY = "test"


class _NotANumber:
    """A number in the body that no field may hold (NaN, Infinity, too many digits)."""

    def __init__(self, text: str) -> None:
        self.text = text[:40]

    def __repr__(self) -> str:
        return f"<number {self.text}>"


def parse_batch(payload: str) -> Any:
    """The body as Python values; ValueError when it is not JSON or nests deeper than the
    parser's recursion limit (a whole-body fault: there are no events to tell apart)."""
    try:
        return json.loads(
            payload,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_NotANumber,
        )
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None


def _integer(text: str) -> int | _NotANumber:
    digits = text.lstrip("-")
    return int(text) if len(digits) <= MAX_DIGITS else _NotANumber(text)


def _float(text: str) -> float | _NotANumber:
    value = float(text)
    return value if math.isfinite(value) else _NotANumber(text)


def _storable(value: Any) -> Any:
    """Text a database can hold: PostgreSQL text cannot hold U+0000, and a lone surrogate
    (which a JSON \\ud800 escape makes) is no text any driver can encode. No genuine event
    field contains either."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone surrogate") from None
    return value


def _id(value: Any) -> Any:
    """Our custom_args come back as strings ("42"); ints are taken too. Absent, null or the
    test marker is None; anything else must be a whole number within the id columns."""
    if value is None or value == TEST_DELIVERY:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    raise ValueError(f"an id must be a whole number from 1 to {MAX_ID}")


Text = Annotated[str, BeforeValidator(_storable)]
Id = Annotated[int | None, BeforeValidator(_id)]


class SendGridEvent(BaseModel):
    """One event: the fields digest reads, each typed and bounded. Other fields (ip,
    useragent, category, sg_message_id, ...) are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event: Annotated[Text, Field(min_length=1, max_length=32)]
    sg_event_id: Annotated[Text, Field(min_length=1, max_length=100)]
    email: Annotated[Text, Field(max_length=320)] = ""
    timestamp: Annotated[float, Field(ge=0, le=MAX_TIMESTAMP, allow_inf_nan=False)] | None = None
    edition: Id = None
    delivery: Id = None
    type: Annotated[Text, Field(max_length=64)] | None = None
    reason: Text | None = None
    url: Text | None = None
    sg_machine_open: bool | None = None

    @property
    def occurred_at(self) -> datetime | None:
        return None if self.timestamp is None else datetime.fromtimestamp(self.timestamp, UTC)


def validate_event(raw: Any) -> SendGridEvent | None:
    """The event, or None when a field does not fit (the caller counts it as invalid)."""
    if not isinstance(raw, dict):
        return None
    try:
        return SendGridEvent.model_validate(raw)
    except ValidationError:
        return None

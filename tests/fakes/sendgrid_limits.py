"""The rules of SendGrid's /v3/mail/send that its OpenAPI schema cannot express (docs/standards.md
§3), worded like SendGrid words them: at most 1000 recipients, each address once per request,
from/subject/content present, text/plain first, custom_args and substitutions under 10,000
bytes, no reserved headers.

A request of 1000 personalizations is checked with a few passes over the whole array first
(`_within_limits`); only a request that fails them, or is otherwise refused, goes through the
loop per personalization that finds and words each error. The shortcut never accepts what the
loop would refuse (tests/fakes/test_sendgrid.py holds it to that).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

MAX_RECIPIENTS = 1000
MAX_ARGS_BYTES = 10_000
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_limits(body: dict[str, Any], invalid: Collection[str] = ()) -> list[dict[str, Any]]:
    """SendGrid's documented rules the OpenAPI schema does not express, with its messages."""
    errors = []
    if not body.get("content") and not body.get("template_id"):
        errors.append(
            error(
                "Unless a valid template_id is provided, the content parameter is "
                "required. There must be at least one defined content block.",
                "content",
            )
        )
    types = [c.get("type") for c in body.get("content") or []]
    if "text/plain" in types and types[0] != "text/plain":
        errors.append(
            error(
                "If present, text/plain must be first, followed by text/html, "
                "followed by any other content.",
                "content.0.type",
            )
        )
    people = body["personalizations"]
    if not body.get("subject") and not all(p.get("subject") for p in people):
        errors.append(
            error(
                "The subject is required. You can get around this requirement if "
                "you use a template with a subject defined or if every "
                "personalization has a subject defined.",
                "subject",
            )
        )
    errors += _header_errors(body.get("headers") or {}, "headers")
    if errors or not _within_limits(people, invalid):
        _personalization_errors(people, invalid, errors)
    return errors


def _personalization_errors(
    people: list[dict[str, Any]], invalid: Collection[str], errors: list[dict[str, Any]]
) -> None:
    """The rules per personalization, worded like SendGrid's; adds to `errors`, stopping after
    the first personalization with a problem (or the first, if `errors` has some already)."""
    seen: set[str] = set()
    total = 0
    for i, p in enumerate(people):
        for kind in ("to", "cc", "bcc"):
            for j, who in enumerate(p.get(kind) or ()):
                total += 1
                problem = _address_problem(who["email"], seen, invalid)
                if problem:
                    where = f"personalizations.{i}.{kind}.{j}.email"
                    errors.append(error(problem.format(kind=f"personalizations.{i}.{kind}"), where))
        for name in ("custom_args", "substitutions"):
            if _size(p.get(name)) >= MAX_ARGS_BYTES:
                errors.append(
                    error(f"{name} must be less than 10000 bytes", f"personalizations.{i}.{name}")
                )
        headers = p.get("headers")
        if headers and not RESERVED_HEADERS.isdisjoint(map(str.lower, headers)):
            errors += _header_errors(headers, f"personalizations.{i}.headers")
        if errors:
            break
    if total > MAX_RECIPIENTS:
        errors.append(
            error(
                "The personalizations block is limited to 1000 recipients per "
                "request (to, cc and bcc added up).",
                "personalizations",
            )
        )


# A whole request's addresses, one per line, each as _EMAIL wants it.
_ADDRESSES = re.compile(r"(?:[^@\s]+@[^@\s]+\.[^@\s]+\n)*")
_KINDS = ("to", "cc", "bcc")


def _within_limits(people: list[dict[str, Any]], invalid: Collection[str]) -> bool:
    """True when no personalization breaks a rule of check_limits' loop, found with a few
    passes over the whole array (comprehensions, a set, one regex over the joined addresses)
    instead of Python code per personalization. False means "look closely": the loop then
    finds and words the errors, so this shortcut can never accept what the loop would refuse.
    """
    try:
        addresses = [w["email"].lower() for p in people for k in _KINDS for w in p.get(k) or ()]
        sizes = [
            sum(map(len, values)) + sum(map(len, values.values()))
            for p in people
            for name in ("custom_args", "substitutions")
            if (values := p.get(name))
        ]
        names = {name for p in people for name in p.get("headers") or ()}
    except (TypeError, AttributeError, KeyError):  # not the shapes the loop expects
        return False
    return (
        len(addresses) <= MAX_RECIPIENTS
        and len(set(addresses)) == len(addresses)
        and set(invalid).isdisjoint(addresses)
        and _ADDRESSES.fullmatch("\n".join(addresses) + "\n") is not None
        # Characters; a UTF-8 character takes at most 4 bytes.
        and max(sizes, default=0) * 4 < MAX_ARGS_BYTES
        and RESERVED_HEADERS.isdisjoint(map(str.lower, names))
    )


def _address_problem(email: str, seen: set[str], invalid: Collection[str]) -> str | None:
    address = email.lower()
    if address in seen:
        return (
            "Each email address in the personalization block should be unique between to, cc, "
            f"and bcc. We found the first duplicate instance of [{email}] in the {{kind}} field."
        )
    seen.add(address)
    if address in invalid or not _EMAIL.match(address):
        return "Does not contain a valid address."
    return None


def _size(values: dict[str, Any] | None) -> int:
    """Bytes of keys and values (characters when ASCII, which is the common case)."""
    if not values:
        return 0
    text = "".join(values) + "".join(map(str, values.values()))
    return len(text) if text.isascii() else len(text.encode())


def _header_errors(headers: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [
        error(f"The header {name} is reserved and cannot be set.", f"{where}.{name}")
        for name in headers
        if name.lower() in RESERVED_HEADERS
    ]


def error(message: str, field_name: str | None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": None}

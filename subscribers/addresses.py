"""Email addresses: the one normalised form we store, compare and hash, and its validation.

Validation is email-validator's (syntax only: no DNS, which would make an import of 100,000 rows
depend on the network). Checking a domain is ~30 µs of IDNA work and real lists repeat a few
domains endlessly, so the domain verdict is cached; the local part of an ordinary dot-atom
address is checked by a regex that accepts exactly what email-validator accepts (a property test
holds the two to the same answers). Anything unusual (quoted local parts, Unicode, IP literals)
goes to email-validator whole.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError
from email_validator import validate_email as _validate

from subscribers.errors import InvalidEmail

# RFC 5321 §4.5.3.1: 64 octets of local part, 254 for the whole forward path.
MAX_LOCAL = 64
MAX_ADDRESS = 254
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


def normalise_email(email: str) -> str:
    """Trimmed and lower-cased: the one form we store, compare and hash."""
    return email.strip().lower()


# Mailbox providers that ignore dots in the local part (j.doe@ and jdoe@ are one inbox), and
# the domain each one's mail ends up at.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_mailbox(address: str) -> str:
    """The inbox an address delivers to, as far as the address itself says: lower-cased,
    without a +tag (victim+1@ and victim+2@ reach victim@), and for Gmail without dots
    (v.i.c.t.i.m@gmail.com is victim@gmail.com, as is victim@googlemail.com). The per-address
    limits on confirmation emails count these, not the spellings, so that an attacker cannot
    mail one inbox a dozen times by varying the address (subscribers/ratelimit.py).

    Pure and total: any text gives a value (an address without a local part or a domain is
    returned lower-cased), and canonical_mailbox(canonical_mailbox(x)) == canonical_mailbox(x).
    """
    text = normalise_email(address)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return text
    if local.startswith('"'):
        return text  # a quoted local part is taken as it is
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "") or local
        domain = DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def validate_email(raw: str) -> str:
    """The normalised address, or InvalidEmail saying what is wrong with it."""
    text = raw.strip()
    if not text:
        raise InvalidEmail("the email address is empty")
    local, at, domain = text.rpartition("@")
    if at and len(local) <= MAX_LOCAL and _DOT_ATOM.fullmatch(local):
        address = f"{local}@{_domain(domain)}".lower()
        if address.isascii() and len(address) <= MAX_ADDRESS:
            return address
    return _full(text)


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """email-validator's verdict on a domain, asked once per distinct domain."""
    try:
        # The shortest local part, so that the probe is never longer than a real address.
        return str(_validate(f"a@{domain}", check_deliverability=False).domain)
    except EmailNotValidError as exc:
        raise InvalidEmail(_reason(exc)) from None


def _full(text: str) -> str:
    try:
        return normalise_email(str(_validate(text, check_deliverability=False).normalized))
    except EmailNotValidError as exc:
        raise InvalidEmail(_reason(exc)) from None


def _reason(exc: EmailNotValidError) -> str:
    return str(exc).rstrip(".").replace("The email address", "the address")

"""Customer identity from what marketing tools and shops give: e-mail addresses and phones.

E-mails are trimmed and lower-cased. Phones become E.164-ish: digits with a leading `+`;
a local number starting with a single 0 gets the configured country code (84, Vietnam, by
default), `00` becomes `+`. Anything that does not look like either gives None.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_NOISE = re.compile(r"[\s\-().]")


def normalize_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not _EMAIL.match(email) or len(email) > 128:
        return None
    return email


def normalize_phone(value: object, default_country_code: str = "84") -> str | None:
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    phone = _PHONE_NOISE.sub("", value.strip())
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    elif phone.startswith("0"):
        phone = "+" + default_country_code + phone[1:]
    elif not phone.startswith("+"):
        phone = "+" + phone
    digits = phone[1:]
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        return None
    return phone


def first_identity(
    emails: list[object], phones: list[object], default_country_code: str = "84"
) -> str | None:
    """The first usable e-mail, else the first usable phone."""
    for email in emails:
        if found := normalize_email(email):
            return found
    for phone in phones:
        if found := normalize_phone(phone, default_country_code):
            return found
    return None

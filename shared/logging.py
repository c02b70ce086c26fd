"""Log set-up shared by every service and command: JSON lines or readable text.

Personal data stays out of logs at INFO and above: `PersonalDataFilter` replaces customer and
anonymous ids, e-mail addresses and phone numbers by a keyed hash (`pseudonym`), in the message
and in structured fields. Log the id itself only at DEBUG; never log message contents.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            line["request_id"] = request_id
        for key in ("service", "topic", "partition", "count"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        return f"{text} [req {request_id}]" if request_id else text


class ApiVersionFallbackFilter(logging.Filter):
    """Drops kafka-python's errors about the ApiVersions fallback, which it then completes."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "ApiVersions" not in text and "checking_api_versions_recv" not in text


def pseudonym(value: object, key: bytes) -> str:
    """A stable, non-reversible stand-in for a personal identifier (`~` + 12 hex digits)."""
    digest = hmac.new(key, str(value).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "~" + digest.hexdigest()[:12]


# `customer_id=c-1`, `customer_id: 'c-1'`, `"anonymous_id": "a-7"`, `customer c-1`
_ID_IN_TEXT = re.compile(
    r"""(?P<name>\b(?:customer_id|anonymous_id|customer|subject|email|phone|profile for)\b"""
    r"""["']?\s*[=: ]\s*)"""
    r"""(?P<quote>["']?)(?P<value>[^\s"',;)}\]]+)""")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w.:\-])(?:\+\d{1,3}[ \-]?)?0?\d{2,4}[ \-]?\d{3}[ \-]?\d{3,4}(?![\w.:\-])")
PERSONAL_FIELDS = ("customer_id", "anonymous_id", "email", "phone", "subject")


class PersonalDataFilter(logging.Filter):
    """Hashes personal identifiers in records at INFO and above; DEBUG records pass as they are.

    A safety net, not a licence: code should log `pseudonym(...)` or nothing. The key makes a
    hash useless for guessing (phone numbers are easy to enumerate with a plain hash).
    """

    def __init__(self, key: bytes | None = None, min_level: int = logging.INFO):
        super().__init__()
        self.key = key or secrets.token_bytes(32)
        self.min_level = min_level

    def _hash_text(self, text: str) -> str:
        text = _ID_IN_TEXT.sub(lambda m: m["name"] + m["quote"] + (
            m["value"] if m["value"].startswith("~") else pseudonym(m["value"], self.key)), text)
        text = _EMAIL.sub(lambda m: pseudonym(m[0], self.key), text)
        return _PHONE.sub(lambda m: pseudonym(m[0], self.key), text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        record.msg = self._hash_text(record.getMessage())
        record.args = None
        for name in PERSONAL_FIELDS:
            value = getattr(record, name, None)
            if value is not None and not str(value).startswith("~"):
                setattr(record, name, pseudonym(value, self.key))
        return True


def configure_logging(
    level: str = "INFO", fmt: str = "text", hash_ids: bool = True, hash_key: bytes | None = None,
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ApiVersionFallbackFilter())
    if hash_ids:
        handler.addFilter(PersonalDataFilter(hash_key))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

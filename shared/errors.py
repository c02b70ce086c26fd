"""Touchpoint's own exceptions. Adapters translate library errors into these at the boundary.

    TouchpointError
    ├── CatalogError            a catalog file is missing or invalid
    ├── InvalidEventError       an event failed validation (carries field-level errors)
    ├── NotFoundError           the thing asked for does not exist (HTTP 404)
    ├── ConflictError           the request conflicts with stored state (HTTP 409)
    ├── AuthenticationError     missing or wrong credentials (HTTP 401)
    ├── PermissionDeniedError   credentials lack a scope (HTTP 403)
    ├── RateLimitedError        too many requests (HTTP 429, Retry-After)
    ├── ModelIntegrityError     a model artifact failed its checksum or format check
    └── UnavailableError        a dependency is down or too slow (HTTP 503, Retry-After)
        ├── BrokerUnavailableError
        └── StoreUnavailableError
"""

from __future__ import annotations

from typing import Any


class TouchpointError(Exception):
    """Base of every error Touchpoint raises on purpose."""


class CatalogError(TouchpointError):
    pass


class InvalidEventError(TouchpointError):
    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors))
        self.errors = errors


class NotFoundError(TouchpointError):
    pass


class ConflictError(TouchpointError):
    pass


class AuthenticationError(TouchpointError):
    pass


class PermissionDeniedError(TouchpointError):
    pass


class RateLimitedError(TouchpointError):
    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelIntegrityError(TouchpointError):
    pass


class UnavailableError(TouchpointError):
    def __init__(self, message: str, retry_after_s: int = 5):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BrokerUnavailableError(UnavailableError):
    pass


class StoreUnavailableError(UnavailableError):
    pass

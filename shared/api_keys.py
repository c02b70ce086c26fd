"""API keys: format, hashing, scopes and the key store file.

A key reads `tp_<id>_<secret>`: the 12-hex-digit id is public (it names the key in lists and
logs), the secret is 32 random bytes (base64url). Only a hash is stored: HMAC-SHA256 keyed by
the server's pepper (`API_KEY_PEPPER`) over a per-key random salt + the secret. A slow password
hash is not needed: the secret has 256 bits of entropy, so it cannot be guessed, and the pepper
keeps a stolen key file useless without the server's settings.

Scopes: `events:write`, `webhooks:<provider>` (or `webhooks:*`), `recommendations:read`,
`profiles:read`, `profiles:erase`, `admin`. `admin` grants every scope.

The store is a JSON file (`API_KEYS_FILE`); it is re-read when its modification time or size
changes, so keys are added, disabled or rotated without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.errors import AuthenticationError, PermissionDeniedError, TouchpointError

PREFIX = "tp"
FIXED_SCOPES = ("events:write", "recommendations:read", "profiles:read", "profiles:erase",
                "admin")
ALL_SCOPES = (*FIXED_SCOPES, "webhooks:*")
_SCOPE = re.compile(r"^(events:write|recommendations:read|profiles:read|profiles:erase|admin|"
                    r"webhooks:(\*|[a-z0-9_\-]{1,40}))$")
_KEY = re.compile(r"^tp_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")
_DEFAULT_PEPPER = b"touchpoint-api-key-v1"
DEV_KEY_FILE = "dev-api-key"
DEV_STORE_FILE = "api-keys.json"


class KeyStoreError(TouchpointError):
    """The key store file is unreadable or invalid."""


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    result = []
    for scope in scopes:
        scope = scope.strip()
        if not _SCOPE.match(scope):
            raise ValueError(f"unknown scope {scope!r}; known: {', '.join(FIXED_SCOPES)}, "
                             "webhooks:<provider>, webhooks:*")
        if scope not in result:
            result.append(scope)
    if not result:
        raise ValueError("a key needs at least one scope")
    return tuple(result)


def grants(scopes: Iterable[str], wanted: str) -> bool:
    """Whether a key with `scopes` may do what `wanted` allows."""
    held = set(scopes)
    if "admin" in held or wanted in held:
        return True
    return wanted.startswith("webhooks:") and "webhooks:*" in held


def key_hash(secret: str, salt: str, pepper: bytes | None) -> str:
    return hmac.new(pepper or _DEFAULT_PEPPER, (salt + secret).encode(), hashlib.sha256).hexdigest()


def new_key() -> tuple[str, str, str]:
    """(full key, id, secret) from the operating system's random source."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}_{key_id}_{secret}", key_id, secret


def split_key(presented: str) -> tuple[str, str] | None:
    match = _KEY.match(presented.strip())
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: str
    name: str
    scopes: tuple[str, ...]
    salt: str
    hash: str
    created_at: str
    disabled: bool = False

    def allows(self, scope: str) -> bool:
        return grants(self.scopes, scope)

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes),
                "created_at": self.created_at, "disabled": self.disabled}


@dataclass
class _Snapshot:
    keys: dict[str, ApiKey] = field(default_factory=dict)
    stamp: tuple[int, int] | None = None


class KeyStore:
    """Hashed keys in a JSON file, re-read when the file changes."""

    def __init__(self, path: Path, pepper: bytes | None = None):
        self.path = Path(path)
        self.pepper = pepper
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self) -> dict[str, ApiKey]:
        try:
            document = json.loads(self.path.read_text("utf-8"))
            entries = document["keys"]
            keys = {}
            for entry in entries:
                entry = dict(entry)
                entry["scopes"] = validate_scopes(entry["scopes"])
                key = ApiKey(**entry)
                keys[key.id] = key
            return keys
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"API key file {self.path} is invalid: {exc}") from exc

    def keys(self) -> dict[str, ApiKey]:
        """Current keys; re-reads the file when its modification time or size changed."""
        stamp = self._stamp()
        if stamp != self._snapshot.stamp:
            with self._lock:
                if stamp != self._snapshot.stamp:
                    keys = self._load() if stamp is not None else {}
                    self._snapshot = _Snapshot(keys, stamp)
        return self._snapshot.keys

    def authenticate(self, presented: str | None) -> ApiKey:
        """The key behind `presented`; raises AuthenticationError (401) otherwise."""
        if not presented:
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        parts = split_key(presented)
        if parts is None:
            raise AuthenticationError("malformed API key: expected tp_<12 hex>_<43 characters>")
        key_id, secret = parts
        key = self.keys().get(key_id)
        # Hash even for unknown ids so timing does not reveal which ids exist.
        expected = key.hash if key else "0" * 64
        actual = key_hash(secret, key.salt if key else "", self.pepper)
        if key is None or not hmac.compare_digest(expected, actual):
            raise AuthenticationError("invalid API key")
        if key.disabled:
            raise AuthenticationError(f"API key {key_id} is disabled")
        return key

    def authorize(self, presented: str | None, scope: str) -> ApiKey:
        key = self.authenticate(presented)
        if not key.allows(scope):
            raise PermissionDeniedError(
                f"API key {key.id} ({key.name}) lacks the scope {scope!r}; it has "
                f"{', '.join(key.scopes)}")
        return key

    # --- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self):
        """Serialises writers across processes (two `keys create` at once lose nothing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, keys: Iterable[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"version": 1, "keys": [
            {**asdict(k), "scopes": list(k.scopes)} for k in keys]}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)  # atomic: readers never see half a file

    def create(self, name: str, scopes: Iterable[str], now: datetime) -> tuple[ApiKey, str]:
        """Adds a key; returns it and the full key text (shown once, never stored)."""
        scopes = validate_scopes(scopes)
        full, key_id, secret = new_key()
        salt = secrets.token_hex(16)
        key = ApiKey(id=key_id, name=name, scopes=scopes, salt=salt,
                     hash=key_hash(secret, salt, self.pepper),
                     created_at=now.astimezone(UTC).isoformat(timespec="seconds"))
        with self._exclusive():
            current = dict(self._load()) if self._stamp() is not None else {}
            current[key.id] = key
            self._write(current.values())
        return key, full

    def set_disabled(self, key_id: str, disabled: bool = True) -> ApiKey:
        with self._exclusive():
            current = dict(self._load()) if self._stamp() is not None else {}
            if key_id not in current:
                raise KeyError(key_id)
            key = current[key_id] = ApiKey(**{**asdict(current[key_id]), "disabled": disabled})
            self._write(current.values())
        return key


def ensure_dev_key(data_dir: Path, pepper: bytes | None = None) -> str:
    """The development key with every scope, created once under `data_dir`.

    Writes `<data_dir>/api-keys.json` (the store) and `<data_dir>/dev-api-key` (the key text,
    mode 600), and returns the key. An existing key that still verifies is reused.
    """
    data_dir = Path(data_dir)
    store = KeyStore(data_dir / DEV_STORE_FILE, pepper)
    key_file = data_dir / DEV_KEY_FILE
    if key_file.exists():
        existing = key_file.read_text("utf-8").strip()
        try:
            if store.authenticate(existing).allows("admin"):
                return existing
        except (AuthenticationError, KeyStoreError):
            pass
    _, full = store.create("development", ALL_SCOPES, datetime.now(UTC))
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(full + "\n", "utf-8")
    os.chmod(key_file, 0o600)
    return full

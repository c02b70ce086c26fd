"""Generic webhook providers declared in a JSON mapping file: new tools need configuration,
not code. `docs/integrations.md` documents the format; `deploy/mappings/` has examples.

A provider declares how its requests are authenticated (an HMAC-SHA256 header over the raw
body, or a secret token in the URL), how the body is encoded (JSON or form), and one or more
record rules. A rule points (RFC 6901 JSON pointer) at a list or object in the body; each item
becomes one event whose fields are read with pointers relative to the item.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.ingestion.webhooks.forms import nested_form
from services.ingestion.webhooks.model import (
    DEFAULT_OPTIONS,
    Headers,
    MappedItem,
    MappingOptions,
    Provider,
    SignatureError,
    UnmappableError,
    Unmapped,
    required_header,
    same,
    stable_event_id,
)
from shared.contact_identity import normalize_email, normalize_phone
from shared.errors import CatalogError

Pointer = str  # "" (the item itself) or "/a/b/0"
_MISSING = object()


class MappingError(CatalogError):
    """The mapping file is missing or invalid (raised at start-up)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HmacAuth(Strict):
    type: Literal["hmac-sha256"]
    header: str = Field(description="Header carrying the signature.")
    encoding: Literal["base64", "hex"] = "base64"
    prefix: str = Field("", description="Text before the digest, e.g. 'sha256='.")


class TokenAuth(Strict):
    type: Literal["url-token"]
    param: str = Field("token", description="Query parameter holding the secret.")


class ApiKeyAuth(Strict):
    """For tools that can send our API key (e.g. a HubSpot workflow webhook with an API-key
    header): the key must hold the scope `webhooks:<provider>`."""

    type: Literal["api-key"]


class Field_(Strict):
    path: Pointer | None = None
    const: str | float | None = None
    kind: Literal["raw", "email", "phone", "upper"] = Field("raw", alias="as")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimeSpec(Strict):
    path: Pointer
    format: Literal["iso", "unix", "unix_ms", "datetime"] = "iso"
    utc_offset: str = Field("+00:00", pattern=r"^[+-]\d{2}:\d{2}$",
                            description="Zone of 'datetime' values without one.")


class TouchpointSpec(Strict):
    path: Pointer
    values: dict[str, str]


class RecordRule(Strict):
    path: Pointer = ""
    when: dict[Pointer, str] = Field(default_factory=dict)
    touchpoint: str | TouchpointSpec
    customer_id: list[Field_]
    event_id: list[Pointer] = Field(default_factory=list)
    occurred_at: TimeSpec
    value: Field_ | None = None
    currency: Field_ | None = None
    properties: dict[str, Pointer] = Field(default_factory=dict)
    context: dict[Literal["campaign", "message", "decision_id", "action_id", "need", "url"],
                  Pointer] = Field(default_factory=dict)

    @field_validator("customer_id", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            return [{"path": value} if isinstance(value, str) else value]
        return value


class GenericProviderSpec(Strict):
    description: str = ""
    body: Literal["json", "form"] = "json"
    auth: HmacAuth | TokenAuth | ApiKeyAuth = Field(discriminator="type")
    records: list[RecordRule] = Field(min_length=1)


class MappingFile(Strict):
    version: Literal[1] = 1
    providers: dict[str, GenericProviderSpec]

    @field_validator("providers")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.replace("_", "").replace("-", "").isalnum() or name != name.lower():
                raise ValueError(f"provider name {name!r} must be lower-case letters, digits, "
                                 "_ or -")
        return value


def resolve(document: Any, pointer: Pointer) -> Any:
    """RFC 6901 JSON pointer lookup; returns _MISSING when the path is absent."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise MappingError(f"JSON pointer {pointer!r} must start with '/'")
    node = document
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _scalar(value: Any) -> str | float | int | bool | None:
    if value is _MISSING or value is None or isinstance(value, dict | list):
        return None
    return value


def _read(spec: Field_, item: Any, options: MappingOptions) -> Any:
    value = spec.const if spec.path is None else _scalar(resolve(item, spec.path))
    if value is None:
        return None
    if spec.kind == "email":
        return normalize_email(value)
    if spec.kind == "phone":
        return normalize_phone(value, options.default_country_code)
    text = str(value).strip().upper() if spec.kind == "upper" else str(value).strip()
    return text or None


def _time(spec: TimeSpec, item: Any) -> datetime | None:
    value = _scalar(resolve(item, spec.path))
    if value is None:
        return None
    try:
        if spec.format in ("unix", "unix_ms"):
            seconds = float(value) / (1000 if spec.format == "unix_ms" else 1)
            return datetime.fromtimestamp(seconds, tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        sign = 1 if spec.utc_offset[0] == "+" else -1
        hours, minutes = (int(x) for x in spec.utc_offset[1:].split(":"))
        parsed = parsed.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return parsed


def _touchpoint(rule: RecordRule, item: Any) -> str | None:
    if isinstance(rule.touchpoint, str):
        return rule.touchpoint
    key = _scalar(resolve(item, rule.touchpoint.path))
    return rule.touchpoint.values.get(str(key)) if key is not None else None


def map_item(name: str, rule: RecordRule, item: Any, options: MappingOptions) -> MappedItem:
    touchpoint = _touchpoint(rule, item)
    if touchpoint is None:
        return Unmapped(f"no touchpoint for this item (rule at {rule.path or '(body)'})", item)
    customer = next((found for spec in rule.customer_id
                     if (found := _read(spec, item, options))), None)
    if customer is None:
        return Unmapped("no customer id found at " + ", ".join(
            s.path or "(const)" for s in rule.customer_id), item)
    occurred_at = _time(rule.occurred_at, item)
    if occurred_at is None:
        return Unmapped(f"no usable time at {rule.occurred_at.path}", item)
    if rule.event_id:
        parts = [_scalar(resolve(item, p)) for p in rule.event_id]
        if any(p is None for p in parts):
            return Unmapped("event id path missing: " + ", ".join(rule.event_id), item)
        event_id = stable_event_id(name, *parts)
    else:
        # No delivery id: the item's own bytes are identical on every retry.
        digest = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
        event_id = f"{name}:h-{digest[:40]}"
    event: dict[str, Any] = {"event_id": event_id, "customer_id": customer,
                             "occurred_at": occurred_at.isoformat(), "touchpoint": touchpoint}
    if rule.value is not None and (value := _read(rule.value, item, options)) is not None:
        event["value"] = value
        if rule.currency is not None:
            event["currency"] = _read(rule.currency, item, options)
    properties = {key: _scalar(resolve(item, path)) for key, path in rule.properties.items()}
    event["properties"] = {k: (v[:1000] if isinstance(v, str) else v)
                           for k, v in properties.items() if v is not None}
    context = {key: _scalar(resolve(item, path)) for key, path in rule.context.items()}
    event["context"] = {k: str(v)[:200] for k, v in context.items() if v is not None}
    return event


def _matches(rule: RecordRule, item: Any) -> bool:
    return all(str(_scalar(resolve(item, path))) == expected
               for path, expected in rule.when.items())


def make_provider(name: str, spec: GenericProviderSpec) -> Provider:
    def verify(headers: Headers, raw_body: bytes, url: str, secret: str, now: datetime) -> None:
        auth = spec.auth
        if isinstance(auth, ApiKeyAuth):
            return  # the router checked the API key's webhooks:<name> scope
        if isinstance(auth, TokenAuth):
            tokens = parse_qs(urlsplit(url).query).get(auth.param, [])
            if not tokens or not same(secret, tokens[0]):
                raise SignatureError(f"missing or wrong {auth.param} query parameter")
            return
        given = required_header(headers, auth.header).strip()
        digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
        text = base64.b64encode(digest).decode() if auth.encoding == "base64" else digest.hex()
        if not same(auth.prefix + text, given):
            raise SignatureError(f"{auth.header} does not match the body")

    def parse(headers: Headers, raw_body: bytes) -> Any:
        if spec.body == "form":
            return nested_form(raw_body)
        try:
            return orjson.loads(raw_body)
        except orjson.JSONDecodeError as exc:
            raise UnmappableError(f"body is not JSON: {exc}") from exc

    def to_events(payload: Any, options: MappingOptions = DEFAULT_OPTIONS) -> list[MappedItem]:
        items: list[MappedItem] = []
        for rule in spec.records:
            found = resolve(payload, rule.path)
            if found is _MISSING:
                continue
            for item in found if isinstance(found, list) else [found]:
                if _matches(rule, item):
                    items.append(map_item(name, rule, item, options))
        if not items:
            items.append(Unmapped("no record rule matched the body", payload))
        return items

    return Provider(name=name, verify=verify, parse=parse, to_events=to_events,
                    secret_settings=("webhook_generic_secrets",),
                    description=spec.description or f"{name} (generic mapping)",
                    api_key_scope=f"webhooks:{name}" if isinstance(spec.auth, ApiKeyAuth)
                    else None)


def load_mapping(path: Path) -> MappingFile:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MappingError(f"cannot read webhook mapping file {path}: {exc}") from exc
    try:
        return MappingFile.model_validate(document)
    except ValidationError as exc:
        raise MappingError(f"webhook mapping file {path} is invalid: {exc}") from exc


def generic_providers(path: Path) -> dict[str, Provider]:
    mapping = load_mapping(path)
    return {name: make_provider(name, spec) for name, spec in mapping.providers.items()}


Loader = Callable[[Path], dict[str, Provider]]

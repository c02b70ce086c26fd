"""Form-encoded webhook bodies (`data[merges][EMAIL]=...`) as nested dicts."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from services.ingestion.webhooks.model import UnmappableError

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def form_pairs(raw_body: bytes) -> list[tuple[str, str]]:
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnmappableError("form body is not UTF-8") from exc
    return parse_qsl(text, keep_blank_values=True)


def nested_form(raw_body: bytes) -> dict[str, Any]:
    """`a[b][c]=1` -> {"a": {"b": {"c": "1"}}}; `a[]=1&a[]=2` -> {"a": {"0": "1", "1": "2"}}."""
    root: dict[str, Any] = {}
    for key, value in form_pairs(raw_body):
        match = _KEY.match(key)
        if not match:
            root[key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = path[-1]
        if last == "":
            last = str(len(node))
        node[last] = value
    return root

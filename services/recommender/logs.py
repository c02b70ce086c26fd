"""Logged decisions: the JSON-lines format read by ``train`` and ``evaluate``.

One line per decision::

    {"context": {name: number|string|bool}, "action": "id", "propensity": p,
     "reward": r, "actions": optional candidate list of ids or {"id", "features"}}

``propensity`` is the probability with which the logging policy chose ``action`` (0 < p <= 1).
Without ``actions`` every action seen in the log is assumed to have been a candidate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class LogFormatError(ValueError):
    """A log or contexts line is not in the documented format; names the line and field."""


@dataclass(frozen=True)
class LoggedDecision:
    context: dict[str, Any]
    action: str
    propensity: float
    reward: float
    candidates: tuple[str, ...] | None = None
    candidate_features: dict[str, dict[str, float]] = field(default_factory=dict)


def _where(lineno: int | None) -> str:
    return f"line {lineno}: " if lineno is not None else ""


def parse_context(raw: Any, lineno: int | None = None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise LogFormatError(f"{_where(lineno)}context: expected an object")
    for name, value in raw.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise LogFormatError(
                f"{_where(lineno)}context.{name}: expected a number, string or boolean"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise LogFormatError(f"{_where(lineno)}context.{name}: not a finite number")
    return dict(raw)


def parse_candidates(
    raw: Any, lineno: int | None = None
) -> tuple[tuple[str, ...], dict[str, dict[str, float]]]:
    """``[ids or {"id", "features"}]`` -> (ids, features by id)."""
    if not isinstance(raw, list) or not raw:
        raise LogFormatError(f"{_where(lineno)}actions: expected a non-empty list")
    ids: list[str] = []
    features: dict[str, dict[str, float]] = {}
    for i, item in enumerate(raw):
        if isinstance(item, str):
            ids.append(item)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise LogFormatError(f"{_where(lineno)}actions[{i}]: expected an id or {{\"id\": ...}}")
        ids.append(item["id"])
        feats = item.get("features") or {}
        if not isinstance(feats, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in feats.values()
        ):
            raise LogFormatError(f"{_where(lineno)}actions[{i}].features: expected numbers")
        features[item["id"]] = {str(k): float(v) for k, v in feats.items()}
    if len(set(ids)) != len(ids):
        raise LogFormatError(f"{_where(lineno)}actions: duplicate action ids")
    return tuple(ids), features


def parse_decision(raw: Any, lineno: int | None = None) -> LoggedDecision:
    if not isinstance(raw, dict):
        raise LogFormatError(f"{_where(lineno)}expected a JSON object")
    for name in ("context", "action", "propensity", "reward"):
        if name not in raw:
            raise LogFormatError(f"{_where(lineno)}{name}: missing")
    context = parse_context(raw["context"], lineno)
    action = raw["action"]
    if not isinstance(action, str) or not action:
        raise LogFormatError(f"{_where(lineno)}action: expected a non-empty string")
    propensity = raw["propensity"]
    if (
        not isinstance(propensity, int | float)
        or isinstance(propensity, bool)
        or not 0 < propensity <= 1
    ):
        raise LogFormatError(f"{_where(lineno)}propensity: expected a number in (0, 1]")
    reward = raw["reward"]
    if not isinstance(reward, int | float) or isinstance(reward, bool) or not math.isfinite(
        reward
    ):
        raise LogFormatError(f"{_where(lineno)}reward: expected a finite number")
    candidates, features = (None, {})
    if raw.get("actions") is not None:
        candidates, features = parse_candidates(raw["actions"], lineno)
        if action not in candidates:
            raise LogFormatError(f"{_where(lineno)}action: {action!r} is not in actions")
    return LoggedDecision(context, action, float(propensity), float(reward), candidates, features)


def read_jsonl(path: str | Path) -> Iterable[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LogFormatError(f"cannot read {path}: {exc}") from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise LogFormatError(f"line {lineno}: not valid JSON ({exc.msg})") from exc


@dataclass(frozen=True)
class BanditLog:
    """A log as arrays: the candidate set of row i is ``candidate_mask[i]`` over ``action_ids``."""

    contexts: list[dict[str, Any]]
    actions: list[str]
    propensities: np.ndarray
    rewards: np.ndarray
    action_ids: list[str]
    logged_index: np.ndarray
    candidate_mask: np.ndarray
    action_features: dict[str, dict[str, float]]

    def __len__(self) -> int:
        return len(self.actions)

    @classmethod
    def from_decisions(
        cls,
        decisions: Sequence[LoggedDecision],
        action_features: Mapping[str, Mapping[str, float]] | None = None,
    ) -> BanditLog:
        if not decisions:
            raise LogFormatError("the log holds no decisions")
        ids: dict[str, None] = {}
        features = {k: dict(v) for k, v in (action_features or {}).items()}
        for decision in decisions:
            ids.setdefault(decision.action)
            for candidate in decision.candidates or ():
                ids.setdefault(candidate)
            features.update(decision.candidate_features)
        action_ids = list(ids)
        column = {a: i for i, a in enumerate(action_ids)}
        mask = np.zeros((len(decisions), len(action_ids)), dtype=bool)
        for row, decision in enumerate(decisions):
            if decision.candidates is None:
                mask[row] = True
            else:
                mask[row, [column[c] for c in decision.candidates]] = True
        return cls(
            contexts=[d.context for d in decisions],
            actions=[d.action for d in decisions],
            propensities=np.asarray([d.propensity for d in decisions]),
            rewards=np.asarray([d.reward for d in decisions]),
            action_ids=action_ids,
            logged_index=np.asarray([column[d.action] for d in decisions]),
            candidate_mask=mask,
            action_features={a: features[a] for a in action_ids if a in features},
        )

    def subset(self, rows: np.ndarray) -> BanditLog:
        return BanditLog(
            contexts=[self.contexts[i] for i in rows],
            actions=[self.actions[i] for i in rows],
            propensities=self.propensities[rows],
            rewards=self.rewards[rows],
            action_ids=self.action_ids,
            logged_index=self.logged_index[rows],
            candidate_mask=self.candidate_mask[rows],
            action_features=self.action_features,
        )


def read_log(
    path: str | Path, action_features: Mapping[str, Mapping[str, float]] | None = None
) -> BanditLog:
    decisions = [parse_decision(raw, lineno) for lineno, raw in read_jsonl(path)]
    return BanditLog.from_decisions(decisions, action_features)

"""The decision pipeline: profile + request -> ranked eligible actions, and the record to log.

    holdout? -> eligibility (contact policy) -> scorer (model or prior) -> arbitration
             -> exploration with exact propensities -> reasons -> rendered messages

Pure apart from the model holder's swap: the profile state, ``now`` and the random generator
are arguments; reading Redis and producing to Kafka happen in the API layer.

Holdout: a customer whose stable bucket (hash of salt + customer id) falls under the holdout
share gets no action at all, so lift can be measured against a control group; the decision
is still logged (``holdout: true``, no actions).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from services.recommender import profile_view
from services.recommender.eligibility import (
    ContactPolicy,
    ProfileSnapshot,
    Rejection,
    check_eligibility,
)
from services.recommender.scoring import PriorScorer, Scorer
from shared.actions import NO_ACTION_ID, Action, ActionCatalog, template_fields
from shared.decisions import DecidedAction, DecisionRecord
from shared.features import profile_features

log = logging.getLogger(__name__)

LANGUAGES = ("vi", "en")


def holdout_bucket(customer_id: str, salt: str) -> float:
    """A number in [0, 1) fixed for the customer (and salt): the same customer, same group."""
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def language_of(context: Mapping[str, Any]) -> str:
    locale = str(context.get("locale") or context.get("language") or "vi").lower()
    return "en" if locale.startswith("en") else "vi"


def rules_passed(action: Action, profile: ProfileSnapshot, policy: ContactPolicy) -> list[str]:
    """The contact-policy rules an eligible action satisfied, as a marketer reads them."""
    if action.is_no_action:
        return ["no_action: always eligible"]
    rules = [f"phase: {profile.phase}"]
    if action.journey_steps and profile.journey_step:
        rules.append(f"journey_step: {profile.journey_step}")
    if profile.open_bad_experiences and action.service_recovery:
        rules.append("service_first: open " + ", ".join(profile.open_bad_experiences))
    if action.consent:
        rules.append(f"consent: {action.consent} opt_in")
    cooldown = policy.cooldown(action)
    if cooldown.total_seconds() > 0:
        rules.append(f"cooldown: not sent in the last {cooldown.total_seconds() / 3600:g} h")
    for name, cap in (("daily_cap", policy.daily_cap(action.channel)),
                      ("weekly_cap", policy.weekly_cap(action.channel))):
        if cap is not None:
            rules.append(f"{name}: under {cap} {action.channel} contact(s)")
    if action.channel in policy.quiet_hours_channels:
        rules.append(f"quiet_hours: outside {policy.quiet_start:%H:%M}-{policy.quiet_end:%H:%M} "
                     f"{profile.timezone}")
    return rules


# --- models: the current scorer, swapped atomically ------------------------------------------


class ModelSource(Protocol):
    """Where promoted models come from (the registry)."""

    def promoted_version(self) -> str | None: ...

    def load(self, version: str) -> Any: ...  # verified; raises on a bad artifact


class ModelHolder:
    """Holds the scorer in use; `refresh` follows the registry's promoted pointer.

    A swap is one attribute assignment, so a request sees either the old scorer or the new
    one, never a mix. A model that fails to load (checksum, format) is refused: the previous
    scorer stays, the failure is counted and logged, and the same version is not retried until
    the pointer changes.
    """

    def __init__(
        self,
        prior: PriorScorer,
        compile_model: Callable[[Any, str], Scorer],
        source: ModelSource | None = None,
        on_loaded: Callable[[str], None] = lambda version: None,
        on_refused: Callable[[str, str], None] = lambda version, reason: None,
    ):
        self.prior = prior
        self.compile_model = compile_model
        self.source = source
        self.on_loaded = on_loaded
        self.on_refused = on_refused
        self.current: Scorer = prior
        self.refused_version: str | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @property
    def model_loaded(self) -> bool:
        return self.current is not self.prior

    def refresh(self) -> str:
        """Follow the promoted pointer once; returns the version in use afterwards."""
        if self.source is None:
            return self.current.version
        with self._lock:
            version = self.source.promoted_version()
            if version is None:
                if self.current is not self.prior:
                    log.info("no promoted model any more; serving the cold-start prior")
                    self.current = self.prior
                return self.current.version
            if version == self.current.version or version == self.refused_version:
                return self.current.version
            try:
                scorer = self.compile_model(self.source.load(version), version)
            except Exception as exc:  # any failure keeps the previous scorer in service
                self.refused_version = version
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("model %s refused, keeping %s: %s", version, self.current.version,
                          self.last_error)
                self.on_refused(version, type(exc).__name__)
                return self.current.version
            self.current = scorer
            self.refused_version = None
            self.last_error = None
            log.info("serving model %s", version)
            self.on_loaded(version)
            return version


# --- the pipeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    id: str
    features: dict[str, float] | None = None


@dataclass(frozen=True)
class DecisionRequest:
    customer_id: str
    context: dict[str, Any] = field(default_factory=dict)
    candidates: tuple[Candidate, ...] | None = None
    k: int = 1
    request_id: str | None = None


@dataclass(frozen=True)
class ChosenAction:
    action: Action
    rank: int
    message: str
    p: float
    score: float
    propensity: float
    explored: bool
    rules: list[str]
    top_features: list[tuple[str, float]]


@dataclass(frozen=True)
class Decision:
    decision_id: str
    customer_id: str
    decided_at: datetime
    actions: list[ChosenAction]
    model_version: str
    policy: str
    holdout: bool
    degraded: bool
    degraded_reason: str | None
    known_customer: bool
    rejected: Mapping[str, Rejection]
    record: DecisionRecord


@dataclass(frozen=True)
class PipelineConfig:
    contact_policy: ContactPolicy = field(default_factory=ContactPolicy)
    holdout_share: float = 0.05
    holdout_salt: str = "touchpoint-holdout"
    levers: Mapping[str, float] = field(default_factory=dict)
    top_features: int = 3


class DecisionPipeline:
    def __init__(self, catalog: ActionCatalog, models: ModelHolder, config: PipelineConfig):
        self.catalog = catalog
        self.models = models
        self.config = config
        self._all = tuple(Candidate(a) for a in catalog)
        # Message placeholders (a first name, a product name) fill templates; as features
        # they would only be noise with personal data in the decision log.
        self._placeholders = frozenset(
            name for action in catalog.values() for text in action.templates.values()
            for name in template_fields(text)
        ) | frozenset(n for values in catalog.placeholder_defaults.values() for n in values)
        # Decision ids need to be unique, not secret: a seeded PRNG is far cheaper per call
        # than os.urandom under load.
        self._ids = random.Random(uuid.uuid4().int)

    def features(
        self, state: Mapping[str, Any], context: Mapping[str, Any], profile: ProfileSnapshot,
        now: datetime,
    ) -> dict[str, Any]:
        features = profile_features(state, now)
        features.update((k, v) for k, v in context.items() if k not in self._placeholders)
        features["phase"] = profile.phase
        return features

    def decide(
        self,
        request: DecisionRequest,
        state: Mapping[str, Any] | None,
        now: datetime,
        rng: np.random.Generator,
        degraded_reason: str | None = None,
    ) -> Decision:
        state = state or {}
        degraded = degraded_reason is not None
        profile = profile_view.snapshot(state, request.context, now)
        candidates = request.candidates if request.candidates is not None else self._all
        by_id = {c.id: c for c in candidates}
        actions = [self.catalog[c.id] for c in candidates]
        result = check_eligibility(profile, actions, self.config.contact_policy, now)
        features = self.features(state, request.context, profile, now)
        scorer = self.models.prior if degraded else self.models.current
        holdout = holdout_bucket(request.customer_id, self.config.holdout_salt) < (
            self.config.holdout_share
        )
        eligible = list(result.eligible)
        chosen: list[ChosenAction] = []
        if not holdout and eligible:
            chosen = self._choose(eligible, by_id, features, profile, scorer, request, rng)
        policy = "holdout" if holdout else "fallback" if degraded else scorer.policy
        decision_id = f"{self._ids.getrandbits(128):032x}"
        # Built without validation: every field comes from this function, typed.
        record = DecisionRecord.model_construct(
            schema_version=1,
            decision_id=decision_id,
            customer_id=request.customer_id,
            decided_at=now,
            model_version=scorer.version,
            policy=policy,
            holdout=holdout,
            actions=[
                DecidedAction.model_construct(
                    action_id=c.action.id, rank=c.rank, channel=c.action.channel,
                    touchpoint=c.action.touchpoint or "", score=c.score,
                    propensity=c.propensity,
                )
                for c in chosen
            ],
            candidates=[a.id for a in eligible],
            features=features,
            context={k: v for k, v in request.context.items() if k not in self._placeholders},
            request_id=request.request_id,
        )
        return Decision(
            decision_id=decision_id, customer_id=request.customer_id, decided_at=now,
            actions=chosen, model_version=scorer.version, policy=policy, holdout=holdout,
            degraded=degraded, degraded_reason=degraded_reason, known_customer=bool(state),
            rejected=result.rejected, record=record,
        )

    def _choose(
        self,
        eligible: Sequence[Action],
        by_id: Mapping[str, Candidate],
        features: Mapping[str, Any],
        profile: ProfileSnapshot,
        scorer: Scorer,
        request: DecisionRequest,
        rng: np.random.Generator,
    ) -> list[ChosenAction]:
        ids = [a.id for a in eligible]
        levers = self.config.levers
        values = np.asarray([a.value * levers.get(a.id, 1.0) for a in eligible])
        costs = np.asarray([a.cost for a in eligible])
        custom = {i: by_id[i].features for i in ids if by_id[i].features}
        scored = scorer.decide(features, ids, values, costs, request.k, rng, custom or None)
        language = language_of(request.context)
        message_values = {k: v for k, v in request.context.items() if isinstance(v, str)}
        chosen = []
        for rank, slot in enumerate(scored.slate, start=1):
            action = eligible[slot.index]
            chosen.append(ChosenAction(
                action=action,
                rank=rank,
                message=self.catalog.render(action.id, language, message_values),
                p=float(scored.p[slot.index]),
                score=float(scored.score[slot.index]),
                propensity=slot.propensity,
                explored=slot.explored,
                rules=rules_passed(action, profile, self.config.contact_policy),
                top_features=scorer.top_features(features, action.id, self.config.top_features),
            ))
            if action.id == NO_ACTION_ID:
                break  # doing nothing ends the list: nothing after it would be sent
        return chosen

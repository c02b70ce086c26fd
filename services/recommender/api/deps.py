"""What every recommender route needs, built once in the app factory."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from fastapi import Depends, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.recommender.decision_log import DecisionSink
from services.recommender.profile_reader import ProfileReader
from services.recommender.serving import DecisionPipeline, ModelHolder
from services.streaming.publisher import Publisher
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog

log = logging.getLogger("services.recommender.api")


class RecommenderMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.decisions = Counter(
            "touchpoint_recommender_decisions_total",
            "Decisions by first action, model version and policy.",
            ["action", "model_version", "policy"], registry=registry)
        self.fallbacks = Counter(
            "touchpoint_recommender_fallbacks_total",
            "Decisions answered by the degraded fallback, by reason.", ["reason"],
            registry=registry)
        self.latency = Histogram(
            "touchpoint_recommender_decision_seconds",
            "Time to decide (profile read, eligibility, scoring), without HTTP.",
            registry=registry,
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25))
        self.log_failures = Counter(
            "touchpoint_recommender_decision_log_failures_total",
            "Decisions that did not reach the decision topic, by reason.", ["reason"],
            registry=registry)
        self.logged = Counter(
            "touchpoint_recommender_decisions_logged_total",
            "Decisions acknowledged by Kafka.", registry=registry)
        self.model_loads = Counter(
            "touchpoint_recommender_model_loads_total",
            "Promoted models loaded into service.", registry=registry)
        self.model_refusals = Counter(
            "touchpoint_recommender_model_refusals_total",
            "Promoted models refused (checksum, format), by error.", ["error"],
            registry=registry)
        self.model_info = Gauge(
            "touchpoint_recommender_model_info",
            "1 for the model version in service.", ["model_version"], registry=registry,
            multiprocess_mode="max")
        self.feedback = Counter(
            "touchpoint_recommender_feedback_total",
            "Explicit outcomes received, by outcome.", ["outcome"], registry=registry)
        self._serving: str | None = None

    def serving(self, version: str) -> None:
        # Zero first: with several workers the metric files keep every version they set.
        if self._serving is not None:
            self.model_info.labels(self._serving).set(0)
        self.model_info.clear()
        self.model_info.labels(version).set(1)
        self._serving = version


class ThrottledWarning:
    """Logs a recurring problem at most once per `every_s`, with how often it happened.

    A Redis outage at 500 requests/s must not become 500 log lines/s: writing them would
    cost more than answering.
    """

    def __init__(self, message: str, every_s: float = 10.0):
        self.message = message
        self.every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, cause: object) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return
        log.warning("%s: %s (%d more since the last report)", self.message, cause,
                    self._suppressed)
        self._last, self._suppressed = now, 0


@dataclass
class Runtime:
    settings: Settings
    pipeline: DecisionPipeline
    models: ModelHolder
    reader: ProfileReader
    decision_log: DecisionSink
    feedback_publisher: Publisher
    touchpoints: TouchpointCatalog
    metrics: RecommenderMetrics
    registry: CollectorRegistry
    rng: np.random.Generator
    degraded_log: ThrottledWarning = field(
        default_factory=lambda: ThrottledWarning("deciding without a profile")
    )


async def get_runtime(request: Request) -> Runtime:
    # async: a plain `def` dependency would cost a worker-thread hop on every request.
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

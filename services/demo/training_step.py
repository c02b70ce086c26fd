"""Training from what the demo logged: the recommender's own learning join, trainer, model store
and registry, called the way `touchpoint train` calls them.

The join leaves out decisions whose attribution window is still open. The demo compresses time:
every simulated answer arrives within minutes of its decision and no later answer will come, so
it joins as of the moment the windows of its decisions have closed (now + the window).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.recommender import learning, training
from services.recommender.model_store import save_model
from services.recommender.policies import PersonalizedPolicy
from services.recommender.registry import ModelRegistry, PromotionGate, PromotionRefused
from shared.actions import load_actions
from shared.settings import Settings

ESTIMATORS = ("IPS", "SNIPS", "DR")


@dataclass
class TrainingResult:
    version: str
    promoted: bool
    refusal: str | None
    decisions_read: int
    rows: int
    positives: int
    estimates: dict[str, dict[str, float]]  # candidate IPS / SNIPS / DR: value, ci_low, ci_high
    cold_start: dict[str, float]  # the logging (cold-start) policy's on-policy value and CI
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def beats_cold_start(self) -> bool:
        dr = self.estimates.get("DR")
        return dr is not None and dr["value"] > self.cold_start["value"]


def train_and_promote(
    settings: Settings,
    seed: int,
    on_progress: Callable[[str], None] = lambda message: None,
    now: datetime | None = None,
) -> TrainingResult:
    now = now or datetime.now(UTC)
    closes_at = now + timedelta(days=settings.recommender_attribution_days, seconds=1)
    stream = learning.log_from_stream(
        settings, closes_at, lambda topic, n: on_progress(f"reading {topic}: {n:,} records"))
    if not stream.rows:
        raise ValueError(f"no trainable decision in {settings.topic_decisions} "
                         f"({stream.report.decisions} decisions read)")
    log = learning.bandit_log(stream.rows, load_actions(settings.action_catalog_file))
    registry = ModelRegistry(settings.model_registry_dir)
    promoted = registry.load_promoted()
    current = promoted[1].model if promoted and isinstance(promoted[1].model,
                                                          PersonalizedPolicy) else None
    on_progress(f"fitting on {len(log):,} decisions")
    policy, evaluation = training.train(log, current, random_state=seed)
    with tempfile.TemporaryDirectory(prefix="touchpoint-demo-model-") as directory:
        save_model(policy, directory, created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), extra={
            "n_decisions": len(log), "actions": log.action_ids,
            "fit_report": policy.fit_report_, "evaluation": evaluation,
            "trained_by": "touchpoint demo",
        })
        version = registry.register(directory)
    on_progress(f"registered {version}; checking the promotion gate")
    refusal = None
    try:
        registry.promote(version, PromotionGate())
    except PromotionRefused as exc:
        refusal = exc.reason
    candidate = evaluation.get("candidate") or {}
    return TrainingResult(
        version=version,
        promoted=refusal is None,
        refusal=refusal,
        decisions_read=stream.report.decisions,
        rows=stream.report.rows,
        positives=stream.report.positives,
        estimates={m: candidate[m] for m in ESTIMATORS if m in candidate},
        cold_start=evaluation["logging"]["on_policy"],
        report=policy.fit_report_,
    )

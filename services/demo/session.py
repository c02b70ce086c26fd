"""One demo run against a running system, phase after phase:

    check the services -> simulate customers -> stream their history (API + signed webhooks)
    -> wait for the profiles -> rounds of decisions answered by the hidden response model
    -> train, register, promote -> a final round served by the promoted model -> summary

Everything goes through the public interfaces: `POST /v1/events`, `POST /v1/webhooks/...`,
`POST /v1/recommendations`, the profile service's metrics; training reads the Kafka topics and
writes the model registry, as `touchpoint train` does. Settings, secrets and clients are built by
the command (`cli.py`) and passed in.
"""

from __future__ import annotations

import asyncio
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from rich.progress import Progress
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from services.demo import deliveries
from services.demo.population import (
    PROVIDER_EMAIL_TOUCHPOINTS,
    DemoCustomer,
    build_population,
    order_value,
    phase_counts,
)
from services.demo.response_model import Decided, respond
from services.demo.summary import RoundResult, Summary
from services.demo.training_step import TrainingResult, train_and_promote
from services.demo.transport import DemoError, Http
from services.simulator.journeys import JourneySimulator
from shared.settings import Settings
from shared.touchpoints import TouchpointCatalog

EMAIL_BATCH = 200
_LAG = re.compile(r'^touchpoint_profile_consumer_lag\{[^}]*topic="([^"]+)"[^}]*\}\s+(\S+)', re.M)
_APPLIED = re.compile(
    r'^touchpoint_profile_(?:events_applied|duplicates_skipped)_total\{[^}]*\}\s+(\S+)', re.M)


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 10_000
    rounds: int = 2
    seed: int = 7
    history_days: int = 90
    batch_size: int = 1000
    concurrency: int = 16
    model_wait_s: float = 90.0
    evaluation_share: float = 0.3
    webhook_days: float = 30.0
    webhook_secrets: dict[str, str] = field(default_factory=dict)


@dataclass
class SendCounts:
    api_events: int = 0
    api_accepted: int = 0
    webhook_events: Counter = field(default_factory=Counter)
    webhook_accepted: Counter = field(default_factory=Counter)
    webhook_deliveries: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class DemoSession:
    def __init__(self, http: Http, options: DemoOptions, catalog: TouchpointCatalog,
                 training_settings: Settings, progress: Progress):
        self.http = http
        self.options = options
        self.catalog = catalog
        self.training_settings = training_settings
        self.progress = progress
        self.counts = SendCounts()
        self.customers: list[DemoCustomer] = []
        self.rng = np.random.default_rng(options.seed)
        self.degraded = 0

    # --- sending ---------------------------------------------------------------------------

    @property
    def _ingestion(self) -> str:
        return self.http.endpoints.ingestion.rstrip("/")

    async def _post_events(self, events: Sequence[dict[str, Any]], task: Any) -> None:
        reply = await self.http.send("POST", f"{self._ingestion}/v1/events",
                                     json={"events": list(events)})
        body = reply.json()
        self.counts.api_events += len(events)
        self.counts.api_accepted += int(body.get("accepted", 0))
        for error in body.get("errors", [])[:3]:
            self.counts.problems.append(f"events: {orjson.dumps(error).decode()[:300]}")
        self.progress.advance(task, len(events))

    async def _deliver(self, delivery: deliveries.Delivery, task: Any) -> None:
        reply = await self.http.send(
            "POST", f"{self._ingestion}/v1/webhooks/{delivery.provider}",
            content=delivery.body, headers=delivery.headers, auth=False)
        body = reply.json()
        self.counts.webhook_events[delivery.provider] += delivery.events
        self.counts.webhook_deliveries[delivery.provider] += 1
        self.counts.webhook_accepted[delivery.provider] += int(body.get("accepted", 0))
        self.counts.problems.extend(f"{delivery.provider}: {p}" for p in body.get("problems", []))
        self.progress.advance(task, delivery.events)

    def _email_delivery(self, provider: str, events: list[dict[str, Any]]) -> deliveries.Delivery:
        secrets = self.options.webhook_secrets
        if provider == "sendgrid":
            return deliveries.sendgrid_delivery(events, secrets["sendgrid_private_key"],
                                                datetime.now(UTC))
        return deliveries.mandrill_delivery(events, secrets["mandrill_key"],
                                            f"{self._ingestion}/v1/webhooks/mandrill")

    def _can_sign(self, provider: str) -> bool:
        needed = {"sendgrid": "sendgrid_private_key", "mandrill": "mandrill_key",
                  "shopify": "shopify_secret"}[provider]
        return bool(self.options.webhook_secrets.get(needed))

    async def _send_all(self, api_events: list[dict[str, Any]],
                        email_events: dict[str, list[dict[str, Any]]],
                        orders: list[tuple[dict[str, Any], float, str]], task: Any) -> None:
        """API batches and provider deliveries, at most `concurrency` requests in flight."""
        jobs: list[Any] = []
        for provider, events in email_events.items():
            if not self._can_sign(provider):
                api_events.extend(events)
                continue
            for chunk in _chunks(events, EMAIL_BATCH):
                jobs.append(("delivery", lambda p=provider, c=list(chunk):
                             self._email_delivery(p, c)))
        if self._can_sign("shopify"):
            secret = self.options.webhook_secrets["shopify_secret"]
            for confirmation, value, currency in orders:
                jobs.append(("delivery", lambda c=confirmation, v=value, cur=currency:
                             deliveries.shopify_delivery(c, v, cur, secret)))
        else:
            api_events.extend(confirmation for confirmation, _, _ in orders)
        jobs.extend(("events", chunk) for chunk in _chunks(api_events, self.options.batch_size))
        queue: asyncio.Queue = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)

        async def worker() -> None:
            while not queue.empty():
                kind, payload = queue.get_nowait()
                if kind == "events":
                    await self._post_events(payload, task)
                else:  # signed when sent: SendGrid's signed timestamp must be fresh
                    await self._deliver(payload(), task)

        await asyncio.gather(*(worker() for _ in range(self.options.concurrency)))

    # --- phases ----------------------------------------------------------------------------

    async def check_services(self) -> None:
        endpoints = self.http.endpoints
        for name, url in (("ingestion", endpoints.ingestion), ("profile", endpoints.profile),
                          ("recommender", endpoints.recommender)):
            await self.http.check_up(name, url)

    def simulate(self, now: datetime) -> None:
        task = self.progress.add_task("simulating customer journeys", total=1)
        simulator = JourneySimulator(seed=self.options.seed,
                                     start=now - timedelta(days=self.options.history_days),
                                     end=now - timedelta(minutes=10))
        self.customers = build_population(
            simulator, self.options.customers, self.catalog, now,
            webhooks_since=now - timedelta(days=self.options.webhook_days))
        self.progress.update(task, completed=1,
                             description=f"simulated {len(self.customers):,} customers")

    async def stream_history(self) -> None:
        total = sum(c.event_count for c in self.customers)
        task = self.progress.add_task("streaming history (API + webhooks)", total=total)
        api_events: list[dict[str, Any]] = []
        email_events: dict[str, list[dict[str, Any]]] = {"sendgrid": [], "mandrill": []}
        orders = []
        for customer in self.customers:
            api_events.extend(customer.api_events)
            email_events[customer.email_provider].extend(customer.email_events)
            orders.extend((o, *order_value(customer, o)) for o in customer.orders)
        await self._send_all(api_events, email_events, orders, task)

    async def _profile_progress(self) -> tuple[int, float]:
        text = await self.http.text(f"{self.http.endpoints.profile.rstrip('/')}/metrics")
        lag = sum(float(v) for topic, v in _LAG.findall(text) if topic == "touchpoints.v1")
        applied = sum(float(v) for v in _APPLIED.findall(text))
        return int(lag), applied

    async def wait_for_profiles(self, label: str, timeout_s: float = 300.0) -> None:
        """Until the profile consumer has applied everything sent (lag 0, nothing moving)."""
        task = self.progress.add_task(f"profiles: {label}", total=None)
        deadline = time.monotonic() + timeout_s
        previous = None
        while time.monotonic() < deadline:
            lag, applied = await self._profile_progress()
            self.progress.update(task, description=f"profiles: {label} "
                                 f"({lag:,} records behind)")
            if lag == 0 and applied == previous:
                self.progress.update(task, total=1, completed=1,
                                     description=f"profiles: {label} (up to date)")
                return
            previous = applied
            await asyncio.sleep(1.0)
        raise DemoError(f"the profile consumer did not catch up within {timeout_s:.0f} s")

    async def _decide(self, customer: DemoCustomer, results: list[Decided],
                      versions: Counter, task: Any) -> None:
        reply = await self.http.send(
            "POST", f"{self.http.endpoints.recommender.rstrip('/')}/v1/recommendations",
            json={"customer_id": customer.customer_id,
                  "context": {"locale": customer.traits.locale}})
        body = reply.json()
        first = body["actions"][0] if body["actions"] else {}
        if body.get("degraded"):
            self.degraded += 1
        results.append(Decided(body["decision_id"], customer.customer_id,
                               first.get("action_id"), first.get("channel"), body["holdout"],
                               datetime.now(UTC)))
        versions[(body["model_version"], body["policy"])] += 1
        self.progress.advance(task)

    def cohorts(self) -> tuple[list[DemoCustomer], list[DemoCustomer]]:
        """(learning, evaluation): the promoted model meets customers no round has contacted,
        so cooldowns and caps from earlier rounds do not tie its hands; every tenth customer
        by index, `evaluation_share` of them, is kept back for it."""
        kept = round(self.options.evaluation_share * 10)
        learning = [c for c in self.customers if c.index % 10 >= kept]
        evaluation = [c for c in self.customers if c.index % 10 < kept]
        return learning, evaluation

    async def decision_round(self, label: str, customers: list[DemoCustomer]) -> RoundResult:
        started = time.monotonic()
        task = self.progress.add_task(f"{label}: recommendations", total=len(customers))
        decided: list[Decided] = []
        versions: Counter = Counter()
        degraded_before = self.degraded
        queue: asyncio.Queue = asyncio.Queue()
        for customer in customers:
            queue.put_nowait(customer)

        async def worker() -> None:
            while not queue.empty():
                await self._decide(queue.get_nowait(), decided, versions, task)

        await asyncio.gather(*(worker() for _ in range(self.options.concurrency)))
        result = await self._answer(label, decided)
        result.versions = versions
        result.degraded = self.degraded - degraded_before
        result.seconds = time.monotonic() - started
        return result

    async def _answer(self, label: str, decided: list[Decided]) -> RoundResult:
        """The customers' answers (hidden response model), sent like any other touchpoints."""
        by_id = {c.customer_id: c for c in self.customers}
        result = RoundResult(label)
        api_events: list[dict[str, Any]] = []
        email_events: dict[str, list[dict[str, Any]]] = {"sendgrid": [], "mandrill": []}
        for decision in decided:
            customer = by_id[decision.customer_id]
            events = respond(decision, customer.traits, self.rng,
                             f"answer-{decision.decision_id[:20]}")
            result.record(decision, events)
            for event in events:
                if event["touchpoint"] in PROVIDER_EMAIL_TOUCHPOINTS:
                    email_events[customer.email_provider].append(event)
                else:
                    api_events.append(event)
            customer.traits = _after(customer.traits, events)
        total = len(api_events) + sum(len(v) for v in email_events.values())
        task = self.progress.add_task(f"{label}: customers' answers", total=max(total, 1))
        await self._send_all(api_events, email_events, [], task)
        return result

    def train(self) -> TrainingResult:
        task = self.progress.add_task("training", total=None)
        # One BLAS thread: next to the running services, more threads only fight over the cores
        # (measured: a fit ten times slower on a busy two-core machine).
        with threadpool_limits(limits=1), warnings.catch_warnings():
            # The trainer's own cross-validation reports non-converged candidates; not news here.
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = train_and_promote(
                self.training_settings, self.options.seed,
                lambda message: self.progress.update(task, description=f"training: {message}"))
        verdict = "promoted" if result.promoted else f"not promoted ({result.refusal})"
        self.progress.update(task, total=1, completed=1,
                             description=f"training: {result.version} {verdict}")
        return result

    async def wait_for_model(self, version: str) -> bool:
        task = self.progress.add_task(f"waiting for the recommender to serve {version}",
                                      total=None)
        url = f"{self.http.endpoints.recommender.rstrip('/')}/v1/models/current"
        deadline = time.monotonic() + self.options.model_wait_s
        while time.monotonic() < deadline:
            current = (await self.http.send("GET", url)).json()
            if current.get("model_version") == version:
                self.progress.update(task, total=1, completed=1,
                                     description=f"recommender serves {version}")
                return True
            await asyncio.sleep(1.0)
        return False

    async def run(self) -> Summary:
        """Every phase after `check_services` (which the caller runs first, before any
        progress bar, so a stopped service is reported on a clean screen)."""
        started = time.monotonic()
        self.simulate(datetime.now(UTC))
        phases = phase_counts(self.customers)
        await self.stream_history()
        await self.wait_for_profiles("history")
        learning, evaluation = self.cohorts()
        rounds = []
        audience = learning
        for number in range(1, self.options.rounds + 1):
            label = f"round {number}" if number == 1 else f"round {number} (follow-ups)"
            result = await self.decision_round(label, audience)
            rounds.append(result)
            await self.wait_for_profiles(f"answers of round {number}")
            # A business decides again for customers who just did something; the others
            # would only meet the cooldowns of what they were sent.
            audience = [c for c in learning if c.customer_id in result.active]
            if not audience:
                break
        trained = await asyncio.to_thread(self.train)
        served = trained.promoted and await self.wait_for_model(trained.version)
        label = "promoted model" if served else "final round"
        rounds.append(await self.decision_round(label, evaluation))
        await self.wait_for_profiles("answers of the final round")
        return Summary(
            customers=len(self.customers), phases=phases,
            api_events=self.counts.api_events, api_accepted=self.counts.api_accepted,
            webhook_events=dict(self.counts.webhook_events),
            webhook_accepted=dict(self.counts.webhook_accepted),
            webhook_deliveries=dict(self.counts.webhook_deliveries),
            rounds=rounds, training=trained, model_served=bool(served),
            problems=self.counts.problems, dashboard=self.http.endpoints.dashboard,
            requests=self.http.requests, retries=self.http.retries, degraded=self.degraded,
            seconds=time.monotonic() - started,
        )


def _after(traits: Any, events: list[dict[str, Any]]) -> Any:
    """The traits the next round sees, after the customer's answers."""
    touchpoints = {e["touchpoint"] for e in events}
    if "support.resolved" in touchpoints:
        traits = replace(traits, bad_experience_open=False)
    purchases = sum(e["touchpoint"] == "web.purchase" for e in events)
    if purchases:
        traits = replace(traits, orders=traits.orders + purchases, phase="post_purchase")
    if "email.click" in touchpoints or "email.open" in touchpoints:
        traits = replace(traits, email_engaged=True)
    return traits

"""What every fault scenario needs: a client that records each answer, the profile consumer in
a process of its own, the profiles read back, and a wait for the consumer to settle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.devstack.lifetime import die_with_parent
from services.profiles.app import create_app as profile_app
from services.reliability.reconcile import Outcome, ProfileCount
from shared.settings import Settings
from tests.servers import serving

ROOT = Path(__file__).resolve().parents[2]
TIMELINE_ROOM = 90  # events per customer, below the timeline length, so every id is visible

CONSUMER_ENV = (
    "kafka_bootstrap_servers", "redis_url", "redis_namespace", "topic_touchpoints",
    "topic_dead_letter", "topic_decisions", "kafka_consumer_group", "profile_consumer_batch_size",
    "kafka_send_timeout_s", "kafka_request_timeout_ms",
)


def event(event_id: str, customer_id: str) -> dict:
    """A valid event whose id is visible in the profile timeline (as its campaign)."""
    return {"event_id": event_id, "customer_id": customer_id, "touchpoint": "web.visit",
            "occurred_at": datetime.now(UTC).isoformat(), "context": {"campaign": event_id}}


class EventSender:
    """Posts events to the ingestion service and keeps every answer as an `Outcome`."""

    def __init__(self, base_url: str, api_key: str, prefix: str, customers: int,
                 per_request: int = 1, timeout_s: float = 15.0):
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {api_key}"})
        self.prefix, self.customers, self.per_request = prefix, customers, per_request
        self.capacity = customers * TIMELINE_ROOM
        self.outcomes: list[Outcome] = []
        self.next_index = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def customer(self, index: int) -> str:
        return f"{self.prefix}-c{index % self.customers:03d}"

    def post(self, events: list[dict]) -> None:
        try:
            response = self.client.post("/v1/events", json=events[0] if len(events) == 1
                                        else {"events": events})
            status, retry_after, error = (response.status_code,
                                          response.headers.get("retry-after"), None)
        except httpx.HTTPError as exc:
            status, retry_after, error = None, None, type(exc).__name__
        with self._lock:
            self.outcomes.extend(Outcome(e["event_id"], e["customer_id"], status, retry_after,
                                         error) for e in events)

    def send_next(self) -> bool:
        """Sends the next request's worth of new events; False once the capacity is used."""
        with self._lock:
            if self.next_index >= self.capacity:
                return False
            batch = []
            for _ in range(min(self.per_request, self.capacity - self.next_index)):
                i = self.next_index
                batch.append(event(f"{self.prefix}-{i:06d}", self.customer(i)))
                self.next_index += 1
        self.post(batch)
        return True

    def start(self, threads: int = 1, pause_s: float = 0.0) -> EventSender:
        def loop() -> None:
            while not self._stop.is_set() and self.send_next():
                if pause_s:
                    time.sleep(pause_s)

        self._threads = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def retry_unacknowledged(self, rounds: int = 3) -> int:
        """Sends every event not yet answered 202 again, as a client honouring Retry-After
        would; returns how many were retried."""
        retried = 0
        for _ in range(rounds):
            final = self.final_outcomes()
            todo = [o for o in final.values() if o.status != 202]
            if not todo:
                break
            for outcome in todo:
                self.post([event(outcome.event_id, outcome.customer_id)])
            retried += len(todo)
        return retried

    def final_outcomes(self) -> dict[str, Outcome]:
        with self._lock:
            return {o.event_id: o for o in self.outcomes}

    def acknowledged(self) -> set[str]:
        with self._lock:
            return {o.event_id for o in self.outcomes if o.status == 202}

    def customers_used(self) -> list[str]:
        return sorted({self.customer(i) for i in range(min(self.next_index, self.customers))})

    def close(self) -> None:
        self.stop()
        self.client.close()


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "TOPIC_"))}
    for name in CONSUMER_ENV:
        env[name.upper()] = str(getattr(settings, name))
    env["PYTHONPATH"] = str(ROOT)
    env["LOG_LEVEL"] = "WARNING"
    return env


class ConsumerProcess:
    """The profile consumer as a child process that can be killed without warning."""

    def __init__(self, settings: Settings, log_path: Path | None = None):
        self.settings = settings
        self.process: subprocess.Popen[str] | None = None
        self.kills = 0
        self.log_path = log_path or Path(tempfile.mkdtemp()) / "profile-consumer.log"

    def start(self) -> ConsumerProcess:
        """`python -m services.profiles consume`, the service's own consumer-only entry point."""
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.profiles", "consume"], cwd=ROOT,
                env=settings_env(self.settings), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent)
        time.sleep(0.5)
        if self.process.poll() is not None:
            raise RuntimeError(f"the profile consumer exited with {self.process.returncode}")
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the consumer's own log, for a failure message."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no offset commit, no leave-group, nothing flushed."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.kills += 1

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ConsumerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ProfileReadBack:
    """Reads customers' profiles through the profile API (`GET /v1/profiles/{id}` and its
    timeline): the event counter and the event ids the timeline shows."""

    def __init__(self, base_url: str, api_key: str):
        self.client = httpx.Client(base_url=base_url, timeout=10,
                                   headers={"Authorization": f"Bearer {api_key}"})

    def read(self, customers: Iterable[str]) -> dict[str, ProfileCount]:
        profiles = {}
        for customer in customers:
            profile = self.client.get(f"/v1/profiles/{customer}")
            if profile.status_code == 404:
                continue
            profile.raise_for_status()
            timeline = self.client.get(f"/v1/profiles/{customer}/timeline",
                                       params={"limit": 1000})
            timeline.raise_for_status()
            ids = tuple(item.get("context", {}).get("campaign", "?")
                        for item in timeline.json()["items"])
            counted = int(profile.json()["activity"]["events"])
            profiles[customer] = ProfileCount(customer, counted, ids)
        return profiles

    def counted(self, customers: Iterable[str]) -> int:
        return sum(p.events_counted for p in self.read(customers).values())

    def close(self) -> None:
        self.client.close()


@contextmanager
def profile_api(settings: Settings, api_key: str) -> Iterator[ProfileReadBack]:
    """The profile service's API (its consumers off: the consumer under test runs apart)."""
    with serving(profile_app(settings, run_consumers=False)) as base:
        reader = ProfileReadBack(base, api_key)
        try:
            yield reader
        finally:
            reader.close()


def wait_until_settled(read: Callable[[], dict[str, ProfileCount]], expected: set[str],
                       timeout_s: float = 60.0, quiet_s: float = 2.0) -> dict[str, ProfileCount]:
    """Profiles once every expected id is in and nothing changed for `quiet_s` (or timeout)."""
    deadline = time.monotonic() + timeout_s
    last_total, quiet_since = -1, time.monotonic()
    profiles = read()
    while time.monotonic() < deadline:
        profiles = read()
        present = {e for p in profiles.values() for e in p.event_ids}
        total = sum(p.events_counted for p in profiles.values())
        if total != last_total:
            last_total, quiet_since = total, time.monotonic()
        if expected <= present and time.monotonic() - quiet_since >= quiet_s:
            return profiles
        time.sleep(0.25)
    return profiles

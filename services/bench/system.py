"""The system under test: Redis, the broker and the services as processes on this machine.

Uses REDIS_URL / KAFKA_BOOTSTRAP_SERVERS when set; otherwise starts a fresh embedded Redis
(no persistence: every run starts empty) and an in-memory 3-broker Kafka-protocol cluster. The
services run as subprocesses on free ports, exactly as `touchpoint run` starts them, with their
logs in files so that the benchmark output stays readable.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.devstack.broker import EmbeddedBroker
from services.devstack.lifetime import die_with_parent
from services.devstack.redis import EmbeddedRedis, free_port
from services.devstack.runner import SERVICES, Stack, _wait_healthy, development_key
from shared.settings import Settings

WEBHOOK_SECRET = "bench-webhook-secret"


@dataclass
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class SystemUnderTest:
    stack: Stack
    settings: Settings
    log_dir: Path
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    embedded_redis: bool = False
    embedded_broker: bool = False

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def metric_total(self, service: str, name: str) -> float | None:
        """The sum over all labels of a counter on a service's `/metrics` (worker processes
        included); None when the service is not running or does not answer."""
        endpoint = self.endpoints.get(service)
        if endpoint is None:
            return None
        try:
            text = httpx.get(f"{endpoint.url}/metrics", headers=self.auth_headers,
                             timeout=10).text
        except httpx.HTTPError:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith((f"{name} ", f"{name}{{")))

    def pid(self, name: str) -> int | None:
        process = self.stack.processes.get(name)
        return process.pid if process and process.poll() is None else None

    def pids(self) -> dict[str, int]:
        found = {name: p.pid for name, p in self.stack.processes.items() if p.poll() is None}
        if self.stack.redis and self.stack.redis.process:
            found["redis"] = self.stack.redis.process.pid
        if self.stack.broker and self.stack.broker.process:
            found["broker"] = self.stack.broker.pid
        return found

    def start_process(self, name: str, module: str, port: int, env: dict[str, str],
                      timeout_s: float = 60) -> Endpoint:
        """Starts `python -m module` with its log in the log directory; waits for /healthz."""
        log = (self.log_dir / f"{name}.log").open("a")
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", module], env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        self.stack.processes[name] = process
        if not _wait_healthy(port, process, timeout_s):
            raise RuntimeError(f"{name} did not become healthy on port {port}; "
                               f"see {self.log_dir / f'{name}.log'}")
        endpoint = Endpoint("127.0.0.1", port)
        self.endpoints[name] = endpoint
        return endpoint

    def start_service(self, name: str, timeout_s: float = 60) -> Endpoint | None:
        """Starts a service that `start_system` was told to defer; None if not in this build."""
        for service, module, setting in SERVICES:
            if service != name:
                continue
            if importlib.util.find_spec(f"{module}.__main__") is None:
                self.unavailable[name] = "not in this build"
                return None
            port = getattr(self.settings, setting)
            try:
                endpoint = self.start_process(name, module, port, self.stack.env, timeout_s)
            except RuntimeError as exc:
                self.unavailable[name] = str(exc)
                return None
            self.unavailable.pop(name, None)
            return endpoint
        raise KeyError(name)

    def stop(self) -> None:
        self.stack.stop()


def start_system(data_dir: Path, extra_env: dict[str, str] | None = None,
                 say=print, defer: tuple[str, ...] = ()) -> SystemUnderTest:
    """Starts the dependencies and every service except those in `defer`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = dict(os.environ)
    stack = Stack(env=env)
    system = SystemUnderTest(stack=stack, settings=Settings(), log_dir=log_dir)
    try:
        _start_dependencies(system, env, say)
        env.update(extra_env or {})
        env.setdefault("WEBHOOK_SHOPIFY_SECRET", WEBHOOK_SECRET)
        env.setdefault("LOG_LEVEL", "WARNING")
        # The limiter still runs (its Redis call is part of every request) but never refuses.
        env.setdefault("RATE_LIMIT_PER_S", "1000000")
        env.setdefault("RATE_LIMIT_BURST", "10000000")
        system.api_key = development_key(data_dir)
        if system.api_key:
            env.setdefault("API_KEYS_FILE", str(data_dir / "api-keys.json"))
        ports = {setting: free_port() for _, _, setting in SERVICES}
        env.update({setting.upper(): str(port) for setting, port in ports.items()})
        system.settings = Settings(**{k.lower(): v for k, v in env.items()
                                      if k.lower() in Settings.model_fields})
        for name, _module, setting in SERVICES:
            if name in defer:
                continue
            started = time.monotonic()
            if system.start_service(name) is None:
                say(f"{name}: not available ({system.unavailable[name]})")
                continue
            say(f"{name} ready on port {ports[setting]} in {time.monotonic() - started:.1f} s")
        return system
    except BaseException:
        system.stop()
        raise


def _start_dependencies(system: SystemUnderTest, env: dict[str, str], say) -> None:
    stack = system.stack
    if "REDIS_URL" in os.environ:
        say(f"using Redis at {os.environ['REDIS_URL']}")
        env.setdefault("REDIS_NAMESPACE", f"bench{int(time.time())}")
    else:
        stack.redis = EmbeddedRedis().start()
        env["REDIS_URL"] = stack.redis.url
        system.embedded_redis = True
        say(f"embedded Redis 6.2 on {stack.redis.url} (empty, no persistence)")
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        say(f"using Kafka at {os.environ['KAFKA_BOOTSTRAP_SERVERS']}")
        suffix = f"bench{int(time.time())}"
        env.setdefault("TOPIC_TOUCHPOINTS", f"touchpoints.v1.{suffix}")
        env.setdefault("TOPIC_DEAD_LETTER", f"touchpoints.dlq.v1.{suffix}")
        env.setdefault("TOPIC_DECISIONS", f"decisions.v1.{suffix}")
        env.setdefault("KAFKA_CONSUMER_GROUP", f"profiles-{suffix}")
    else:
        stack.broker = EmbeddedBroker(num_brokers=3).start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = stack.broker.bootstrap_servers
        system.embedded_broker = True
        say(f"embedded Kafka-protocol broker (librdkafka mock, 3 brokers, in memory) on "
            f"{stack.broker.bootstrap_servers}")

"""Starts the whole system on one machine and stops it cleanly on Ctrl-C.

Uses REDIS_URL and KAFKA_BOOTSTRAP_SERVERS when they are set; otherwise starts an embedded Redis
(persisted under the data directory) and an in-memory Kafka-protocol broker.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from services.devstack.broker import EmbeddedBroker
from services.devstack.lifetime import die_with_parent
from services.devstack.redis import EmbeddedRedis, free_port
from services.devstack.webhook_secrets import ensure_webhook_secrets, write_stack_file
from shared.settings import load_settings

COLORS = {"ingestion": "36", "profile": "35", "recommender": "33", "stack": "32"}
SERVICES = (
    ("ingestion", "services.ingestion", "ingestion_port"),
    ("profile", "services.profiles", "profile_port"),
    ("recommender", "services.recommender", "recommender_port"),
)


def say(name: str, line: str) -> None:
    prefix = f"{name:<11}|"
    if sys.stdout.isatty():
        prefix = f"\033[{COLORS.get(name, '0')}m{prefix}\033[0m"
    print(f"{prefix} {line}", flush=True)


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        say(name, line.rstrip())


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_healthy(port: int, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


@dataclass
class Stack:
    env: dict[str, str]
    redis: EmbeddedRedis | None = None
    broker: EmbeddedBroker | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                say("stack", f"{name} did not stop in 15 s; killing it")
                process.kill()
        if self.broker:
            self.broker.stop()
        if self.redis:
            self.redis.stop()


def start_dependencies(stack: Stack, data_dir: Path) -> None:
    if "REDIS_URL" not in os.environ:
        port = 6379 if _port_is_free(6379) else free_port()
        stack.redis = EmbeddedRedis(port=port, data_dir=data_dir / "redis").start()
        stack.env["REDIS_URL"] = stack.redis.url
        say("stack", f"embedded Redis on {stack.redis.url} (data in {data_dir / 'redis'})")
    else:
        say("stack", f"using Redis at {os.environ['REDIS_URL']}")
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        stack.broker = EmbeddedBroker(num_brokers=3).start()
        stack.env["KAFKA_BOOTSTRAP_SERVERS"] = stack.broker.bootstrap_servers
        say("stack", f"embedded Kafka-protocol broker on {stack.broker.bootstrap_servers}")
        say("stack", "  note: the embedded broker keeps messages IN MEMORY ONLY; they are lost "
                     "when it stops. Set KAFKA_BOOTSTRAP_SERVERS to use a real Kafka.")
    else:
        say("stack", f"using Kafka at {os.environ['KAFKA_BOOTSTRAP_SERVERS']}")


def development_key(data_dir: Path) -> str | None:
    """Creates (once) and returns a development API key with every scope, when auth exists."""
    try:
        from shared.api_keys import ensure_dev_key
    except ImportError:
        return None
    return ensure_dev_key(data_dir)


def run_stack() -> int:
    settings = load_settings()
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(env=dict(os.environ))
    stack.env.setdefault("OUTBOUND_ENABLED", "true")
    stopping = threading.Event()

    def _interrupt(*_: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        start_dependencies(stack, data_dir)
        key = development_key(data_dir)
        if key:
            stack.env.setdefault("API_KEYS_FILE", str(data_dir / "api-keys.json"))
        # Webhook secrets the stack accepts, and the broker address, for local senders (demo).
        signing = ensure_webhook_secrets(data_dir, stack.env)
        write_stack_file(data_dir, stack.env["KAFKA_BOOTSTRAP_SERVERS"], signing)
        for name, module, port_setting in SERVICES:
            if importlib.util.find_spec(f"{module}.__main__") is None:
                say("stack", f"{name}: not available in this build, skipped")
                continue
            port = getattr(settings, port_setting)
            if not _port_is_free(port):
                say("stack", f"port {port} for {name} is already in use; stop what uses it")
                return 1
            process = subprocess.Popen(
                [sys.executable, "-u", "-m", module], env=stack.env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent,
            )
            stack.processes[name] = process
            threading.Thread(target=_pump, args=(name, process.stdout), daemon=True).start()
        for name, _module, port_setting in SERVICES:
            if name in stack.processes:
                port = getattr(settings, port_setting)
                if not _wait_healthy(port, stack.processes[name], 60):
                    say("stack", f"{name} did not become healthy on port {port}; stopping")
                    return 1
                say("stack", f"{name} ready on http://{settings.host}:{port} "
                             f"(docs: http://{settings.host}:{port}/docs)")
        if key:
            say("stack", f"development API key (every scope): {key}")
            say("stack", f"  also written to {data_dir / 'dev-api-key'}")
        say("stack", "all services up. Press Ctrl-C to stop.")
        while not stopping.is_set():
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    say("stack", f"{name} exited with code {process.returncode}; stopping")
                    return 1
            stopping.wait(0.5)
        say("stack", "stopping...")
        return 0
    finally:
        stack.stop()
        say("stack", "stopped.")

"""The profile service's consumers in processes of their own, beside the API process.

In one process the API, the profile consumer and the analytics consumer take turns holding
the GIL: an event waits behind profile reads, and a profile read waits behind a batch. With
`PROFILE_CONSUMER_PROCESSES` = N the service starts N processes per consumer group and
restarts one that exits, with backoff. The children write their Prometheus metrics to files in
a folder that the API's `/metrics` adds to its own.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry, Counter, values
from prometheus_client.multiprocess import mark_process_dead

from services.devstack.lifetime import die_with_parent, name_process
from services.web.observability import MULTIPROCESS_ENV
from services.web.serve import configure_service_logging
from shared.settings import Settings
from shared.touchpoints import load_catalog

log = logging.getLogger(__name__)

CONSUMERS = ("profiles", "analytics")
EXIT_TOO_MANY_DEAD_LETTERS = 3
RESTART_FIRST_PAUSE_S = 1.0
RESTART_MAX_PAUSE_S = 30.0
HEALTHY_RUN_S = 60.0  # a child that ran this long restarts after the first pause again
WATCH_EVERY_S = 0.5
STOP_TIMEOUT_S = 10.0  # inside the 15 s `touchpoint run` gives a service to stop
STOP_REPORT_AFTER_S = 7.0  # a child still stopping by then logs where its threads are


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5)


def run_profile_consumer(settings: Settings, stop: threading.Event) -> int:
    """The profile consumer until `stop` is set; returns the process exit code."""
    from services.profiles.app import build_store
    from services.profiles.consumer import (
        TooManyDeadLetters,
        build_consumer,
        use_quick_thread_switches,
    )
    from services.profiles.metrics import ProfileMetrics
    from services.streaming.publisher import KafkaPublisher

    use_quick_thread_switches()  # this process runs nothing else
    client = _redis(settings)
    publisher = KafkaPublisher(settings)
    try:
        consumer = build_consumer(settings, build_store(settings, client),
                                  load_catalog(settings.touchpoint_catalog_file), publisher,
                                  ProfileMetrics(), stop)
        consumer.run(stop)
    except TooManyDeadLetters as exc:
        log.error("%s", exc)
        return EXIT_TOO_MANY_DEAD_LETTERS
    finally:
        publisher.close()
        client.close()
    return 0


def run_analytics_consumer(settings: Settings, stop: threading.Event) -> int:
    """The analytics consumer until `stop` is set; returns the process exit code."""
    from services.profiles.analytics.consumer import build_consumer

    client = _redis(settings)
    try:
        build_consumer(settings, client).run(stop)
    finally:
        client.close()
    return 0


RUNNERS = {"profiles": run_profile_consumer, "analytics": run_analytics_consumer}


def consumer_process_main(kind: str, settings: Settings, metrics_dir: str) -> None:
    """Entry point of one consumer process."""
    die_with_parent()
    name_process(f"tp-{kind}")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    values.ValueClass = values.get_value_class()  # metrics made from here on go to files
    configure_service_logging(settings)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops us
    # SIGTERM is taken by `sigtimedwait` below, not by a handler: a Python handler runs only
    # once the main thread is back in Python code, and the consumer may sit in a blocking
    # call. Blocked before any thread starts, so that every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    if kind == "analytics" and settings.analytics_consumer_nice:
        os.nice(settings.analytics_consumer_nice)  # per thread on Linux: before any starts
    stop = threading.Event()
    exit_codes: list[int] = []
    worker = threading.Thread(target=lambda: exit_codes.append(RUNNERS[kind](settings, stop)),
                              name=f"{kind}-consumer")
    worker.start()
    while worker.is_alive():
        if signal.sigtimedwait({signal.SIGTERM}, WATCH_EVERY_S) is not None:
            stop.set()
            break
    worker.join(STOP_REPORT_AFTER_S)
    if worker.is_alive():
        log.error("the %s consumer has not stopped %.0f s after SIGTERM; its threads:",
                  kind, STOP_REPORT_AFTER_S)
        faulthandler.dump_traceback(all_threads=True)
        worker.join()
    sys.exit(exit_codes[0] if exit_codes else 1)


@dataclass
class ConsumerSlot:
    """One consumer process the service keeps running."""

    kind: str
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    pause_s: float = RESTART_FIRST_PAUSE_S
    last_exit: int | None = None
    restarts: int = 0

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index + 1}"

    def is_alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def describe(self) -> str:
        if self.is_alive():
            return "running"
        exit_text = "not started yet" if self.last_exit is None else \
            f"exited with code {self.last_exit}"
        return f"{exit_text}; {self.restarts} restarts"


class ConsumerProcesses:
    """Starts, watches and stops the consumer processes of one profile service."""

    def __init__(self, settings: Settings, registry: CollectorRegistry):
        self.settings = settings
        self.slots = [ConsumerSlot(kind, index) for kind in CONSUMERS
                      for index in range(settings.profile_consumer_processes)]
        shared_dir = os.environ.get(MULTIPROCESS_ENV)
        self._owns_dir = not shared_dir
        self.metrics_dir = Path(shared_dir or tempfile.mkdtemp(prefix="touchpoint-consumers-"))
        self.restart_counter = Counter("touchpoint_profile_consumer_restarts_total",
                                       "Consumer processes restarted after they exited.",
                                       ["consumer"], registry=registry)
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="consumer-processes",
                                         daemon=True)

    def start(self) -> None:
        self._watcher.start()

    def _watch(self) -> None:
        # Children are started from this thread, which lives as long as the service: a child
        # gets SIGTERM when the thread that started it ends.
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    break
                for slot in self.slots:
                    self._tend(slot, time.monotonic())
            self._stopping.wait(WATCH_EVERY_S)

    def _tend(self, slot: ConsumerSlot, now: float) -> None:
        process = slot.process
        if process is not None and process.is_alive():
            if now - slot.started_at > HEALTHY_RUN_S:
                slot.pause_s = RESTART_FIRST_PAUSE_S
            return
        if process is not None:
            slot.last_exit = process.exitcode
            slot.process = None
            slot.restarts += 1
            slot.next_start = now + slot.pause_s
            log.error("the %s consumer process (pid %s) exited with code %s; restarting in "
                      "%.0f s", slot.name, process.pid, process.exitcode, slot.pause_s)
            slot.pause_s = min(slot.pause_s * 2, RESTART_MAX_PAUSE_S)
            mark_process_dead(process.pid, str(self.metrics_dir))
            self.restart_counter.labels(slot.kind).inc()
            return
        if now >= slot.next_start:
            slot.process = self._context.Process(
                target=consumer_process_main, name=f"touchpoint-{slot.name}-consumer",
                args=(slot.kind, self.settings, str(self.metrics_dir)), daemon=True)
            slot.process.start()
            slot.started_at = now

    def not_running(self) -> list[str]:
        """`name: state` of each slot whose process is not running."""
        return [f"{slot.name}: {slot.describe()}" for slot in self.slots if not slot.is_alive()]

    def stop(self) -> None:
        """SIGTERM to every child (each commits what it has and leaves its group), then waits;
        SIGKILL for any still running after STOP_TIMEOUT_S."""
        with self._lock:
            self._stopping.set()
        processes = [slot.process for slot in self.slots if slot.process is not None]
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("consumer process %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        if self._watcher.is_alive():
            self._watcher.join(timeout=STOP_TIMEOUT_S)
        if self._owns_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

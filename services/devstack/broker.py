"""An in-memory Kafka-protocol broker for local use: the librdkafka mock cluster.

It speaks the Kafka wire protocol over TCP, but keeps every message in memory: stopping it loses
the data. Run as `python -m services.devstack.broker`; the first line printed is the bootstrap
server list. Real deployments use Apache Kafka (see docker-compose.yml).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from services.devstack.lifetime import die_with_parent, stop_process


def serve(num_brokers: int = 3) -> None:
    from confluent_kafka import Producer

    handle = Producer({"test.mock.num.brokers": num_brokers, "bootstrap.servers": "unused",
                       "log_level": 3})
    metadata = handle.list_topics(timeout=10)
    servers = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    print(servers, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


class EmbeddedBroker:
    """The mock cluster in a child process, with the controls fault tests need."""

    def __init__(self, num_brokers: int = 3):
        self.num_brokers = num_brokers
        self.process: subprocess.Popen[str] | None = None
        self.bootstrap_servers = ""

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.devstack.broker", str(self.num_brokers)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        line = self.process.stdout.readline().strip() if self.process.stdout else ""
        if not line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError("the embedded Kafka-protocol broker did not start")
        self.bootstrap_servers = line
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pause(self) -> None:
        """Hang every broker (SIGSTOP): requests time out, data is kept."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        stop_process(self.process)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

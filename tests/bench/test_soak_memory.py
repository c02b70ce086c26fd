"""The soak's memory samples: a service counts with every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from services.bench.procfs import process_tree, rss_mib, tree_rss_mib
from services.bench.soak import growth

PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_service_s_memory_includes_the_processes_it_started():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 10
        while child not in process_tree(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(process_tree(parent.pid)) == sorted([parent.pid, child])
        assert process_tree(child) == [child]
        own, with_child = rss_mib(parent.pid), tree_rss_mib(parent.pid)
        assert own is not None and with_child is not None
        assert with_child >= own + rss_mib(child) - 0.2  # rounded per process
        assert with_child > own
    finally:
        os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()
    assert tree_rss_mib(parent.pid) is None


def test_growth_is_measured_from_the_end_of_the_first_minute():
    samples = [{"t_s": t, "rss_mib": {"profile": mib}}
               for t, mib in [(10, 100.0), (60, 150.0), (120, 155.0), (300, 162.5)]]
    assert growth(samples, "profile") == 12.5
    assert growth(samples[:2], "profile") is None

"""The benchmark reads counters from a service's /metrics over HTTP."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from services.bench.system import Endpoint, SystemUnderTest

METRICS = b"""# HELP touchpoint_recommender_fallbacks_total Decisions answered by the fallback.
# TYPE touchpoint_recommender_fallbacks_total counter
touchpoint_recommender_fallbacks_total{reason="profile_unavailable"} 12.0
touchpoint_recommender_fallbacks_total{reason="model_unavailable"} 3.0
touchpoint_recommender_fallbacks_created{reason="profile_unavailable"} 1.7e+09
touchpoint_recommender_fallbacks_total_other 99.0
touchpoint_rate_limit_bypassed_total 4.0
"""


class MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, *args) -> None:
        pass


def test_a_counter_is_summed_over_its_labels_and_nothing_else():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        system = SystemUnderTest(stack=None, settings=None, log_dir=None,  # type: ignore[arg-type]
                                 endpoints={"recommender": Endpoint(*server.server_address)})
        assert system.metric_total("recommender",
                                   "touchpoint_recommender_fallbacks_total") == 15.0
        assert system.metric_total("recommender", "touchpoint_rate_limit_bypassed_total") == 4.0
        assert system.metric_total("recommender", "touchpoint_absent_total") == 0.0
        assert system.metric_total("ingestion", "touchpoint_rate_limit_bypassed_total") is None
    finally:
        server.shutdown()
        server.server_close()
    assert system.metric_total("recommender", "touchpoint_rate_limit_bypassed_total") is None

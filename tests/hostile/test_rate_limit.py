"""Per-API-key token buckets in the real Redis: exact refill, atomic under concurrency, 429s."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.devstack.redis import EmbeddedRedis
from services.web.errors import install_error_handlers
from services.web.rate_limit import TokenBucket, caller_of, install_rate_limit
from shared.settings import Settings


def bucket(redis_client, test_id, rate=1.0, burst=3) -> TokenBucket:
    return TokenBucket(redis_client, f"t{test_id}", rate_per_s=rate, burst=burst)


def test_bucket_allows_burst_then_refills_at_rate(redis_client, test_id):
    limiter = bucket(redis_client, test_id, rate=2.0, burst=3)
    t0 = 1_000_000
    taken = [limiter.take("k:a", now_ms=t0) for _ in range(4)]
    assert [d.allowed for d in taken] == [True, True, True, False]
    assert [d.remaining for d in taken[:3]] == [2, 1, 0]
    assert taken[3].retry_after_s == 1  # 0.5 s until the next token, rounded up
    assert not limiter.take("k:a", now_ms=t0 + 400).allowed
    assert limiter.take("k:a", now_ms=t0 + 500).allowed
    # a long pause refills to the burst size, never beyond
    later = [limiter.take("k:a", now_ms=t0 + 3_600_000) for _ in range(4)]
    assert [d.allowed for d in later] == [True, True, True, False]


def test_buckets_are_per_caller(redis_client, test_id):
    limiter = bucket(redis_client, test_id, burst=1)
    assert limiter.take("k:a", now_ms=0).allowed
    assert not limiter.take("k:a", now_ms=0).allowed
    assert limiter.take("k:b", now_ms=0).allowed


def test_slow_refill_gives_retry_after_in_whole_seconds(redis_client, test_id):
    limiter = bucket(redis_client, test_id, rate=0.1, burst=1)
    assert limiter.take("k:a", now_ms=0).allowed
    assert limiter.take("k:a", now_ms=1_000).retry_after_s == 9


def test_concurrent_takes_never_overdraw(redis_server, test_id):
    pool = redis.ConnectionPool.from_url(redis_server.url, max_connections=32)
    limiter = TokenBucket(redis.Redis(connection_pool=pool), f"t{test_id}", 0.001, 25)
    with ThreadPoolExecutor(16) as workers:
        decisions = list(workers.map(lambda _: limiter.take("k:crowd"), range(200)))
    assert sum(d.allowed for d in decisions) == 25
    pool.disconnect()


def test_bucket_key_expires_once_full_again(redis_client, test_id):
    limiter = bucket(redis_client, test_id, rate=10.0, burst=5)
    limiter.take("k:a")
    ttl_ms = redis_client.pttl(f"t{test_id}:ratelimit:{{k:a}}")
    assert 0 < ttl_ms <= 1_500


@pytest.mark.parametrize(("headers", "client", "expected_prefix"), [
    ([(b"authorization", b"Bearer tp_abc")], ("10.0.0.1", 1), "k:"),
    ([(b"x-api-key", b"tp_abc")], ("10.0.0.1", 1), "k:"),
    ([(b"authorization", b"Basic dXNlcg==")], ("10.0.0.1", 1), "ip:10.0.0.1"),
    ([], ("10.0.0.2", 1), "ip:10.0.0.2"),
])
def test_caller_is_the_hashed_key_or_the_address(headers, client, expected_prefix):
    caller = caller_of({"headers": headers, "client": client})
    assert caller.startswith(expected_prefix)
    assert "tp_abc" not in caller


def test_same_key_by_either_header_shares_a_bucket():
    bearer = caller_of({"headers": [(b"authorization", b"Bearer tp_abc")]})
    header = caller_of({"headers": [(b"x-api-key", b"tp_abc")]})
    assert bearer == header


def small_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_rate_limit(app, settings)

    @app.get("/v1/thing")
    def thing() -> dict:
        return {"ok": True}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    return app


def test_middleware_answers_429_with_retry_after_per_key(redis_server, test_id):
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{test_id}",
                        rate_limit_per_s=0.5, rate_limit_burst=3)
    with TestClient(small_app(settings)) as client:
        alice = {"Authorization": "Bearer tp_alice"}
        statuses = [client.get("/v1/thing", headers=alice).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = client.get("/v1/thing", headers=alice)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "retry after" in refused.json()["error"]["message"]
        # another key is not affected, nor are health checks
        assert client.get("/v1/thing", headers={"X-API-Key": "tp_bob"}).status_code == 200
        assert all(client.get("/healthz", headers=alice).status_code == 200 for _ in range(5))
        ok = client.get("/v1/thing", headers={"X-API-Key": "tp_carol"})
        assert ok.headers["x-ratelimit-remaining"] == "2"


def test_busy_caller_leases_tokens_and_never_exceeds_the_burst(redis_server, test_id,
                                                               monkeypatch):
    from services.web import rate_limit
    from services.web.rate_limit import RateLimitMiddleware

    class Clock:  # 1 ms per reading: the same windows on a fast or a slow machine
        now = 0.0

        def monotonic(self):
            self.now += 0.001
            return self.now

    monkeypatch.setattr(rate_limit, "time", Clock())
    monkeypatch.setattr(rate_limit, "LEASE_WINDOW_S", 0.01)
    calls = []
    original = RateLimitMiddleware._redis_take

    async def counted(self, caller, cost):
        calls.append(cost)
        return await original(self, caller, cost)

    monkeypatch.setattr(RateLimitMiddleware, "_redis_take", counted)
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{test_id}",
                        rate_limit_per_s=0.001, rate_limit_burst=100)
    with TestClient(small_app(settings)) as client:
        alice = {"Authorization": "Bearer tp_alice"}
        statuses = [client.get("/v1/thing", headers=alice).status_code for _ in range(150)]
    assert statuses.count(200) == 100 and statuses[100:] == [429] * 50
    assert 1 < max(calls) <= 10  # leases, never more than a tenth of the burst
    # Refusals ask Redis every time; the 100 allowed requests asked it far less often.
    assert len(calls) - 50 < 40, calls


def test_429_is_documented_in_openapi(redis_server, test_id):
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{test_id}")
    schema = small_app(settings).openapi()
    assert "429" in schema["paths"]["/v1/thing"]["get"]["responses"]
    assert "429" not in schema["paths"]["/healthz"]["get"]["responses"]


def test_disabled_limiter_installs_nothing(redis_server, test_id):
    settings = Settings(redis_url=redis_server.url, redis_namespace=f"t{test_id}",
                        rate_limit_enabled=False, rate_limit_burst=1)
    with TestClient(small_app(settings)) as client:
        assert [client.get("/v1/thing").status_code for _ in range(3)] == [200, 200, 200]


def test_limiter_fails_open_quickly_when_redis_hangs(test_id):
    """A hung Redis must not hang or fail the API: requests pass, bounded by the timeout."""
    with EmbeddedRedis() as own_redis:
        settings = Settings(redis_url=own_redis.url, redis_namespace=f"t{test_id}",
                            rate_limit_burst=1, rate_limit_per_s=0.01,
                            rate_limit_redis_timeout_s=0.2, rate_limit_redis_backoff_s=30)
        with TestClient(small_app(settings)) as client:
            assert client.get("/v1/thing").status_code == 200
            assert client.get("/v1/thing").status_code == 429
            own_redis.pause()
            print("injected: limiter Redis paused (SIGSTOP)")
            try:
                started = time.monotonic()
                statuses = [client.get("/v1/thing").status_code for _ in range(20)]
                elapsed = time.monotonic() - started
            finally:
                own_redis.resume()
            print(f"reconciled: 20 requests during the hang -> {set(statuses)} in {elapsed:.2f} s")
            assert statuses == [200] * 20
            # one timed-out call, then the limiter stops asking Redis for the backoff period
            assert elapsed < 2.0


def test_every_service_limits_per_key(redis_server, kafka_broker, tmp_path):
    """The three apps as built by their factories: the burst passes, the next request gets
    429 with Retry-After, and a refused event is not published."""
    from services.ingestion.app import create_app as ingestion_app
    from services.profiles.app import create_app as profile_app
    from services.recommender.app import create_app as recommender_app
    from services.streaming.publisher import InMemoryPublisher
    from tests.hostile.stack import admin_key, isolated_settings

    key_file, key = admin_key(tmp_path)
    settings = isolated_settings(redis_server.url, kafka_broker.bootstrap_servers,
                                 api_keys_file=key_file, rate_limit_burst=3,
                                 rate_limit_per_s=0.2, model_registry_dir=tmp_path / "models")
    publisher = InMemoryPublisher()
    headers = {"Authorization": f"Bearer {key}"}
    event = {"customer_id": "c-1", "touchpoint": "web.visit",
             "occurred_at": "2026-01-01T00:00:00Z"}
    calls = {
        "ingestion": (ingestion_app(settings, publisher=publisher),
                      lambda c: c.get("/v1/touchpoints", headers=headers)),
        "profile": (profile_app(settings, run_consumers=False),
                    lambda c: c.get("/v1/profiles/c-404", headers=headers)),
        "recommender": (recommender_app(settings),
                        lambda c: c.post("/v1/recommendations", headers=headers,
                                         json={"customer_id": "c-1"})),
    }
    for name, (app, call) in calls.items():
        with TestClient(app) as client:
            statuses = [call(client).status_code for _ in range(3)]
            assert 429 not in statuses, (name, statuses)
            refused = call(client)
            assert refused.status_code == 429, (name, refused.text)
            assert int(refused.headers["retry-after"]) >= 1
            if name == "ingestion":
                assert client.post("/v1/events", json=event,
                                   headers=headers).status_code == 429
    assert publisher.topics == {}

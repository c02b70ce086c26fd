"""Schemathesis against the OpenAPI document of each service, served for real by uvicorn.

Every generated request (schema-valid and schema-invalid data, a bounded number per operation)
must get an answer that is not a server error and that matches the schema the service itself
publishes for that status. All operations run; failures are collected and reported together,
each with a curl command that reproduces it.
"""

from __future__ import annotations

import collections
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, response_schema_conformance

from tests.hostile.stack import admin_key, build_app, isolated_settings, webhook_secrets
from tests.servers import serving

EXAMPLES_PER_OPERATION_AND_MODE = 25
per_operation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
CHECKS = [response_schema_conformance, content_type_conformance]


def server_error(operation, response) -> str | None:
    """Any 5xx except a 503 that the operation documents and that carries Retry-After."""
    if response.status_code < 500:
        return None
    documented = str(response.status_code) in operation.definition.raw.get("responses", {})
    if response.status_code == 503 and documented and response.headers.get("retry-after"):
        return None
    return (f"server error {response.status_code} (documented: {documented}, Retry-After: "
            f"{response.headers.get('retry-after')!r}): {response.text[:300]}")


def exercise(operation, mode, base: str, key: str, seen: collections.Counter) -> str | None:
    """Runs the generated cases of one operation; the first failure as text, or None."""
    failure: list[str] = []

    @settings(max_examples=EXAMPLES_PER_OPERATION_AND_MODE, deadline=None, database=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        if failure:
            return
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {key}"},
                             timeout=15)
        seen[response.status_code] += 1
        per_operation[f"{operation.method.upper()} {operation.path} {mode.value}"][
            response.status_code] += 1
        problem = server_error(operation, response)
        try:
            if problem:
                raise AssertionError(problem)
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # a group of check failures
            failure.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                           f"{exc}\n  reproduce: {case.as_curl_command()}")

    try:
        run()
    except Unsatisfiable:  # e.g. no invalid request exists for an operation without inputs
        return None
    return failure[0] if failure else None


@pytest.mark.parametrize("service", ["ingestion", "profile", "recommender"])
def test_no_server_error_and_no_response_outside_the_schema(
    service, tmp_path, redis_server, kafka_broker,
):
    key_file, key = admin_key(tmp_path)
    # Generous limits: this suite looks for crashes and schema breaks, not for 429s.
    app_settings = isolated_settings(redis_server.url, kafka_broker.bootstrap_servers,
                                     api_keys_file=key_file, rate_limit_burst=1_000_000,
                                     rate_limit_per_s=1_000_000, **webhook_secrets())
    app = build_app(service, app_settings)
    failures: list[str] = []
    seen: collections.Counter = collections.Counter()
    started = time.monotonic()
    with serving(app) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                problem = exercise(operation, mode, base, key, seen)
                if problem:
                    failures.append(problem)
    print(f"\nschemathesis {service}: {len(operations)} operations, {sum(seen.values())} "
          f"requests in {time.monotonic() - started:.1f} s, statuses {dict(sorted(seen.items()))}"
          f", failures {len(failures)}")
    assert not failures, "\n\n".join(failures)

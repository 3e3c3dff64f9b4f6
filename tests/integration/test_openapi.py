"""Schemathesis fuzzes every operation of our OpenAPI document against the real app and DB."""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from monitor.runtime import build_runtime, migrate
from monitor.settings import Settings
from tests.support.servers import create_database, drop_database
from web import create_app
from web.openapi import spec


def _offline(document: dict[str, Any]) -> dict[str, Any]:
    """Drop `fresh`, so the web process never connects to a fuzzed target URL: the only way
    it talks to a monitored Redis. Nothing else in the API reaches out."""
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"]
                                           if p.get("name") != "fresh"]
    return document


DATABASE = create_database()
migrate(DATABASE)
RUNTIME = build_runtime(Settings(database_url=DATABASE, redis_url="redis://127.0.0.1:1/0",
                                 celery_broker_url="redis://127.0.0.1:6379/10"))
APP = create_app({"RUNTIME": RUNTIME})
schema = schemathesis.openapi.from_dict(_offline(spec()))
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _drop_database() -> Any:
    yield
    RUNTIME.engine.dispose()
    drop_database(DATABASE)


def test_the_document_is_served_and_complete() -> None:
    served = APP.test_client().get("/monitoring/redis/openapi.json").get_json()
    assert served["openapi"].startswith("3.1")
    rules = {str(r) for r in APP.url_map.iter_rules() if str(r).startswith("/monitoring/redis")}
    documented = {"/monitoring/redis" + p.replace("{", "<").replace("}", ">")
                  for p in served["paths"]}
    normalised = {r.replace("<id:", "<") for r in rules}
    assert normalised - {"/monitoring/redis/openapi.json"} <= documented


@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_operation_answers_bad_input_with_a_server_error(case: schemathesis.Case) -> None:
    # Every check but "schema-valid data must be accepted": several rules need more than a
    # JSON schema can say (a clear threshold on the safe side, a project that exists, a
    # duration that is not zero), and those valid-looking requests get a clear 400.
    if case.path.startswith("/health"):
        # 503 is health's documented answer for unhealthy or unknown (for load balancers).
        response = case.call_and_validate(
            excluded_checks=[positive_data_acceptance, not_a_server_error])
        assert response.status_code != 500
        return
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

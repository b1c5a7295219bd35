"""Schemathesis against the app's own /api/openapi.json: no 5xx, every response as
documented, and nothing the schema allows refused. Bounded and deterministic (a fixed
number of examples per operation, derandomized); `scripts/fuzz_api.py` runs longer."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import positive_data_acceptance

from qa.web import create_app
from tests.test_api import tiny_retriever

EXAMPLES = 30


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    retriever = tiny_retriever(tmp_path_factory.mktemp("fuzz"))
    yield create_app(retriever.config, retriever)
    retriever.engine.close()


def operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_api_keeps_its_schema(app):
    failures = []
    ran = 0
    for operation in operations(app):

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def check(case) -> None:
            case.call_and_validate(additional_checks=[positive_data_acceptance])

        try:
            check()
            ran += 1
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert ran >= 8


@pytest.mark.parametrize("path", ["/api/ask?q=%1C", "/api/documents?offset=1000000001"])
def test_the_known_disagreements_are_settled(app, path):
    """Each is refused, and the schema now says so (pattern, maximum)."""
    response = app.test_client().get(path)
    assert response.status_code == 400


def test_an_integral_float_top_k_is_accepted(app):
    response = app.test_client().post("/api/ask", json={"question": "宜宾", "top_k": 3.0})
    assert response.status_code == 200 and len(response.get_json()["passages"]) == 3

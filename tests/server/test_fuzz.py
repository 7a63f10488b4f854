"""A bounded schemathesis run against the server's OpenAPI: no input makes it fail (500).

Every operation is called with generated — mostly invalid — paths, queries and bodies,
as a principal holding `owner` on the project (so the calls reach the code behind the
permission check). A 5xx, or a response that does not match the declared schema, fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

import trivet
from tests.server.live import Live, serving


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, str]]:
    settings_ = trivet.init(tmp_path_factory.mktemp("fuzz") / "ws")
    admin = trivet.connect(settings_.workspace)
    with serving(settings_, admin) as live:
        token = live.user("fuzzer", ("owner", f"{admin.project}/*"), ("audit:read", "_audit"))
        yield live, token


def test_no_input_makes_the_server_fail(fuzzed: tuple[Live, str]) -> None:
    live, token = fuzzed
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        call()

"""Schemathesis against the served OpenAPI document: no server error, no response outside the schema.

Every ``/v6`` operation (``/v7`` is the same router) gets a bounded number of generated requests, valid ones and invalid ones,
sent with the writer token to the live service; some target an existing workspace so that details and edits are
exercised past the 404.
"""

from __future__ import annotations

import contextlib

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.service import WRITER_TOKEN

EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def fuzz(strategy, exercise) -> int:
    """Run ``exercise`` on ``EXAMPLES`` generated cases (no shrinking: failures are collected, not raised)."""
    count = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case) -> None:
        nonlocal count
        count += 1
        exercise(case)

    with contextlib.suppress(Unsatisfiable):  # e.g. negative cases of an operation whose only parameter is fixed
        run()
    return count


def test_schemathesis_finds_no_server_error_and_no_schema_violation(start_service, tmp_path) -> None:
    # Generated configurations point at random hosts: measuring them would only wait on the network.
    service = start_service(usage_workers=0)
    service.client.post("/v6/workspaces/", json={"title": "Seed", "configuration": {
        "broker": {"type": "host", "host_path": str(tmp_path)}}})
    seed = service.client.get("/v6/workspaces/").json()["results"][0]["id"]
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    headers = {"X-Access-Token": WRITER_TOKEN}
    cases = 0
    failures: list[str] = []

    def exercise(case, checks, label: str) -> None:
        response = case.call(base_url=service.url, headers=headers)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except Exception as exc:  # collect every failure, report them together
            failures.append(f"{label}: {str(exc)[:800]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/v7/"):
            continue  # the same handlers as /v6 (test_v7_is_an_alias); fuzzing them twice only costs time
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = [None, {"id": seed}] if "{id}" in operation.path else [None]
            for path_parameters in fixed:
                strategy = operation.as_strategy(generation_mode=mode, headers=headers,
                                                 path_parameters=path_parameters)
                checks = list(CHECKS)
                if mode is GenerationMode.NEGATIVE and not operation.path.endswith("/validation/"):
                    checks.append(negative_data_rejection)  # validation answers 200 to anything, by design

                cases += fuzz(strategy, lambda case, checks=checks, label=f"{operation.label} [{mode.value}]":
                              exercise(case, checks, label))
    print(f"schemathesis: {cases} cases, {len(failures)} failures")
    assert cases >= 200
    assert not failures, "\n\n".join(failures[:10])

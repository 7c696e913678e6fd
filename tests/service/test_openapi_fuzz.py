"""Schemathesis against the served OpenAPI document: no server error, no response outside the schema.

Every operation of the three APIs (Scale v5 under ``/v5``, Scale v6 under ``/v6`` — ``/v7`` is the same router —
and the unversioned management API) gets a bounded number of generated requests, valid ones and invalid ones, sent
with the writer token to the live service. Some target real objects (a live workspace, one of its history items,
its dawg, a trashed workspace), fresh for each operation, so that details and edits are exercised past the 404.
Cases and failures are counted per API.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.service import WRITER_TOKEN

EXAMPLES = 14
"""Generated requests per operation, generation mode and choice of path parameters."""
FLOORS = {"v5": 40, "v6": 200, "management": 600}
"""At least this many cases per API (a run that generates fewer has lost operations)."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# A request with a stale If-Match is refused with 412 before its body is read (RFC 9110, 13.2.2), invalid or not.
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429"]}}})


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


def api_of(path: str) -> str | None:
    """Which API an operation belongs to (None: ``/v7``, the same handlers as ``/v6``, see test_v7_is_an_alias)."""
    if path.startswith("/v7/"):
        return None
    return path.split("/")[1] if path.startswith(("/v5/", "/v6/")) else "management"


def real_objects(service, folder) -> dict[str, int]:
    """Fresh objects for path parameters, each made through another API than the one fuzzed on it.

    ``live``: made through v6 with storage, then given a dawg and a description through the management API (so it
    has history); ``bare``: made through the management API without storage; ``trashed``: a workspace in the trash.
    """
    client = service.client
    tag = uuid.uuid4().hex[:8]
    configuration = {"broker": {"type": "host", "host_path": str(folder)}}
    created = client.post("/v6/workspaces/", json={"title": f"Seed {tag}", "configuration": configuration})
    assert created.status_code == 201, created.text
    live = created.json()["id"]
    client.patch(f"/workspaces/{live}", json={"dawg_id": 7, "description": "fuzzed"}).raise_for_status()
    history = client.get(f"/workspaces/{live}/history").json()["history_list"]
    bare = client.post("/workspaces", json={"name": f"Bare {tag}"}).json()["workspace"]["id"]
    trashed = client.post("/workspaces", json={"name": f"Binned {tag}"}).json()["workspace"]["id"]
    client.delete(f"/workspaces/{trashed}").raise_for_status()
    job = client.post(f"/workspaces/{live}/jobs", json={"kind": "verify"}).json()["workspace_job"]["id"]
    log = client.get(f"/workspaces/{live}/jobs/{job}/logs").json()["workspace_logs"][0]["id"]
    return {"live": live, "bare": bare, "history_id": history[0]["id"], "dawg_id": 7, "trashed": trashed,
            "job_id": job, "log_id": log}


def fixed_parameters(path: str, objects: dict[str, int]) -> list[dict[str, int] | None]:
    """Generated path parameters, then real objects: Scale's ``{id}`` a workspace with storage and one without,
    the management API's the live workspace (the trash's: the trashed one), its history item and dawg."""
    if "{id}" in path:
        return [None, {"id": objects["live"]}, {"id": objects["bare"]}]
    names = [name for name in ("workspace_id", "history_id", "dawg_id", "job_id", "log_id") if "{" + name + "}" in path]
    if not names:
        return [None]
    real = {name: objects[name] for name in names if name != "workspace_id"}
    if "{workspace_id}" in path:
        real["workspace_id"] = objects["trashed" if path.startswith("/workspaces/trash/") else "live"]
    return [None, real]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(start_service, tmp_path) -> None:
    # Generated configurations point at random hosts and paths: no job may run on them (a generated configuration
    # of "/" followed by a generated delete_data would empty this machine). Jobs are created and stay waiting.
    service = start_service(usage_interval=0, job_workers=0)
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", config=CONFIG)
    headers = {"X-Access-Token": WRITER_TOKEN}
    cases: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    distinct: dict[tuple[str, str], str] = {}  # (operation, failure) -> one reproducing request and its answer

    def exercise(case, checks, api: str, label: str) -> None:
        response = case.call(base_url=service.url, headers=headers)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (Exception, FailureGroup) as exc:  # collect every failure, report them together
            failures[api] += 1
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in found:
                what = " / ".join(line.strip() for line in str(getattr(failure, "message", failure)).splitlines()
                                  if line.strip())[:300]
                title = f"{label}: {getattr(failure, 'title', type(failure).__name__)}: {what}"
                distinct.setdefault((label, title), f"{title}\n  {case.as_curl_command(headers=headers)}\n  -> "
                                    f"{response.status_code} {response.text[:400]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        api = api_of(operation.path)
        if api is None:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in fixed_parameters(operation.path, real_objects(service, tmp_path)):
                strategy = operation.as_strategy(generation_mode=mode, headers=headers,
                                                 path_parameters=path_parameters)
                checks = list(CHECKS)
                if mode is GenerationMode.NEGATIVE and not operation.path.endswith("/validation/"):
                    checks.append(negative_data_rejection)  # validation answers 200 to anything, by design
                label = f"{operation.label} [{mode.value}{f', {path_parameters}' if path_parameters else ''}]"
                cases[api] += fuzz(strategy, lambda case, checks=checks, api=api, label=label:
                                   exercise(case, checks, api, label))
    for api in FLOORS:
        print(f"schemathesis {api}: {cases[api]} cases, {failures[api]} failures")
    short = [f"{api}: {cases[api]} cases, fewer than {floor}" for api, floor in FLOORS.items() if cases[api] < floor]
    assert not short and not distinct, "\n".join([*short, f"{len(distinct)} distinct failures:", *distinct.values()])

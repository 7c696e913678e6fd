"""``bench.bench_service_load`` end to end, tiny (200 workspaces, 4 clients, 3 s), on SQLite and PostgreSQL.

Asserted is what the run reports: every route of the mix was served and answered every request with a 2xx, every
PATCH answered left one history row and one version, and the markdown and JSON reports carry the per-route
fields. No latency or rate is asserted (no clock in the tests).
"""

from __future__ import annotations

import json

import pytest

from bench.bench_service_load import BEGIN, END, HEADING, ROUTES, measure, render, replace_section


@pytest.mark.timeout(120)
def test_tiny_load_run_serves_every_route_without_errors(database_url: str, request: pytest.FixtureRequest,
                                                         tmp_path) -> None:
    database = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    postgres_pid = request.getfixturevalue("postgres_server").pid() if database == "postgresql" else None
    report = measure(database_url, database, workspaces=200, clients=4, seconds=3, work=tmp_path,
                     postgres_pid=postgres_pid)
    assert report["routes_not_served"] == []
    assert [r["route"] for r in report["routes"]] == [r.label for r in ROUTES]
    for route in report["routes"]:
        assert route["requests"] > 0, route
        assert (route["errors"], route["error_samples"]) == (0, []), route
        assert 0 < route["p50_ms"] <= route["p99_ms"], route
    assert report["requests"] == sum(r["requests"] for r in report["routes"]) > 0
    assert report["errors"] == 0
    assert report["patches_answered"] > 0
    assert report["history_rows_added"] == report["versions_added"] == report["patches_answered"]
    assert report["lost_updates"] == 0
    assert report["cpu_cores"]["service"] > 0
    assert (report["cpu_cores"]["postgresql"] is None) == (database == "sqlite")

    parsed = json.loads(json.dumps(report))
    assert set(parsed["routes"][0]) == {"route", "share", "requests", "errors", "p50_ms", "p99_ms",
                                     "error_samples"}
    section = render([report], "python -m bench.bench_service_load --workspaces 200")
    assert section.startswith(BEGIN + "\n" + HEADING) and section.endswith(END + "\n")
    assert "Command: `python -m bench.bench_service_load --workspaces 200`" in section
    for route in report["routes"]:
        assert (f"| {database} | {route['route']} | {route['share']:.0%} | {route['requests']:,} | 0 | "
                f"{route['p50_ms']:.1f} | {route['p99_ms']:.1f} |") in section
    assert f"| {database} | **all** | | **{report['requests']:,}** | **0** |" in section
    assert sum(r["share"] for r in report["routes"]) == pytest.approx(1, abs=0.01)


def test_the_section_replaces_its_own_and_keeps_the_others() -> None:
    first, second = f"{BEGIN}\nold\n{END}\n", f"{BEGIN}\nnew\n{END}\n"
    assert replace_section("", first) == first
    appended = replace_section("# Benchmark results\n\n## Reads\n\ntable\n", first)
    assert appended == f"# Benchmark results\n\n## Reads\n\ntable\n\n{first}"
    assert replace_section(appended, second) == f"# Benchmark results\n\n## Reads\n\ntable\n\n{second}"
    between = f"# Results\n\n{first}\n## Parquet\n\nrows\n"
    assert replace_section(between, second) == f"# Results\n\n{second}\n## Parquet\n\nrows\n"

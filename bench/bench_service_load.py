"""``python -m bench.bench_service_load``: the workspace service under load, on SQLite and PostgreSQL.

Usage::

    python -m bench.bench_service_load [--database sqlite|postgresql|both] [--workspaces 10000] [--clients 32]
                                       [--seconds 60] [--json PATH] [--no-write]

For each database: an empty database (a SQLite file, or a new database on a throwaway PostgreSQL cluster on
loopback, ``tests.fixtures.postgres``) is seeded with ``--workspaces`` host workspaces through the service's own
store (:func:`brokers.service.store.workspaces.create`: the workspace, its ``create`` history row, owned by the
built-in ``service`` user). The service then runs in a process of its own (uvicorn, one worker, access log off,
usage measuring off), so the load generator does not share its GIL, and ``--clients`` closed-loop clients (asyncio
tasks on one ``aiohttp`` session, one connection each, no think time; aiohttp costs the client about a fifth of the
CPU per request httpx does, which matters on 2 cores) send the requests of :data:`ROUTES`,
picked at random by weight, for ``--seconds``.

Reported per route: requests, errors (any answer but 2xx, or a transport error; samples are kept), p50/p99
latency as the client saw it; per database: requests/s and the CPU used by the client, the service process and the
PostgreSQL server (fractions of one core). After the run, the database is checked for lost updates: every PATCH
answered 2xx must have added one history row and one version. The result goes into ``bench/RESULTS.md`` as its own
section between markers (``--no-write``: printed only); ``--json`` writes the raw numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from . import harness
from .harness import versions
from .servers import Unavailable, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- bench_service_load: begin -->", "<!-- bench_service_load: end -->"
HEADING = "## Workspace service under load"
DATABASE_ENV, TOKEN_ENV = "BROKERS_BENCH_DATABASE_URL", "BROKERS_BENCH_TOKEN"
SEEDING = ("`brokers.service.store.workspaces.create`, one transaction per workspace (the workspace, its `create` "
           "history row, owner and author the built-in `service` user), host configurations on a temporary folder")
DATABASES = ("sqlite", "postgresql")


def service_app() -> Any:
    """The app the service process serves (``uvicorn --factory``): database and token from the environment."""
    from brokers.service.app import create_app
    from brokers.service.settings import Settings

    return create_app(Settings(database_url=os.environ[DATABASE_ENV], tokens=(os.environ[TOKEN_ENV],),
                               usage_interval=0))


@dataclass(frozen=True)
class Workload:
    """What the routes pick from: the seeded ids, and a counter making every PATCH a real change."""

    ids: list[int]
    patches: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 62)))

    def any_id(self, rng: random.Random) -> int:
        return rng.choice(self.ids)


Request = tuple[str, str, Any]
"""method, URL (path and query), JSON body or None."""


@dataclass(frozen=True)
class Route:
    """One kind of request of the mix: its label, the OpenAPI path it needs, its weight, how to build one."""

    label: str
    method: str
    path: str
    weight: float
    build: Callable[[random.Random, Workload], Request]
    writes: bool = False


def _v6_page(rng: random.Random, w: Workload) -> Request:
    return "GET", f"/v6/workspaces/?page={rng.randint(1, max(1, math.ceil(len(w.ids) / 100)))}&page_size=100", None


def _management_page(rng: random.Random, w: Workload) -> Request:
    return "GET", f"/workspaces?limit=20&offset={rng.randrange(max(1, len(w.ids) - 19))}", None


ROUTES: tuple[Route, ...] = (
    Route("GET /v6/workspaces/?page=N&page_size=100", "get", "/v6/workspaces/", 10, _v6_page),
    Route("GET /workspaces?limit=20&offset=N", "get", "/workspaces", 10, _management_page),
    Route("GET /v6/workspaces/{id}/", "get", "/v6/workspaces/{id}/", 20,
          lambda rng, w: ("GET", f"/v6/workspaces/{w.any_id(rng)}/", None)),
    Route("GET /workspaces/{id}", "get", "/workspaces/{workspace_id}", 20,
          lambda rng, w: ("GET", f"/workspaces/{w.any_id(rng)}", None)),
    Route("GET /workspaces/{id}/history", "get", "/workspaces/{workspace_id}/history", 20,
          lambda rng, w: ("GET", f"/workspaces/{w.any_id(rng)}/history", None)),
    Route("PATCH /v6/workspaces/{id}/ (description)", "patch", "/v6/workspaces/{id}/", 10,
          lambda rng, w: ("PATCH", f"/v6/workspaces/{w.any_id(rng)}/", {"description": f"v6 edit {next(w.patches)}"}),
          writes=True),
    Route("PATCH /workspaces/{id} (description)", "patch", "/workspaces/{workspace_id}", 10,
          lambda rng, w: ("PATCH", f"/workspaces/{w.any_id(rng)}", {"description": f"edit {next(w.patches)}"}),
          writes=True),
)
"""The request mix: 60 % details and history, 20 % list pages, 20 % PATCH. Extend it here."""


@dataclass
class RouteResult:
    """What one route of the mix got: request count, errors with a few samples, latencies (seconds)."""

    label: str
    share: float
    """The route's part of the mix (its weight over the sum of weights)."""
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {"route": self.label, "share": round(self.share, 3), "requests": len(ordered) + self.errors,
                "errors": self.errors,
                "p50_ms": _percentile(ordered, 0.50), "p99_ms": _percentile(ordered, 0.99),
                "error_samples": self.error_samples}


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds (None without samples)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 2)


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds used by a process (with ``children``: also its reaped and live child processes)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def stat(p: int | str) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    fields = stat(pid)  # after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
    total = sum(int(v) for v in fields[11:15 if children else 13])
    if children:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    other = stat(entry)
                    if int(other[1]) == pid:
                        total += int(other[11]) + int(other[12])
    return total / ticks


def _cpu_now(service_pid: int, postgres_pid: int | None) -> tuple[float, float, float | None]:
    """CPU seconds so far of this process (the client), the service, and the PostgreSQL server."""
    return (time.process_time(), _cpu_seconds(service_pid),
            None if postgres_pid is None else _cpu_seconds(postgres_pid, children=True))


def seed(url: str, count: int, host_path: Path) -> tuple[list[int], float]:
    """Create ``count`` workspaces through the store; return their ids and the seconds it took."""
    from brokers.service.db import make_engine, make_sessions, upgrade
    from brokers.service.security import SecretBox
    from brokers.service.store import workspaces as store
    from brokers.service.store.users import ensure_service_user

    host_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        sessions = make_sessions(engine)
        with sessions() as session, session.begin():
            actor = ensure_service_user(session)
        box = SecretBox(())
        config = {"broker": {"type": "host", "host_path": str(host_path)}}
        started = time.perf_counter()
        ids = [store.create(sessions, box, actor, {"title": f"load {i:05d}", "description": "seeded",
                                                   "configuration": config}).id for i in range(count)]
        return ids, time.perf_counter() - started
    finally:
        engine.dispose()


def count_changes(url: str) -> tuple[int, int]:
    """Return (history rows, sum of versions - 1) over every workspace of the database."""
    from sqlalchemy import func, select

    from brokers.service.db import make_engine
    from brokers.service.db.models import Workspace, WorkspaceHistory

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(WorkspaceHistory)) or 0
            bumps = conn.scalar(select(func.sum(Workspace.version - 1))) or 0
        return int(rows), int(bumps)
    finally:
        engine.dispose()


def postgres_sessions(url: str) -> int | None:
    """How many sessions PostgreSQL has opened on ``url``'s database so far (this one included; None: SQLite)."""
    if not url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            return int(conn.scalar(text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))
                       or 0)
    finally:
        engine.dispose()


@contextlib.contextmanager
def serve(url: str, token: str, log: Path) -> Iterator[tuple[str, int]]:
    """Run the service on ``url``'s database in a uvicorn process of its own; yield its base URL and pid."""
    port = free_port()
    env = {**os.environ, DATABASE_ENV: url, TOKEN_ENV: token}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "bench.bench_service_load:service_app", "--host",
             "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited ({process.returncode}): {log.read_text()[-2000:]}")
            try:
                status = httpx.get(f"{base}/openapi.json", timeout=5).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            if status is not None:
                raise RuntimeError(f"the service answers /openapi.json with {status}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer within 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _client(session: aiohttp.ClientSession, routes: list[Route], results: list[RouteResult],
                  workload: Workload, rng: random.Random, deadline: float) -> None:
    weights = [r.weight for r in routes]
    while time.perf_counter() < deadline:
        index = rng.choices(range(len(routes)), weights)[0]
        method, url, body = routes[index].build(rng, workload)
        result = results[index]
        started = time.perf_counter()
        try:
            async with session.request(method, url, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            result.errors += 1
            if len(result.error_samples) < 5:
                result.error_samples.append(f"{method} {url}: {type(exc).__name__}: {exc}"[:300])
            continue
        elapsed = time.perf_counter() - started
        if 200 <= response.status < 300:
            result.latencies.append(elapsed)
        else:
            result.errors += 1
            if len(result.error_samples) < 5:
                result.error_samples.append(f"{method} {url}: {response.status} {text[:240]}")


async def _load(base: str, token: str, routes: list[Route], workload: Workload, clients: int,
                seconds: float) -> tuple[list[RouteResult], float]:
    results = [RouteResult(r.label, r.weight / sum(r.weight for r in routes)) for r in routes]
    async with aiohttp.ClientSession(base_url=base, headers={"X-Access-Token": token},
                                     connector=aiohttp.TCPConnector(limit=clients),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(session, routes, results, workload, random.Random(1000 + n), deadline)
                               for n in range(clients)))
        return results, time.perf_counter() - started


def served_paths(base: str) -> set[tuple[str, str]]:
    """(method, path) of every operation in the service's OpenAPI document."""
    paths = httpx.get(f"{base}/openapi.json", timeout=30).json()["paths"]
    return {(method, path) for path, operations in paths.items() for method in operations}


def measure(url: str, database: str, *, workspaces: int, clients: int, seconds: float, work: Path,
            postgres_pid: int | None = None) -> dict[str, Any]:
    """Seed ``url``'s (empty) database, serve it, load it; return the report of this database."""
    ids, seeding = seed(url, workspaces, work / "ws")
    token = secrets.token_urlsafe(16)
    with serve(url, token, work / f"service-{database}.log") as (base, pid):
        offered = served_paths(base)
        routes = [r for r in ROUTES if (r.method, r.path) in offered]
        missing = [r.label for r in ROUTES if (r.method, r.path) not in offered]
        listed = httpx.get(f"{base}/v6/workspaces/?page_size=1", headers={"X-Access-Token": token}, timeout=30)
        if listed.json().get("count") != workspaces:
            raise RuntimeError(f"the service lists {listed.json().get('count')} workspaces, not {workspaces}")
        cpu_before = _cpu_now(pid, postgres_pid)
        sessions_before, load_before = postgres_sessions(url), os.getloadavg()[0]
        results, wall = asyncio.run(_load(base, token, routes, Workload(ids), clients, seconds))
        load_after = os.getloadavg()[0]
        cpu_after = _cpu_now(pid, postgres_pid)
    sessions_after = postgres_sessions(url)  # the service has stopped: its sessions are all counted
    history, bumps = count_changes(url)
    patched = sum(len(res.latencies) for res, route in zip(results, routes, strict=True) if route.writes)
    summaries = [res.summary() for res in results]
    total = sum(s["requests"] for s in summaries)

    def share(i: int) -> float | None:
        before, after = cpu_before[i], cpu_after[i]
        return None if before is None or after is None else round((after - before) / wall, 2)

    return {"database": database, "workspaces": workspaces, "seeding_seconds": round(seeding, 1),
            "clients": clients, "seconds": round(wall, 1), "requests": total,
            "errors": sum(s["errors"] for s in summaries), "requests_per_second": round(total / wall, 1),
            "cpu_cores": {"client": share(0), "service": share(1), "postgresql": share(2)},
            "load_average": [round(load_before, 1), round(load_after, 1)],
            "patches_answered": patched, "history_rows_added": history - workspaces, "versions_added": bumps,
            "lost_updates": patched - min(history - workspaces, bumps), "routes": summaries,
            "routes_not_served": missing,
            "postgresql_sessions_opened": None if sessions_before is None or sessions_after is None
            else sessions_after - sessions_before - 1}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(reports: list[dict[str, Any]], command: str) -> str:
    """The RESULTS.md section (heading, command, one table for every database, notes)."""
    lines = [BEGIN, HEADING, "", f"Command: `{command}`  ", f"Machine: {versions()}", ""]
    if reports:
        first = reports[0]
        lines += [f"{first['workspaces']:,} workspaces seeded through {SEEDING}. The service (uvicorn, 1 worker, "
                  "no access log, usage measuring off) runs in its own process on 127.0.0.1; "
                  f"{first['clients']} closed-loop clients (asyncio tasks on one aiohttp session, a connection each, "
                  f"no think time) send a random mix of the routes below for {first['seconds']:.0f} s. "
                  "Errors: any answer but 2xx, or a transport error. Latency as the client saw it. CPU in cores "
                  f"(1.0 = one core busy) over the run; {os.cpu_count()} cores in all.", "",
                  "| database | route | mix | requests | errors | p50 ms | p99 ms |",
                  "|---|---|---|---|---|---|---|"]
    for report in reports:
        for route in report["routes"]:
            lines.append(f"| {report['database']} | {route['route']} | {route['share']:.0%} | {route['requests']:,} | "
                         f"{route['errors']} | {_ms(route['p50_ms'])} | {_ms(route['p99_ms'])} |")
        lines.append(f"| {report['database']} | **all** | | **{report['requests']:,}** | **{report['errors']}** | "
                     f"{report['requests_per_second']:,.1f} req/s | |")
    lines.append("")
    for report in reports:
        cpu = report["cpu_cores"]
        used = ", ".join(f"{name} {value:.2f}" for name, value in cpu.items() if value is not None)
        lines.append(f"- {report['database']}: seeding {report['seeding_seconds']:.1f} s; CPU cores: {used} "
                     f"(machine load average {report['load_average'][0]} at the start, "
                     f"{report['load_average'][1]} at the end); "
                     f"{report['patches_answered']:,} PATCHes answered 2xx, {report['history_rows_added']:,} history "
                     f"rows and {report['versions_added']:,} versions added (lost updates: "
                     f"{report['lost_updates']})"
                     + ("" if report["postgresql_sessions_opened"] is None else
                        f"; PostgreSQL sessions the service opened during the run: "
                        f"{report['postgresql_sessions_opened']:,}"))
        if report["routes_not_served"]:
            lines.append(f"- {report['database']}: NOT SERVED (left out of the mix): "
                         + "; ".join(report["routes_not_served"]))
        for route in report["routes"]:
            for sample in route["error_samples"]:
                lines.append(f"- {report['database']} error: `{sample}`")
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """Put ``section`` in place of this benchmark's section of ``text``, or append it."""
    return harness.replace_section(text, section, BEGIN, END)


def _failed(report: dict[str, Any]) -> bool:
    return bool(report["errors"] or report["routes_not_served"] or report["lost_updates"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_service_load")
    parser.add_argument("--database", choices=[*DATABASES, "both"], default="both")
    parser.add_argument("--workspaces", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the raw report here")
    parser.add_argument("--no-write", action="store_true", help=f"print only, leave {RESULTS.name} alone")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.bench_service_load", *(sys.argv[1:] if argv is None else argv)])
    wanted = DATABASES if args.database == "both" else (args.database,)
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="brokers-bench-load-") as tmp:
        work = Path(tmp)
        for database in wanted:
            print(f"{database}: seeding {args.workspaces} workspaces, then {args.clients} clients for "
                  f"{args.seconds:g} s ...", flush=True)
            options = {"workspaces": args.workspaces, "clients": args.clients, "seconds": args.seconds}
            if database == "sqlite":
                reports.append(measure(f"sqlite:///{work / 'service.db'}", database, work=work, **options))
                continue
            from tests.fixtures.postgres import PostgresUnavailable, postgres_cluster

            try:
                with postgres_cluster() as server:
                    reports.append(measure(server.url(server.create_database()), database, work=work,
                                           postgres_pid=server.pid(), **options))
            except PostgresUnavailable as exc:
                print(f"skipped postgresql: {exc}", flush=True)
                if os.environ.get("BROKERS_REQUIRE_REAL_SERVERS"):
                    raise Unavailable(f"PostgreSQL: {exc}") from exc
    section = render(reports, command)
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"command": command, "reports": reports}, indent=2) + "\n")
    if not args.no_write:
        RESULTS.write_text(replace_section(RESULTS.read_text() if RESULTS.exists() else "", section))
    return 1 if any(_failed(r) for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench [--quick] [--no-write] [--only AREA ...]``: run the benchmarks, write bench/RESULTS.md.

Starts its own servers on loopback (s3rver from npm, moto, NFS-Ganesha), runs every case for the broker and
its peers alternately, and prints medians and ratios. A missing server or peer skips its cases with a note,
or fails the run when ``BROKERS_REQUIRE_REAL_SERVERS`` is set.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import host_cases, nfs_cases, s3_cases
from .harness import Case, command_line, table, versions
from .servers import Ganesha, MotoProcess, MotoServer, S3rver, Unavailable, aws_cli_version, running

AREAS = ("host", "s3", "nfs")
MiB = 1 << 20


def _peer_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("boto3", "botocore", "s3fs", "obstore", "moto", "nfs-rs"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} n/a")
    out.append(f"AWS CLI {aws_cli_version()}")
    out.append("s3rver 3.7.1 (npm)")
    return ", " + ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (CI)")
    parser.add_argument("--output", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--only", nargs="+", choices=AREAS, default=list(AREAS), help="areas to run")
    args = parser.parse_args()
    quick = args.quick
    strict = bool(os.environ.get("BROKERS_REQUIRE_REAL_SERVERS"))
    cases: list[Case] = []
    notes: list[str] = []
    extra: list[str] = []
    started = time.monotonic()

    def run(group: str, build: Callable[[], list[Case]]) -> None:
        """Build a group's cases (servers up) and run them; a missing piece skips the group, or fails."""
        t0 = time.monotonic()
        try:
            built = build()
        except Unavailable as exc:
            if strict:
                print(f"FAILED: {group}: {exc} (BROKERS_REQUIRE_REAL_SERVERS is set)", file=sys.stderr)
                raise SystemExit(1) from exc
            notes.append(f"skipped {group}: {exc}")
            print(f"skipped {group}: {exc}", flush=True)
            return
        for case in built:
            print(f"running {case.name} ...", flush=True)
            os.sync()  # dirty pages of the setup (a 1 GiB file, 200,000 files) are not written back mid-case
            case.run()
        cases.extend(built)
        print(f"  {group}: {time.monotonic() - t0:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="brokers-bench-", dir=str(Path.home())) as tmp:
        work = Path(tmp)
        if "s3" in args.only:
            repeat = 3
            with running(S3rver(work)) as s3rver:
                big = (16 if quick else 256) * MiB
                run("S3 large objects (s3rver)", lambda: s3_cases.large_cases(s3rver, work, big, repeat))
                count = 50 if quick else 2000
                run("S3 small objects (s3rver)",
                    lambda: s3_cases.small_cases(s3rver, work, count, 4096, repeat,
                                                 slow_runs=None if quick else 1))
                reads = 20 if quick else 200
                run("S3 ranged reads (s3rver)",
                    lambda: [s3_cases.ranged_case(s3rver, work, big, reads, repeat)])
            objects = 200 if quick else 20_000
            with running(MotoProcess(work, seed=("bench-usage", objects))) as moto:
                run("S3 usage (moto)", lambda: [s3_cases.usage_case(moto, repeat)])

            def ranged_bytes() -> list[Case]:
                with running(MotoServer(work)) as recorder:
                    notes.append("S3 ranged reads, counted at the server (moto + recording middleware), "
                                 f"{10 if quick else 50} reads of 4 KiB from a {8 if quick else 16} MiB object:\n\n"
                                 + "\n".join(s3_cases.ranged_bytes(recorder, work, (8 if quick else 16) * MiB,
                                                                   10 if quick else 50)) + "\n")
                return []

            run("S3 ranged read bytes (moto)", ranged_bytes)
            extra.append(_peer_versions())
        if "nfs" in args.only:
            with running(Ganesha(work)) as ganesha:
                size = (8 if quick else 64) * MiB
                run("NFS (Ganesha)", lambda: nfs_cases.nfs_cases(ganesha, work, size, 3 if quick else 5))
        if "host" in args.only:
            def host() -> list[Case]:
                copy = host_cases.copy_case(work, (16 if quick else 1024) << 20, 3 if quick else 5)
                host_cases.warm(work / "ws" / "big.bin")
                usage = host_cases.usage_case(work, 2_000 if quick else 200_000, 3 if quick else 5)
                usage.contenders["du -sb"]()  # warm the dentry cache for both
                return [copy, usage]

            run("host", host)
            n = 100 if quick else 1000
            validation = host_cases.validation_case(n, 3)
            run("validation", lambda: [validation])
            notes.append(f"validation throughput: {host_cases.per_second(validation, 2 * n)}")
    elapsed = time.monotonic() - started
    text = table(cases)
    failures = [f"{case.name} / {label}: {err}" for case in cases for label, err in case.errors.items()]
    notes.extend(f"FAILED {f}" for f in failures)
    print(text)
    print("\n".join(notes))
    print(f"total {elapsed:.1f} s")
    if not args.no_write:
        output = Path(args.output)
        previous = output.read_text() if output.exists() else ""
        # The "## " sections after the main tables belong to the single benchmarks (bench_reads, ...): kept.
        kept = previous[previous.find("\n## "):] if "\n## " in previous else ""
        output.write_text(
            f"# Benchmark results\n\nCommand: `{command_line()}` ({elapsed:.0f} s)  \n"
            f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  \n"
            f"Machine: {versions(''.join(extra))}\n\n"
            "Each case runs its contenders alternately, repeated; medians shown (a contender with fewer runs "
            "was too slow to repeat). Ratios are broker time / contender time (< 1: the broker is faster); "
            "the broker's own row shows broker / fastest peer (rows labelled `brokers ...` are broker variants, "
            "not peers).\n\n"
            "Servers: large and small object transfers and ranged-read latency run against npm s3rver 3.7.1 "
            "(objects on disk; moto keeps them in memory and reads a whole object per ranged GET). Usage runs "
            "against a moto process seeded in memory: s3rver 3.7.1 drops every key below a `/` from delimited "
            "listings (no CommonPrefixes), which breaks any prefix-parallel listing. Bytes of ranged reads are "
            "counted at the server by the test suite's recording middleware around moto. s3rver answers a "
            "completed multipart upload with the MD5 of the whole object, not `md5(part md5s)-N`.\n\n"
            f"{text}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n" + kept)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

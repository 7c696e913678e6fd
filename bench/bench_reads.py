"""``python -m bench.bench_reads [--quick] [--write]``: what ``broker.open("rb")`` fetches, and how fast it streams.

Two measurements, each with its peers side by side:

- **Bytes fetched by random reads**, counted at the server (moto behind the test suite's recording middleware):
  four ``seek`` + ``read(100)`` at random offsets of a 32 MiB object through ``broker.open("rb")``, s3fs's
  ``fs.open`` (its default read-ahead) and pyarrow's ``S3FileSystem.open_input_file``.
- **A sequential read** of a 256 MiB object on s3rver (the server of the large-object benchmarks) through
  ``broker.open("rb")`` (read in 8 MiB and in 64 KiB pieces, written to a local file) next to
  ``broker.download()``, boto3's streaming body and s3fs's ``fs.open``; contenders alternate, repeated.

``--write`` puts the result into ``bench/RESULTS.md`` as its own section (replacing an earlier one).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .harness import Case, table, versions
from .s3_cases import S3Peers, _write_random
from .servers import MotoServer, S3Endpoint, S3rver, Unavailable, running

MiB = 1 << 20
HEADING = "## Reads through `broker.open(\"rb\")`"
RESULTS = Path(__file__).with_name("RESULTS.md")


def _pyarrow_fs(server: S3Endpoint) -> Any:
    from pyarrow import fs

    host = server.endpoint.split("://", 1)[1]
    return fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key, endpoint_override=host,
                           scheme="http", region="us-east-1")


def random_read_bytes(server: MotoServer, work: Path, size: int, reads: int = 4, length: int = 100) -> list[str]:
    """Requests and body bytes the server sent for ``reads`` random ``seek`` + ``read(length)`` per contender."""
    peers = S3Peers(server, server.new_bucket("bench-random"))
    local = work / "random.bin"
    _write_random(local, size)
    peers.broker.upload(local, "big.bin")
    data = local.read_bytes()
    local.unlink()
    rng = random.Random(13)
    offsets = [rng.randrange(size - length) for _ in range(reads)]
    arrow = _pyarrow_fs(server)
    key = f"{peers.bucket}/big.bin"
    opens: dict[str, Callable[[], IO[bytes]]] = {
        "brokers open(\"rb\")": lambda: peers.broker.open("big.bin"),
        "s3fs open (default read-ahead)": lambda: peers.fs.open(key, "rb"),
        "pyarrow S3FileSystem.open_input_file": lambda: arrow.open_input_file(key),
    }
    lines = ["| contender | GETs | bytes sent, per read | bytes sent, total | bytes asked | sent / asked |",
             "|---|---|---|---|---|---|"]
    for label, open_ in opens.items():
        with open_() as f:
            per_read = []
            for at in offsets:
                mark = server.mark()
                f.seek(at)
                if f.read(length) != data[at:at + length]:
                    raise RuntimeError(f"{label}: a read returned the wrong bytes")
                per_read.append([r for r in server.since(mark) if r.method == "GET"])
        sent = [sum(r.sent for r in seen) for seen in per_read]
        asked = reads * length
        lines.append(f"| {label} | {sum(len(s) for s in per_read)} | {', '.join(f'{n:,}' for n in sent)} | "
                     f"{sum(sent):,} | {asked:,} | {sum(sent) / asked:,.0f} |")
    return lines


def _copy(stream: IO[bytes], out: Path, chunk: int) -> None:
    with stream, open(out, "wb") as f:
        shutil.copyfileobj(stream, f, chunk)


def sequential_case(server: S3Endpoint, work: Path, size: int, repeat: int) -> Case:
    """One object read from start to end into a local file: the reader against download() and the peers."""
    peers = S3Peers(server, server.new_bucket("bench-seq"))
    local = work / "seq.bin"
    _write_random(local, size)
    peers.broker.upload(local, "big.bin")
    local.unlink()
    out = work / "seq.out"
    broker, client, b = peers.broker, peers.client, peers.bucket
    return Case(f"S3 sequential read {size // MiB} MiB ({server.name})", {
        "brokers open(\"rb\") read(8 MiB)": lambda: _copy(broker.open("big.bin"), out, 8 * MiB),
        "brokers download()": lambda: broker.download("big.bin", out),
        "brokers open(\"rb\") read(64 KiB)": lambda: _copy(broker.open("big.bin"), out, 64 * 1024),
        "boto3 get_object body": lambda: _copy(client.get_object(Bucket=b, Key="big.bin")["Body"], out, 8 * MiB),
        "s3fs open read(8 MiB)": lambda: _copy(peers.fs.open(f"{b}/big.bin", "rb"), out, 8 * MiB),
    }, repeat=repeat, setup=lambda: out.unlink(missing_ok=True))


def speed_line(case: Case) -> str:
    """The reader's speed as a fraction of download()'s (same run, medians)."""
    med = {k: statistics.median(v) for k, v in case.times.items() if v}
    reader, download = med["brokers open(\"rb\") read(8 MiB)"], med["brokers download()"]
    small = med["brokers open(\"rb\") read(64 KiB)"]
    return (f"sequential read through `broker.open(\"rb\")`: {download / reader:.2f}x the speed of `download()` "
            f"(read(8 MiB)), {download / small:.2f}x (read(64 KiB)); target >= 0.9x")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reads")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help=f"put the result into {RESULTS.name}")
    args = parser.parse_args()
    random_size, seq_size = (4 if args.quick else 32) * MiB, (16 if args.quick else 256) * MiB
    repeat = 1 if args.quick else args.repeat
    try:
        with tempfile.TemporaryDirectory(prefix="brokers-bench-reads-", dir=str(Path.home())) as tmp:
            work = Path(tmp)
            with running(MotoServer(work)) as moto:
                counted = random_read_bytes(moto, work, random_size)
            with running(S3rver(work)) as s3rver:
                case = sequential_case(s3rver, work, seq_size, repeat)
                print(f"running {case.name} ...", flush=True)
                case.run()
    except Unavailable as exc:  # as python -m bench: a missing server skips, or fails when servers are required
        print(f"skipped reads: {exc}", flush=True)
        raise SystemExit(1 if os.environ.get("BROKERS_REQUIRE_REAL_SERVERS") else 0) from exc
    failures = [f"FAILED {case.name} / {label}: {err}" for label, err in case.errors.items()]
    text = "\n".join([
        HEADING, "",
        f"Command: `{' '.join(['python -m bench.bench_reads', *sys.argv[1:]])}`  ",
        f"Machine: {versions()}", "",
        f"Four random `seek` + `read(100)` of a {random_size // MiB} MiB object, body bytes counted at the server "
        "(moto + recording middleware; each read's GETs):", "", *counted, "",
        f"A {seq_size // MiB} MiB object read from start to end into a local file (s3rver), contenders "
        f"alternating, {repeat} runs, medians:", "", table([case]), "",
        *([speed_line(case)] if not case.errors else []), *failures, ""])
    print(text)
    if args.write:
        old = RESULTS.read_text() if RESULTS.exists() else ""
        before, found, after = old.partition(HEADING)
        rest = after[after.find("\n## "):] if found and "\n## " in after else ""
        RESULTS.write_text(before.rstrip("\n") + "\n\n" + text + rest)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

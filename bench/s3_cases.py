"""S3 benchmarks: the broker side by side with boto3, s3fs, obstore and the AWS CLI on a loopback server.

Cases (each contender alternates with its peers, repeated):

- large object upload / download (s3rver: it keeps objects on disk and serves ranges without reading the
  whole object, unlike moto);
- a batch of small objects uploaded / downloaded (the broker's ``upload_many`` / ``download_many``);
- 4 KiB ranged reads from a large object: latency on s3rver, and body bytes the server sent per contender
  counted by moto's recording middleware (must equal the bytes asked for);
- usage of many objects in nested prefixes.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import brokers

from .harness import Case
from .servers import MotoProcess, MotoServer, S3Endpoint, aws_cli, tree_keys

MiB = 1 << 20


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(min(size, 4 * MiB))
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[:left])
            left -= len(block)


def _reset_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def _run(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... failed: {result.stderr.strip()[-500:]}")


def _obstore_download(store: Any, key: str, out: Path) -> None:
    import obstore

    with open(out, "wb") as f:
        for chunk in obstore.get(store, key):
            f.write(chunk)


class S3Peers:
    """Every client of one bucket on one server: the broker and the peers, built once."""

    def __init__(self, server: S3Endpoint, bucket: str) -> None:
        self.server = server
        self.bucket = bucket
        self.broker = brokers.get_broker(server.broker_config(bucket))
        self.client = server.boto3_client(max_pool_connections=16)
        self.fs = server.s3fs()
        self.store = server.obstore(bucket)
        self.env = server.aws_env()

    def aws(self, *args: str) -> None:
        quiet = ["--only-show-errors"] if args[:2] == ("s3", "cp") else []
        _run([*aws_cli(), "--endpoint-url", self.server.endpoint, *args, *quiet], self.env)


def large_cases(server: S3Endpoint, work: Path, size: int, repeat: int) -> list[Case]:
    """Upload and download of one large object: broker vs boto3 TransferManager, s3fs, obstore, AWS CLI."""
    import obstore

    peers = S3Peers(server, server.new_bucket("bench-large"))
    b, broker, client, fs, store = peers.bucket, peers.broker, peers.client, peers.fs, peers.store
    local = work / "large.bin"
    _write_random(local, size)
    out = work / "large.out"
    mib = size // MiB
    upload = Case(f"S3 upload {mib} MiB ({server.name})", {
        "brokers upload": lambda: broker.upload(local, "up/broker.bin"),
        "boto3 upload_file": lambda: client.upload_file(str(local), b, "up/boto3.bin"),
        "s3fs put_file": lambda: fs.put_file(str(local), f"{b}/up/s3fs.bin"),
        "obstore put": lambda: obstore.put(store, "up/obstore.bin", local),
        "aws s3 cp": lambda: peers.aws("s3", "cp", str(local), f"s3://{b}/up/aws.bin"),
    }, repeat=repeat)
    # Every contender downloads one object written by boto3 (a multipart upload, as every tool writes it).
    client.upload_file(str(local), b, "big.bin")
    download = Case(f"S3 download {mib} MiB ({server.name})", {
        "brokers download": lambda: broker.download("big.bin", out),
        "boto3 download_file": lambda: client.download_file(b, "big.bin", str(out)),
        "s3fs get_file": lambda: fs.get_file(f"{b}/big.bin", str(out)),
        "obstore get": lambda: _obstore_download(store, "big.bin", out),
        "aws s3 cp": lambda: peers.aws("s3", "cp", f"s3://{b}/big.bin", str(out)),
    }, repeat=repeat, setup=lambda: out.unlink(missing_ok=True))
    return [upload, download]


def small_cases(server: S3Endpoint, work: Path, count: int, size: int, repeat: int,
                slow_runs: int | None = None) -> list[Case]:
    """A batch of small objects up and down: broker bulk API vs boto3 (loop, threads), s3fs, obstore."""
    import obstore

    peers = S3Peers(server, server.new_bucket("bench-small"))
    b, broker, client, fs, store = peers.bucket, peers.broker, peers.client, peers.fs, peers.store
    src = work / "small-src"
    names = [f"d{i % 20:02d}/f{i:05d}.bin" for i in range(count)]
    for name in names:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(os.urandom(size))
    locals_ = [str(src / n) for n in names]

    def boto3_loop_up(prefix: str) -> None:
        for local, name in zip(locals_, names, strict=True):
            client.upload_file(local, b, f"{prefix}/{name}")

    def put_one(local: str, key: str) -> None:
        with open(local, "rb") as f:
            client.put_object(Bucket=b, Key=key, Body=f.read())

    def boto3_threads_up(prefix: str) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put_one, locals_, [f"{prefix}/{n}" for n in names]))

    def obstore_up(prefix: str) -> None:
        async def main() -> None:
            sem = asyncio.Semaphore(64)

            async def one(local: str, key: str) -> None:
                async with sem:
                    await obstore.put_async(store, key, Path(local).read_bytes())

            await asyncio.gather(*(one(lo, f"{prefix}/{n}") for lo, n in zip(locals_, names, strict=True)))

        asyncio.run(main())

    pairs = list(zip(locals_, names, strict=True))
    slow = {"boto3 loop": slow_runs, "aws s3 cp --recursive": slow_runs + 1} if slow_runs else {}
    mark = f"{count} x {size >> 10} KiB"
    upload = Case(f"S3 upload {mark} ({server.name})", {
        "brokers upload_many": lambda: broker.upload_many([(lo, f"up/broker/{n}") for lo, n in pairs]),
        "boto3 loop": lambda: boto3_loop_up("up/loop"),
        "boto3 16 threads": lambda: boto3_threads_up("up/threads"),
        "s3fs put (bulk)": lambda: fs.put(locals_, [f"{b}/up/s3fs/{n}" for n in names]),
        "obstore put_async": lambda: obstore_up("up/obstore"),
        "aws s3 cp --recursive": lambda: peers.aws("s3", "cp", "--recursive", str(src), f"s3://{b}/up/aws"),
    }, repeat=repeat, max_runs=slow)
    boto3_threads_up("src")
    dst = work / "small-dst"

    def outs(label: str) -> list[str]:
        return [str(dst / label / n) for n in names]

    def get_one(key: str, local: str) -> None:
        body = client.get_object(Bucket=b, Key=key)["Body"].read()
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "wb") as f:
            f.write(body)

    def boto3_loop_down() -> None:
        for name, local in zip(names, outs("loop"), strict=True):
            os.makedirs(os.path.dirname(local), exist_ok=True)
            client.download_file(b, f"src/{name}", local)

    def boto3_threads_down() -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(get_one, [f"src/{n}" for n in names], outs("threads")))

    def obstore_down() -> None:
        async def main() -> None:
            sem = asyncio.Semaphore(64)

            async def one(key: str, local: str) -> None:
                async with sem:
                    data = await (await obstore.get_async(store, key)).bytes_async()
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with open(local, "wb") as f:
                    f.write(data)

            await asyncio.gather(*(one(f"src/{n}", lo) for n, lo in zip(names, outs("obstore"), strict=True)))

        asyncio.run(main())

    download = Case(f"S3 download {mark} ({server.name})", {
        "brokers download_many": lambda: broker.download_many(
            zip([f"src/{n}" for n in names], outs("broker"), strict=True)),
        "boto3 loop": boto3_loop_down,
        "boto3 16 threads": boto3_threads_down,
        "s3fs get (bulk)": lambda: fs.get([f"{b}/src/{n}" for n in names], outs("s3fs")),
        "obstore get_async": obstore_down,
        "aws s3 cp --recursive": lambda: peers.aws("s3", "cp", "--recursive", f"s3://{b}/src", str(dst / "aws")),
    }, repeat=repeat, setup=lambda: _reset_dir(dst), max_runs=slow)
    return [upload, download]


def _offsets(size: int, reads: int, length: int) -> list[int]:
    rng = random.Random(6)
    return [rng.randrange(0, size - length) for _ in range(reads)]


def ranged_case(server: S3Endpoint, work: Path, size: int, reads: int, repeat: int,
                length: int = 4096) -> Case:
    """``reads`` ranged reads of ``length`` bytes at random offsets of one large object (latency)."""
    peers = S3Peers(server, server.new_bucket("bench-range"))
    contenders = _ranged_contenders(peers, work, size, reads, length)
    return Case(f"S3 {reads} x {length >> 10} KiB ranged reads of {size // MiB} MiB ({server.name})",
                contenders, repeat=repeat)


def _ranged_contenders(peers: S3Peers, work: Path, size: int, reads: int,
                       length: int) -> dict[str, Callable[[], object]]:
    import obstore

    local = work / f"ranged-{peers.server.name}.bin"
    _write_random(local, size)
    peers.client.upload_file(str(local), peers.bucket, "big.bin")
    local.unlink()
    offsets = _offsets(size, reads, length)
    b, broker, client, fs, store = peers.bucket, peers.broker, peers.client, peers.fs, peers.store

    def check(data: Any) -> None:
        if len(data) != length:
            raise RuntimeError(f"a ranged read returned {len(data)} bytes, not {length}")

    def run_broker() -> None:
        for off in offsets:
            check(broker.read_bytes("big.bin", off, off + length))

    def run_boto3() -> None:
        for off in offsets:
            check(client.get_object(Bucket=b, Key="big.bin", Range=f"bytes={off}-{off + length - 1}")["Body"].read())

    def run_s3fs() -> None:
        for off in offsets:
            check(fs.cat_file(f"{b}/big.bin", start=off, end=off + length))

    def run_obstore() -> None:
        for off in offsets:
            check(obstore.get_range(store, "big.bin", start=off, end=off + length))

    return {"brokers read_bytes": run_broker, "boto3 get_object(Range)": run_boto3, "s3fs cat_file": run_s3fs,
            "obstore get_range": run_obstore}


def ranged_bytes(server: MotoServer, work: Path, size: int, reads: int, length: int = 4096) -> list[str]:
    """Count, at the server, the requests and body bytes each contender's ranged reads cost."""
    peers = S3Peers(server, server.new_bucket("bench-bytes"))
    lines = []
    for label, fn in _ranged_contenders(peers, work, size, reads, length).items():
        fn()  # warm: a client's first request may be a HEAD or a credential lookup
        mark = server.mark()
        fn()
        seen = server.since(mark)
        sent = sum(r.sent for r in seen if r.method == "GET")
        asked = reads * length
        lines.append(f"| {label} | {len(seen)} | {sent:,} | {asked:,} | {sent / asked:.2f} |")
    return ["| contender | requests | body bytes sent by the server | bytes asked | sent / asked |",
            "|---|---|---|---|---|", *lines]


def usage_case(server: MotoProcess, repeat: int) -> Case:
    """Usage of the objects the server was seeded with (nested prefixes): broker vs s3fs du/find, aws s3 ls
    --summarize, a boto3 paginator."""
    assert server.seed is not None
    bucket, count = server.seed
    peers = S3Peers(server, bucket)
    total = sum(size for _, size in tree_keys(count))
    b, broker, client, fs = peers.bucket, peers.broker, peers.client, peers.fs

    def expect(used: int) -> None:
        if used != total:
            raise RuntimeError(f"usage reported {used} bytes, the bucket holds {total}")

    def paginator() -> None:
        used = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=b):
            used += sum(o["Size"] for o in page.get("Contents", []))
        expect(used)

    def aws_ls() -> None:
        peers.aws("s3", "ls", "--recursive", "--summarize", f"s3://{b}")

    return Case(f"S3 usage {count} objects ({server.name})", {
        "brokers usage()": lambda: expect(broker.usage().used_size),
        "s3fs du": lambda: expect(fs.du(b)),
        "aws s3 ls --recursive --summarize": aws_ls,
        "boto3 paginator": paginator,
        "s3fs find(detail=True)": lambda: expect(sum(i["size"] for i in fs.find(b, detail=True).values())),
    }, repeat=repeat, max_runs={"s3fs du": 1, "aws s3 ls --recursive --summarize": 2})

"""A fault-injecting HTTP/1.1 proxy for S3 on loopback (asyncio, raw sockets), seeded and reproducible.

It sits between a client and a real S3 server (moto). For every request, in arrival order, a
``random.Random(seed)`` decides whether to pass it through or to inject one fault:

- ``error500``        answer ``500 InternalError`` without forwarding the request;
- ``slowdown503``     answer ``503 SlowDown`` without forwarding;
- ``unavailable503``  answer ``503 ServiceUnavailable`` without forwarding;
- ``reset_before``    read the request, forward nothing, reset the connection (RST);
- ``reset_after``     forward the request (the server acts on it), then reset the connection halfway through
                      the response body (or before the head when there is no body): the client never learns
                      whether its request took effect;
- ``truncate``        forward, then send the response head and only part of the body, then close cleanly;
- ``delay``           wait 20-250 ms, then forward normally.

Each upstream exchange uses its own connection to the server. Counters of requests and injected faults are
kept per kind. Used by ``test_s3_faults.py``; run it in a background thread with :meth:`FaultProxy.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

FAULTS = ("error500", "slowdown503", "unavailable503", "reset_before", "reset_after", "truncate", "delay")

_ERRORS = {
    "error500": (500, "Internal Server Error", "InternalError"),
    "slowdown503": (503, "Slow Down", "SlowDown"),
    "unavailable503": (503, "Service Unavailable", "ServiceUnavailable"),
}


class _Closed(Exception):
    """The peer closed the connection."""


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _Closed from exc


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out: dict[str, str] = {}
    for line in lines:
        if ":" in line:
            name, _, value = line.partition(":")
            out[name.strip().lower()] = value.strip()
    return out


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, until_eof: bool) -> bytes:
    """Read a message body as raw bytes (Content-Length, chunked, or until the connection closes)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            raw += line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw)
            raw += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if until_eof:
        return await reader.read()
    return b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) rather than a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class FaultProxy:
    """The proxy: ``upstream`` is ``(host, port)`` of the real server; ``rate`` the share of faulty requests."""

    upstream: tuple[str, int]
    seed: int = 0
    rate: float = 0.10
    faults: tuple[str, ...] = FAULTS
    requests: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    log: list[tuple[int, str, str, str]] = field(default_factory=list)
    enabled: bool = True

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._forced: list[list] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    def force(self, method: str, contains: str, fault: str, times: int = 1) -> None:
        """Inject ``fault`` into the next ``times`` requests with this method whose target holds ``contains``."""
        with self._lock:
            self._forced.append([method, contains, fault, times])

    def _decide(self, method: str, target: str) -> str | None:
        with self._lock:
            self.requests += 1
            number = self.requests
            draw, pick = self._rng.random(), self._rng.choice(self.faults)
            fault = pick if self.enabled and draw < self.rate else None
            for rule in self._forced:
                if rule[3] > 0 and rule[0] == method and rule[1] in target:
                    rule[3] -= 1
                    fault = rule[2]
                    break
            if fault is not None:
                self.injected[fault] += 1
            self.log.append((number, method, target, fault or "-"))
        return fault

    # ------------------------------------------------------------------ serving
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_head(reader)
                headers = _headers(head)
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # let the client send its body now
                    await writer.drain()
                body = await _read_body(reader, headers, until_eof=False)
                method, target = head.split(b" ", 2)[:2]
                fault = self._decide(method.decode(), target.decode("latin-1"))
                if fault in _ERRORS:
                    status, reason, code = _ERRORS[fault]
                    xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                           f"<Message>injected by the fault proxy</Message><RequestId>fault</RequestId>"
                           f"</Error>").encode()
                    payload = b"" if method == b"HEAD" else xml
                    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                                 f"Content-Length: {len(xml)}\r\n\r\n".encode() + payload)
                    await writer.drain()
                    continue
                if fault == "reset_before":
                    _reset(writer)
                    return
                if fault == "delay":
                    await asyncio.sleep(self._delay())
                keep = await self._forward(head, body, method == b"HEAD", fault, writer)
                if not keep:
                    return
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    def _delay(self) -> float:
        with self._lock:
            return 0.02 + self._rng.random() * 0.23

    async def _forward(self, head: bytes, body: bytes, is_head: bool, fault: str | None,
                       writer: asyncio.StreamWriter) -> bool:
        """Send one request upstream and relay the answer (damaged as ``fault`` says); False: connection done."""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            while True:  # interim answers (100 Continue) were already given to the client by the proxy
                resp_head = await _read_head(up_reader)
                status = int(resp_head.split(b" ", 2)[1])
                if not 100 <= status < 200:
                    break
            resp_headers = _headers(resp_head)
            no_body = is_head or status in (204, 304)
            resp_body = b"" if no_body else await _read_body(up_reader, resp_headers, until_eof=True)
        finally:
            up_writer.close()
        delimited = no_body or "content-length" in resp_headers or "chunked" in resp_headers.get(
            "transfer-encoding", "").lower()
        if fault == "reset_after":
            if resp_body:
                writer.write(resp_head + resp_body[: len(resp_body) // 2])
                await writer.drain()
            _reset(writer)
            return False
        if fault == "truncate":
            if resp_body:
                writer.write(resp_head + resp_body[: len(resp_body) // 3])
                await writer.drain()
            writer.close()
            return False
        writer.write(resp_head + resp_body)
        await writer.drain()
        return delimited

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FaultProxy:
        """Serve on a free loopback port in a daemon thread; return self once listening."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

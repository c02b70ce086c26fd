"""A small, cheap HTTP/1.1 load generator: open loop at a fixed rate, or closed loop.

Open loop: request i is due at `start + i / rate` whatever happened to earlier requests, and its
latency is measured from that intended time, so a slow server shows up as latency instead of
silently lowering the offered rate (no coordinated omission). Requests wait for a free
keep-alive connection when all are busy; that wait counts too.

Closed loop: `concurrency` connections each send the next request as soon as the previous answer
arrived; the completed rate is the maximum the server sustains with that many clients.

The client speaks just enough HTTP/1.1 (keep-alive, Content-Length or chunked replies) over
asyncio streams, on uvloop when it is installed, to stay far cheaper per request than the
services it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.bench.stats import RunResult


class HttpError(Exception):
    """The server broke the HTTP exchange (closed the connection, sent garbage)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def build_request(method: str, path: str, host: str, body: bytes | None = None,
                  headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body is not None else head


async def read_response(reader: asyncio.StreamReader) -> Response:
    """One response from a keep-alive connection (Content-Length or chunked body)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise HttpError("connection closed before a response") from exc
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP response: {status_line[:60]!r}")
    length, chunked = None, False
    for line in header_lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    try:
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = b""
    except asyncio.IncompleteReadError as exc:
        raise HttpError("connection closed in the middle of a body") from exc
    return Response(int(parts[1]), body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


# uvicorn closes a keep-alive connection after 5 s idle; a request written into it as it
# closes fails without reaching the service. Reopening earlier keeps that race out of the
# figures, as an HTTP client's pool does.
IDLE_REOPEN_S = 4.0


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after an error or a long idle time."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.host_header = f"{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=8 * 1024 * 1024)

    async def send(self, payload: bytes) -> Response:
        """Sends prepared request bytes (see `build_request`) and reads the answer."""
        if self._writer is not None and time.monotonic() - self._last_used > IDLE_REOPEN_S:
            self.close()
        if self._writer is None:
            await self._open()
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(payload)
            response = await read_response(self._reader)
        except (OSError, HttpError, asyncio.CancelledError):
            self.close()
            raise
        self._last_used = time.monotonic()
        return response

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        return await self.send(build_request(method, path, self.host_header, body, headers))

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._reader = self._writer = None


# An action does one unit of work on a connection (usually one request) and returns the HTTP
# status that decides success; it may raise on transport errors.
Action = Callable[[int, float, Connection], Awaitable[int]]


def send_offsets(rate: float, duration_s: float) -> list[float]:
    """When each request of an open-loop run is due, in seconds after the start."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    count = round(rate * duration_s)
    return [i / rate for i in range(count)]


class _Pool:
    def __init__(self, host: str, port: int, size: int):
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
        self.opened = 0

    async def acquire(self) -> Connection:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return Connection(self.host, self.port)
        return await self.idle.get()

    def release(self, connection: Connection) -> None:
        self.idle.put_nowait(connection)

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


async def _attempt(action: Action, index: int, intended: float, connection: Connection,
                   result: RunResult, timeout_s: float) -> None:
    try:
        status = await asyncio.wait_for(action(index, intended, connection), timeout_s)
    except TimeoutError:
        connection.close()
        result.failures["timeout"] += 1
        return
    except (OSError, HttpError) as exc:
        connection.close()
        result.failures[type(exc).__name__] += 1
        return
    result.statuses[status] += 1
    result.latencies_s.append(time.perf_counter() - intended)


async def open_loop(host: str, port: int, action: Action, rate: float, duration_s: float,
                    connections: int = 128, timeout_s: float = 10.0,
                    max_pending: int | None = None) -> RunResult:
    """Offers `rate` actions per second for `duration_s`; latency from the intended time.

    With `max_pending`, a request due while that many are still waiting or in flight is
    counted as a failure ("backlog") instead of queueing without bound in the generator.
    """
    loop = asyncio.get_running_loop()
    pool = _Pool(host, port, connections)
    offsets = send_offsets(rate, duration_s)
    result = RunResult(mode="open", duration_s=duration_s, target_rate=rate,
                       scheduled=len(offsets))
    pending: set[asyncio.Task] = set()

    async def fire(index: int, intended: float) -> None:
        connection = await pool.acquire()
        try:
            await _attempt(action, index, intended, connection, result, timeout_s)
        finally:
            pool.release(connection)

    cpu_started = time.process_time()
    # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
    start = time.perf_counter() + 0.05
    for index, offset in enumerate(offsets):
        intended = start + offset
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = time.perf_counter() - intended
        result.max_dispatch_lag_s = max(result.max_dispatch_lag_s, lag)
        result.dispatch_lag_sum_s += lag
        if max_pending is not None and len(pending) >= max_pending:
            result.failures["backlog"] += 1
            continue
        task = loop.create_task(fire(index, intended))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=timeout_s + 5)
    pool.close()
    result.generator_cpu_s = time.process_time() - cpu_started
    return result


async def closed_loop(host: str, port: int, action: Action, concurrency: int,
                      duration_s: float, timeout_s: float = 10.0) -> RunResult:
    """`concurrency` workers send back to back for `duration_s`; the rate is what completed."""
    result = RunResult(mode="closed", duration_s=duration_s)
    stop_at = time.perf_counter() + duration_s
    counter = iter(range(1 << 62))

    async def worker() -> None:
        connection = Connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                index = next(counter)
                result.scheduled += 1
                await _attempt(action, index, time.perf_counter(), connection, result,
                               timeout_s)
        finally:
            connection.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.duration_s = time.perf_counter() - started
    result.generator_cpu_s = time.process_time() - cpu_started
    return result


def run(coroutine: Awaitable):
    """Runs a load coroutine on uvloop when available (cheaper per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


async def settle(host: str, port: int, quiet_ms: float = 20.0, limit_s: float = 30.0) -> float:
    """Waits until the server answers /healthz quickly three times in a row (its backlog of
    abandoned requests is gone); returns the seconds waited."""
    started = time.perf_counter()
    connection = Connection(host, port)
    quick = 0
    try:
        while quick < 3 and time.perf_counter() - started < limit_s:
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(connection.request("GET", "/healthz"), 5)
            except (OSError, HttpError, TimeoutError):
                connection.close()
                await asyncio.sleep(0.2)
                quick = 0
                continue
            quick = quick + 1 if (time.perf_counter() - t0) * 1000 < quiet_ms else 0
            await asyncio.sleep(0.05)
    finally:
        connection.close()
    return time.perf_counter() - started


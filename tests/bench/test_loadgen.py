"""The load generator: schedule, HTTP parsing, open-loop latency without coordinated omission."""

from __future__ import annotations

import asyncio

import pytest

from services.bench.loadgen import (
    Connection,
    HttpError,
    build_request,
    closed_loop,
    open_loop,
    read_response,
    send_offsets,
    settle,
)


def test_send_offsets_are_evenly_spaced_at_the_rate():
    offsets = send_offsets(500, 2)
    assert len(offsets) == 1000
    assert offsets[0] == 0
    assert offsets[1] == pytest.approx(0.002)
    assert offsets[-1] == pytest.approx(1.998)


@pytest.mark.parametrize("rate,duration", [(0, 1), (10, 0), (-1, 5)])
def test_send_offsets_refuse_nonsense(rate, duration):
    with pytest.raises(ValueError):
        send_offsets(rate, duration)


def test_build_request_sets_host_and_length():
    raw = build_request("POST", "/v1/events", "127.0.0.1:8001", b'{"a":1}',
                        {"Content-Type": "application/json"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [b"POST /v1/events HTTP/1.1", b"Host: 127.0.0.1:8001",
                                  b"Content-Type: application/json", b"Content-Length: 7"]
    assert body == b'{"a":1}'


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_read_response_handles_length_chunked_and_back_to_back_replies():
    async def scenario():
        reader = _reader(
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"HTTP/1.1 204 No Content\r\n\r\n"
        )
        return [await read_response(reader) for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert (first.status, first.body) == (202, b"ok")
    assert (second.status, second.body) == (200, b"abcde")
    assert (third.status, third.body) == (204, b"")


@pytest.mark.parametrize("data", [b"", b"garbage\r\n\r\n",
                                  b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"])
def test_read_response_reports_broken_exchanges(data):
    async def scenario():
        return await read_response(_reader(data))

    with pytest.raises(HttpError):
        asyncio.run(scenario())


async def _serial_server(service_s: float, status: int = 200):
    """A server that answers one request at a time (a global lock), `service_s` each."""
    lock = asyncio.Lock()

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                async with lock:
                    await asyncio.sleep(service_s)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _post(index, intended, connection: Connection) -> int:
    return (await connection.request("POST", "/x", b"{}")).status


def test_open_loop_offers_the_full_rate_and_counts_queueing_as_latency():
    # The server does at most 20 requests/s; we offer 40/s for 1 s. A closed-loop client would
    # report ~50 ms per request; measured from the intended send time, the backlog shows.
    async def scenario():
        server, port = await _serial_server(0.05)
        async with server:
            return await open_loop("127.0.0.1", port, _post, rate=40, duration_s=1.0,
                                   connections=64)

    result = asyncio.run(scenario())
    assert result.scheduled == 40
    assert result.ok == 40 and result.errors == 0
    latency = result.latency()
    assert latency.p50_ms > 300  # half the requests waited behind the backlog
    assert latency.max_ms > 900
    assert result.max_dispatch_lag_s < 0.1  # the generator itself kept its schedule


def test_open_loop_below_capacity_measures_the_service_time():
    async def scenario():
        server, port = await _serial_server(0.01)
        async with server:
            return await open_loop("127.0.0.1", port, _post, rate=20, duration_s=1.0)

    latency = asyncio.run(scenario()).latency()
    assert 10 <= latency.p50_ms < 60


def test_closed_loop_rate_is_bounded_by_the_server():
    async def scenario():
        server, port = await _serial_server(0.02)
        async with server:
            return await closed_loop("127.0.0.1", port, _post, concurrency=4, duration_s=1.0)

    result = asyncio.run(scenario())
    assert 25 <= result.achieved_rate <= 55  # one at a time, 20 ms each: ~50/s at most
    assert result.errors == 0


def test_error_statuses_and_refused_connections_count_as_errors():
    async def scenario():
        server, port = await _serial_server(0.0, status=503)
        async with server:
            failing = await open_loop("127.0.0.1", port, _post, rate=50, duration_s=0.2)
        refused = await open_loop("127.0.0.1", port, _post, rate=50, duration_s=0.2)
        return failing, refused

    failing, refused = asyncio.run(scenario())
    assert failing.statuses == {503: 10} and failing.errors == 10
    assert refused.ok == 0 and refused.errors == 10 and sum(refused.failures.values()) == 10


def test_open_loop_backlog_limit_counts_instead_of_queueing():
    async def scenario():
        server, port = await _serial_server(0.2)
        async with server:
            return await open_loop("127.0.0.1", port, _post, rate=50, duration_s=0.4,
                                   connections=2, max_pending=3)

    result = asyncio.run(scenario())
    assert result.scheduled == 20
    assert result.failures["backlog"] >= 10
    assert result.ok + result.failures["backlog"] + result.failures["timeout"] == 20


def test_settle_waits_for_quick_answers_and_gives_up_at_its_limit():
    async def scenario():
        fast, fast_port = await _serial_server(0.001)
        slow, slow_port = await _serial_server(0.05)
        async with fast, slow:
            return (await settle("127.0.0.1", fast_port),
                    await settle("127.0.0.1", slow_port, quiet_ms=20, limit_s=0.5))

    quick, limited = asyncio.run(scenario())
    assert quick < 0.5
    assert 0.5 <= limited < 1.5


def test_connection_idle_longer_than_the_server_keeps_it_is_reopened(monkeypatch):
    """The server closes a connection after 0.2 s idle, as uvicorn does after 5 s."""
    from services.bench import loadgen

    monkeypatch.setattr(loadgen, "IDLE_REOPEN_S", 0.1)

    async def scenario():
        accepted = []

        async def handle(reader, writer):
            accepted.append(writer)
            try:
                while True:
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.2)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        connection = Connection("127.0.0.1", server.sockets[0].getsockname()[1])
        statuses = [(await connection.request("GET", "/x")).status]
        await asyncio.sleep(0.05)  # idle, but not for long: the same connection
        statuses.append((await connection.request("GET", "/x")).status)
        await asyncio.sleep(0.3)  # the server has closed it by now
        statuses.append((await connection.request("GET", "/x")).status)
        connection.close()
        server.close()
        return statuses, len(accepted)

    statuses, connections = asyncio.run(scenario())
    assert statuses == [200, 200, 200]
    assert connections == 2

"""The probe against tiny servers on loopback: every outcome is recorded, nothing raises."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from pathlib import Path

from halab.target.probe import ProbeConfig, parse_response, request_once, run_probe


def test_parse_response() -> None:
    raw = b'HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\n{"message":"Hello from web-2"}'
    assert parse_response(raw) == (200, "web-2", None)
    raw = b'HTTP/1.1 503 Service Unavailable\r\n\r\n{"error": "x", "lb": "lb-1"}'
    assert parse_response(raw) == (503, None, "lb-1")


async def _serve(handler: object) -> tuple[asyncio.base_events.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    return server, port


def test_ok_refused_and_timeout() -> None:
    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"message":"Hello from web-1"}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        writer.close()

    async def body() -> None:
        ok_server, ok_port = await _serve(hello)
        hang_server, hang_port = await _serve(silent)
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            closed_port = free.getsockname()[1]
        try:
            ok = await request_once(ProbeConfig(f"http://127.0.0.1:{ok_port}/"), 0)
            assert ok.ok and ok.backend == "web-1"
            # Plain HTTP: connected, then the first byte, no TLS phase; all within the request.
            assert ok.connect_s is not None and ok.first_byte_s is not None
            assert 0 <= ok.connect_s <= ok.first_byte_s <= ok.latency and ok.tls_s is None
            refused = await request_once(ProbeConfig(f"http://127.0.0.1:{closed_port}/"), 1)
            assert refused.outcome == "refused"
            hung = await request_once(
                ProbeConfig(f"http://127.0.0.1:{hang_port}/", total_timeout=0.1), 2
            )
            assert hung.outcome == "timeout" and hung.latency < 0.5
            # It connected; no answer ever started.
            assert hung.connect_s is not None and hung.first_byte_s is None
            samples = await run_probe(
                ProbeConfig(f"http://127.0.0.1:{ok_port}/", interval=0.01), 0.2
            )
            assert 15 <= len(samples) <= 22 and all(s.ok for s in samples)
        finally:
            ok_server.close()
            hang_server.close()

    asyncio.run(body())


def test_a_sequential_probe_has_one_request_in_flight() -> None:
    in_flight = [0]
    most = [0]

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.05)  # longer than the interval: a timed probe would overlap
        writer.write(b'HTTP/1.1 200 OK\r\n\r\n{"message":"Hello from web-1"}')
        await writer.drain()
        writer.close()
        in_flight[0] -= 1

    async def body(sequential: bool) -> int:
        server, port = await _serve(slow)
        cfg = ProbeConfig(
            f"http://127.0.0.1:{port}/",
            interval=0.01,
            total_timeout=1.0,
            sequential=sequential,
            max_requests=6,
        )
        try:
            samples = await run_probe(cfg, 5.0)
        finally:
            server.close()
        assert len(samples) == 6 and all(s.ok for s in samples)
        return most[0]

    assert asyncio.run(body(sequential=False)) > 1
    most[0] = 0
    assert asyncio.run(body(sequential=True)) == 1


def test_the_command_line_carries_every_setting() -> None:
    cfg = ProbeConfig("https://203.0.113.10/", interval=0.1, sequential=True, max_requests=20)
    argv = cfg.argv(30.0, Path("/tmp/x.jsonl"))
    assert argv[argv.index("--url") + 1] == "https://203.0.113.10/"
    assert argv[argv.index("--max-requests") + 1] == "20" and "--sequential" in argv
    assert "--sequential" not in replace(cfg, sequential=False).argv(1.0, Path("o"))

"""A small, bounded HTTP(S) load generator: requests/s over keep-alive connections.

``connections`` clients each send requests back to back on one persistent HTTP/1.1 connection
(reconnecting after an error) until ``duration`` ends; the result counts 2xx answers. It is
Python, so on a small machine it measures the *relative* cost of two paths (through the VIP vs
straight to one web node) more than the servers' ceiling: compare ratios, not absolute numbers.

Command line (prints one JSON object)::

    python -m halab.nslab.loadgen --url https://203.0.113.10/ --connections 16 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from halab.plumbing.tls import unverified_context


@dataclass
class LoadResult:
    """What one load run measured."""

    url: str
    connections: int
    seconds: float
    ok: int
    errors: int

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        """Plain data, with the rate."""
        return {**asdict(self), "rps": round(self.rps, 1)}


async def _client(url: str, deadline: float, counts: list[int], max_requests: int) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    ctx = unverified_context() if tls else None
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    sent = 0
    while time.monotonic() < deadline and sent < max_requests:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, stream = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx), 2.0
            )
            writer = stream
            while time.monotonic() < deadline and sent < max_requests:
                sent += 1
                stream.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 2.0)
                status = head.split(b" ", 2)[1]
                counts[0 if status.startswith(b"2") else 1] += 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            counts[1] += 1
            await asyncio.sleep(0.01)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 0.2)


async def run_load(
    url: str, connections: int = 16, duration: float = 5.0, max_requests: int = 1_000_000
) -> LoadResult:
    """Load ``url`` for ``duration`` seconds (bounded also by ``max_requests`` per connection)."""
    counts = [0, 0]
    start = time.monotonic()
    deadline = start + duration
    await asyncio.gather(
        *(_client(url, deadline, counts, max_requests) for _ in range(connections))
    )
    return LoadResult(url, connections, time.monotonic() - start, counts[0], counts[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Run once and print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m halab.nslab.loadgen", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run_load(args.url, args.connections, min(args.duration, 120.0)))
    print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

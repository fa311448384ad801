"""The drill client: one HTTP(S) request on a fixed schedule, every result recorded.

A request starts every ``interval`` seconds whether or not the previous ones finished (a hung
request must not hide the failures behind it), each on a new TCP connection with a connect
timeout and a total timeout, like a browser retrying a page. Every request becomes a
:class:`Sample`: start time (wall clock, comparable with fault-injection times on the same
machine or NTP-synced hosts), latency, outcome, HTTP status, and the web node that answered
(from the app's ``Hello from <host>`` body).

Nothing here knows about namespaces: the lab runs this module inside the client namespace, and
the same code can run on any machine against a real lab's public URL.

Command line (used by the lab; writes JSON lines)::

    python -m halab.target.probe --url https://203.0.113.10/ --interval 0.02 --duration 10 --out F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from halab.plumbing.tls import unverified_context

#: Outcomes: ``ok`` is a 2xx answer; everything else is a failed request.
OK = "ok"
HTTP_ERROR = "http_error"
CONNECT_TIMEOUT = "connect_timeout"
TIMEOUT = "timeout"
REFUSED = "refused"
RESET = "reset"
TLS_ERROR = "tls_error"
ERROR = "error"

#: The phases of a request that a :class:`Sample` times, in the order they end.
PHASES = ("connect_s", "tls_s", "first_byte_s")

_BACKEND = re.compile(r"(?:Hello|test page) from ([A-Za-z0-9.-]+)")
_LB = re.compile(r'"lb":\s*"([A-Za-z0-9.-]+)"')


@dataclass(frozen=True)
class ProbeConfig:
    """What to request and how patiently."""

    url: str
    interval: float = 0.02
    connect_timeout: float = 0.2
    total_timeout: float = 0.3
    verify_tls: bool = False
    #: One request in flight at a time: the next starts when the previous has ended (and not
    #: before its slot). Where a request takes longer than the interval (TLS on emulated VMs),
    #: requests overlap and reach the balancer in another order than they were sent; what a
    #: round robin hands out is only seen one request after another.
    sequential: bool = False
    #: Stop after this many requests (None: as many as the duration allows).
    max_requests: int | None = None

    def argv(self, duration: float, out: Path) -> list[str]:
        """The arguments of ``python -m halab.target.probe`` for this config (both lab targets)."""
        args = [
            "--url", self.url, "--interval", str(self.interval),
            "--connect-timeout", str(self.connect_timeout),
            "--total-timeout", str(self.total_timeout), "--duration", str(duration),
            "--out", str(out),
        ]  # fmt: skip
        if self.sequential:
            args.append("--sequential")
        if self.max_requests is not None:
            args += ["--max-requests", str(self.max_requests)]
        return args


@dataclass(frozen=True)
class Sample:
    """One request."""

    seq: int
    t: float
    latency: float
    outcome: str
    status: int | None = None
    backend: str | None = None
    lb: str | None = None
    error: str | None = None
    #: Where the time went, from the request's start: TCP connected, TLS handshake done (None
    #: for plain HTTP), first byte of the answer. None where the request never got that far.
    connect_s: float | None = None
    tls_s: float | None = None
    first_byte_s: float | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.outcome == OK

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


def _ssl_context(verify: bool) -> ssl.SSLContext:
    return ssl.create_default_context() if verify else unverified_context()


def parse_response(data: bytes) -> tuple[int | None, str | None, str | None]:
    """(status, web node, LB) from a raw HTTP response."""
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    text = body.decode(errors="replace")
    backend = m.group(1) if (m := _BACKEND.search(text)) else None
    lb = m.group(1) if (m := _LB.search(text)) else None
    return status, backend, lb


async def request_once(  # noqa: PLR0911 - one outcome per failure kind
    cfg: ProbeConfig, seq: int, ctx: ssl.SSLContext | None = None
) -> Sample:
    """One request on a new connection; never raises, every failure is an outcome."""
    url = urlsplit(cfg.url)
    host = url.hostname or "localhost"
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    path = url.path or "/"
    t = time.time()
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    writer: asyncio.StreamWriter | None = None

    phases: dict[str, float] = {}

    def mark(phase: str) -> None:
        phases[phase] = round(time.perf_counter() - t0, 6)

    def done(outcome: str, **kw: Any) -> Sample:
        return Sample(
            seq,
            t,
            time.perf_counter() - t0,
            outcome,
            **kw,
            connect_s=phases.get("connect_s"),
            tls_s=phases.get("tls_s"),
            first_byte_s=phases.get("first_byte_s"),
        )

    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), cfg.connect_timeout)
        except TimeoutError:
            return done(CONNECT_TIMEOUT, error="TCP connect")
        mark("connect_s")
        remaining = cfg.total_timeout - (time.perf_counter() - t0)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                sock=sock,
                ssl=(ctx or _ssl_context(cfg.verify_tls)) if tls else None,
                server_hostname=host if tls else None,
            ),
            max(remaining, 0.001),
        )
        if tls:
            mark("tls_s")
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())  # type: ignore[union-attr]  # set just above
        remaining = cfg.total_timeout - (time.perf_counter() - t0)
        data = await asyncio.wait_for(reader.read(65536), max(remaining, 0.001))
        if data:  # an empty read is the end: no answer came
            mark("first_byte_s")
            remaining = cfg.total_timeout - (time.perf_counter() - t0)
            data += await asyncio.wait_for(reader.read(-1), max(remaining, 0.001))
        status, backend, lb = parse_response(data)
        if status is None:
            return done(ERROR, error="empty or malformed response")
        outcome = OK if 200 <= status < 300 else HTTP_ERROR
        return done(outcome, status=status, backend=backend, lb=lb)
    except TimeoutError:
        return done(TIMEOUT, error="total timeout")
    except ConnectionRefusedError:
        return done(REFUSED, error="connection refused")
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
        return done(RESET, error=type(exc).__name__)
    except ssl.SSLError as exc:
        return done(TLS_ERROR, error=str(exc)[:120])
    except OSError as exc:
        return done(ERROR, error=f"{type(exc).__name__}: {exc}"[:120])
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.05)
        else:
            sock.close()


async def run_probe(
    cfg: ProbeConfig, duration: float, stop: asyncio.Event | None = None
) -> list[Sample]:
    """Requests every ``cfg.interval`` for ``duration`` seconds (or until ``stop`` is set).

    Bounded in count (``duration / interval`` or ``cfg.max_requests``) and in time (no request
    starts after ``duration``; each has its own total timeout).
    """
    stop = stop or asyncio.Event()
    ctx = _ssl_context(cfg.verify_tls)
    limit = int(duration / cfg.interval) + 1
    if cfg.max_requests is not None:
        limit = min(limit, cfg.max_requests)
    tasks: list[asyncio.Task[Sample]] = []
    start = time.perf_counter()
    for seq in range(limit):
        if stop.is_set() or time.perf_counter() - start > duration:
            break
        tasks.append(asyncio.create_task(request_once(cfg, seq, ctx)))
        if cfg.sequential:
            await tasks[-1]
        # Scheduled against the start, so a slow iteration does not shift every later one.
        delay = start + (seq + 1) * cfg.interval - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return list(await asyncio.gather(*tasks))


def write_samples(samples: Iterable[Sample], path: Path) -> None:
    """One JSON object per line."""
    with path.open("w", encoding="utf-8") as out:
        for s in samples:
            out.write(json.dumps(s.to_json()) + "\n")


def read_samples(path: Path) -> list[Sample]:
    """Inverse of :func:`write_samples`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Sample.from_json(json.loads(line)) for line in lines if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Probe until the duration ends or SIGTERM/SIGINT; write the samples; print ``done N``."""
    parser = argparse.ArgumentParser(prog="python -m halab.target.probe", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--connect-timeout", type=float, default=0.2)
    parser.add_argument("--total-timeout", type=float, default=0.3)
    parser.add_argument("--duration", type=float, required=True, help="upper bound (s)")
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--sequential", action="store_true", help="one request at a time")
    parser.add_argument("--out", required=True, help="JSON-lines file for the samples")
    args = parser.parse_args(argv)
    cfg = ProbeConfig(
        args.url,
        args.interval,
        args.connect_timeout,
        args.total_timeout,
        sequential=args.sequential,
        max_requests=args.max_requests,
    )

    async def body() -> list[Sample]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("started", flush=True)
        return await run_probe(cfg, args.duration, stop)

    samples = asyncio.run(body())
    write_samples(samples, Path(args.out))
    print(f"done {len(samples)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

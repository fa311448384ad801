"""A time bound for one Pulumi operation run through the Automation API.

``Stack.up`` and its siblings have no timeout: when a provider call never returns (an SSH session
to a VM that stopped answering, a libvirt call that blocks), the operation, and with it the whole
run, waits until CI kills it, and no clean-up runs. The Automation API starts the CLI as a child
of this process, so the watchdog knows it by parentage: the direct children that appeared after
the operation began, each with its start time (:mod:`halab.plumbing.procs`, never a name). At the
deadline it first writes what was still in flight (``on_expiry``), then sends the CLI SIGINT,
which makes Pulumi stop starting new steps and record what it did, and after ``grace_s`` stops
the CLI and its plugins hard. The operation then raises in its own thread, and the caller's
clean-up runs as after any failure.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType

from halab.plumbing import procs


class OperationTimeoutError(RuntimeError):
    """A Pulumi operation outlived its bound and was stopped."""


class OperationWatchdog:
    """``with OperationWatchdog("up", 900): stack.up(...)``: at most 900 s, then stopped.

    ``on_expiry`` runs once, in the watchdog's thread, before any signal: it should only read
    and write reports (what the engine had in flight, what libvirt holds), never block long.
    """

    def __init__(
        self,
        name: str,
        timeout_s: float,
        *,
        grace_s: float = 60.0,
        on_expiry: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.on_expiry = on_expiry
        self.fired = False
        #: How the CLI ended after the deadline: "SIGINT" or "SIGKILL" (empty when not fired).
        self.ended_by = ""
        self._done = threading.Event()
        self._before: dict[int, int] = {}
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{name}", daemon=True)

    def __enter__(self) -> OperationWatchdog:
        self._before = procs.direct_children(os.getpid())
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(self.grace_s + 30)
        if self.fired:
            raise OperationTimeoutError(
                f"{self.name} did not end within {self.timeout_s:.0f} s; stopped by "
                f"{self.ended_by or 'nothing (no CLI found)'}"
            ) from exc

    def _started_since(self) -> list[tuple[int, int]]:
        now = procs.direct_children(os.getpid())
        return [(pid, st) for pid, st in now.items() if self._before.get(pid) != st]

    def _watch(self) -> None:
        if self._done.wait(self.timeout_s):
            return
        self.fired = True
        if self.on_expiry is not None:
            try:
                self.on_expiry()
            except Exception as exc:  # a failed report must never keep the CLI alive
                print(f"e2e: watchdog: the report at the deadline failed: {exc}", flush=True)
        targets = self._started_since()
        for pid, start in targets:
            procs.signal_pid(pid, start, signal.SIGINT)
        if targets:
            self.ended_by = "SIGINT"
        if procs.wait_gone(targets, self.grace_s):
            procs.kill_tree(targets)
            self.ended_by = "SIGKILL"

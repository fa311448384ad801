"""What every drill is made of: its run context, its result, the probe and VIP watcher around
its body, and the small judgements drills share (who is master, who should take over).

The bounds in :class:`Bounds` are generous defaults for the test run; the benchmark reports the
measured figures instead of judging them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from halab.drills.analysis import Event
from halab.drills.baseline import Baseline
from halab.model.drill_settings import DrillSettings
from halab.target.probe import ProbeConfig, Sample
from halab.target.protocol import DrillTarget, ProbeRun

#: The least a drill probes before its fault (a lab in namespaces answers in milliseconds).
LEAD_S = 0.8


@dataclass(frozen=True)
class Bounds:
    """Pass/fail limits: generous defaults for the normal test run."""

    max_lb_outage_s: float = 2.0
    max_haproxy_outage_s: float = 2.0
    max_app_crash_failures: int = 5
    min_alternation: float = 0.9
    max_heal_s: float = 2.0


@dataclass
class DrillResult:
    """Everything one drill saw, its figures and its checks."""

    name: str
    title: str
    stack: str
    settings: DrillSettings
    started: float
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check holds."""
        return all(self.checks.values())

    def to_json(self) -> dict[str, Any]:
        """Plain data with every sample."""
        return {
            "name": self.name,
            "title": self.title,
            "stack": self.stack,
            "settings": asdict(self.settings),
            "started": self.started,
            "passed": self.passed,
            "figures": self.figures,
            "checks": self.checks,
            "notes": self.notes,
            "events": [e.to_json() for e in self.events],
            "samples": [s.to_json() for s in self.samples],
        }


@dataclass
class DrillRun:
    """One run of drills against one target: what each drill reads, and what one drill leaves
    for the next (the LB ``lb-hard-failure`` crashed, which ``master-returns`` brings back)."""

    target: DrillTarget
    stack: str
    bounds: Bounds
    probe: ProbeConfig
    rng: random.Random
    load_seconds: float = 60.0
    #: How long the VIP may take to settle before each drill (slow guests take longer).
    settle_timeout_s: float = 20.0
    crashed: str | None = None
    #: The lab's pace with nothing wrong, where it was measured (the probe is sized from it).
    baseline: Baseline | None = None

    @property
    def normal_latency_s(self) -> float:
        """The slow end of a request's latency with nothing wrong (0 where not measured)."""
        return self.baseline.p90_s if self.baseline is not None else 0.0

    @property
    def lead_s(self) -> float:
        """How long a drill probes before its fault: two requests sent and answered at least,
        so "healthy before the fault" rests on what the client saw."""
        return max(LEAD_S, 2 * self.probe.interval + self.normal_latency_s)

    def tail_s(self, floor: float) -> float:
        """How long a drill probes after the lab recovered: ``floor``, or two more requests
        sent and answered where the probe is slower than that."""
        return max(floor, 2 * self.probe.interval + self.normal_latency_s)


class VipWatcher:
    """Polls the VIP holders every ``interval`` in a thread and records each change as an event."""

    def __init__(self, target: DrillTarget, interval: float = 0.01, max_s: float = 600.0) -> None:
        self.target = target
        self.interval = interval
        self.max_s = max_s
        self.events: list[Event] = []
        self.holders: list[str] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-watcher", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            with self.target.vip_reader() as read:
                previous: set[str] = set(read())
                self.holders = sorted(previous)
                self.events.append(Event(time.time(), "vip-initial", ",".join(self.holders) or "-"))
                self._ready.set()
                deadline = time.monotonic() + self.max_s
                while not self._stop.is_set() and time.monotonic() < deadline:
                    now_holders = set(read())
                    t = time.time()
                    for host in sorted(now_holders - previous):
                        self.events.append(Event(t, "vip", "+VIP", host))
                    for host in sorted(previous - now_holders):
                        self.events.append(Event(t, "vip", "-VIP", host))
                    previous = now_holders
                    self.holders = sorted(now_holders)
                    self._stop.wait(self.interval)
        except BaseException as exc:  # reported by stop(); a watcher must not die silently
            self.error = exc
            self._ready.set()

    def __enter__(self) -> VipWatcher:
        self._thread.start()
        self._ready.wait(10.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float) -> float | None:
        """Wait until ``check(holders)``; the time it became true, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            holders = list(self.holders)
            if check(holders):
                return time.time()
            if self.error is not None:
                raise RuntimeError(f"VIP watcher failed: {self.error}")
            time.sleep(0.005)
        return None


class Recorder:
    """Collects events during a drill and runs the probe + VIP watcher around its body."""

    def __init__(self, target: DrillTarget, probe: ProbeConfig) -> None:
        self.target = target
        self.probe = probe
        self.events: list[Event] = []
        #: The probe of the block that :meth:`observing` runs now.
        self.run: ProbeRun | None = None

    def mark(
        self, kind: str, detail: str, host: str | None = None, t: float | None = None
    ) -> float:
        """Record an event (now, or at ``t``)."""
        t = time.time() if t is None else t
        self.events.append(Event(t, kind, detail, host))
        return t

    @contextmanager
    def observing(self, max_duration: float) -> Iterator[tuple[VipWatcher, list[Sample]]]:
        """Probe + watch the VIP for the block; the sample list is filled when it ends."""
        samples: list[Sample] = []
        with VipWatcher(self.target) as watcher:
            run = self.run = self.target.start_probe(self.probe, max_duration)
            try:
                yield watcher, samples
            finally:
                self.run = None
                samples.extend(run.stop())
                self.events.extend(watcher.events)


def new_result(name: str, title: str, target: DrillTarget, stack: str) -> DrillResult:
    """A drill's result before it ran: its name, title and the target's settings now."""
    return DrillResult(name, title, stack, target.settings, time.time())


def finish(result: DrillResult, rec: Recorder, samples: list[Sample]) -> DrillResult:
    """The result with every sample and event, in order."""
    result.samples = sorted(samples, key=lambda s: s.seq)
    result.events = sorted(rec.events, key=lambda e: e.t)
    return result


def settle(target: DrillTarget, exclude: str | None = None, timeout: float = 20.0) -> list[str]:
    """Wait until one LB holds the VIP and nothing changed for a few adverts
    (:attr:`~halab.model.drill_settings.DrillSettings.settle_quiet_s`).

    A drill must start from a settled pair: right after a repair, a preempting LB takes the VIP
    back within about an advert interval, and that move would land inside the next drill.
    ``exclude``: a crashed LB whose namespace still shows the stale VIP.
    """
    quiet = target.settings.settle_quiet_s
    deadline = time.monotonic() + timeout
    with VipWatcher(target) as watcher:
        last = [h for h in watcher.holders if h != exclude]
        since = time.monotonic()
        while time.monotonic() < deadline:
            now = [h for h in watcher.holders if h != exclude]
            if now != last:
                last, since = now, time.monotonic()
            elif len(now) == 1 and time.monotonic() - since >= quiet:
                return now
            time.sleep(0.01)
    raise RuntimeError(f"the VIP did not settle on one LB within {timeout:.0f}s (holders {last})")


def check_healthy_before(result: DrillResult, samples: Sequence[Sample], t0: float) -> None:
    """Add a check that the client saw no failure before the fault, so an earlier drill's
    after-effects (e.g. a stale ARP entry on the edge) are not counted as this drill's."""
    # Only requests that had finished before the fault: those in flight at it belong to it.
    before = [s for s in samples if s.t + s.latency < t0]
    result.checks["client healthy before the fault"] = bool(before) and all(s.ok for s in before)


def master_and_backups(target: DrillTarget, holders: Sequence[str]) -> tuple[str, list[str]]:
    """The LB holding the VIP now (the preferred master if none is seen yet), and the others,
    highest priority first: the first of them is the one that should take over."""
    master = holders[0] if holders else target.lb_names[0]
    return master, [n for n in target.lb_names if n != master]


def holder_among(holders: Sequence[str], candidates: Sequence[str]) -> bool:
    """True when exactly one LB holds the VIP and it is one of ``candidates``."""
    return len(holders) == 1 and holders[0] in candidates


def crash_the_master(target: DrillTarget) -> str:
    """Crash whichever LB holds the VIP (the preferred master if none does) and wait until a
    backup has surely taken over (a second at least); its name."""
    with VipWatcher(target) as watcher:
        master, _backups = master_and_backups(target, watcher.holders)
    target.crash_host(master)
    time.sleep(max(1.0, target.settings.vip_moved_s))
    return master

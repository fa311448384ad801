"""Failover drills: fault injection while the probe runs, judged from what the client saw.

A drill talks to a :class:`DrillTarget`: something that can start the probe near the client,
report which LB holds the VIP, and inject and repair faults. :class:`halab.lab.lab.Lab` is the
namespace implementation; a real lab of VMs can implement the same protocol (faults over SSH)
and reuse every drill, the analysis and the report unchanged.

Each drill returns a :class:`DrillResult` with every sample, every event (faults, repairs, VIP
changes), the figures and named checks. The bounds in :class:`Bounds` are generous defaults for
the test run; the benchmark reports the measured figures instead of judging them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from halab.lab import analysis
from halab.lab.analysis import Event
from halab.lab.probe import ProbeConfig, Sample
from halab.roles import Role
from halab.spec import STANDARD_DOWN_TIMER_ADVERTS, LabSpec


class ProbeRun(Protocol):
    """A probe started by a target; :meth:`stop` ends it and returns every sample."""

    def wait(self, timeout: float) -> None:
        """Wait until the probe ends by itself (its request count), ``timeout`` at most."""
        ...

    def stop(self) -> list[Sample]:
        """End the probe (or wait for its end) and collect its samples."""
        ...


class DrillTarget(Protocol):
    """What a drill needs from a lab, whatever the lab runs on."""

    @property
    def lb_names(self) -> list[str]:
        """The LBs (two or more), preferred master first, then by falling priority."""
        ...

    @property
    def web_names(self) -> list[str]:
        """The web nodes."""
        ...

    @property
    def public_url(self) -> str:
        """What the client requests."""
        ...

    @property
    def settings(self) -> dict[str, Any]:
        """The knobs that decide the figures (advert interval, checks, retries...)."""
        ...

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ProbeRun:
        """Start the probe near the client (returns once it sends)."""
        ...

    def vip_reader(self) -> AbstractContextManager[Callable[[], list[str]]]:
        """A cheap repeated reader of the VIP holders, owned by the calling thread."""
        ...

    def crash_host(self, host: str) -> float:
        """Freeze then kill every process of a host; returns the injection time."""
        ...

    def restore_host(self, host: str) -> float:
        """Start a host's daemons again."""
        ...

    def kill_daemon(self, host: str, name: str) -> float:
        """SIGKILL one daemon (``haproxy``, ``uvicorn``...)."""
        ...

    def start_daemon(self, host: str, name: str) -> float:
        """Start one daemon again."""
        ...

    def wait_backends(self, timeout: float = 30.0, up: Sequence[str] | None = None) -> float:
        """Wait until the LBs see the web nodes UP."""
        ...

    def set_vrrp_partition(self, cut: bool) -> float:
        """Cut or heal VRRP between the LBs."""
        ...

    def cpu_hog(self, seconds: float) -> AbstractContextManager[None]:
        """Keep every core busy for the block (bounded by ``seconds``)."""
        ...

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """Stop a host for ``seconds``, then let it go on; the moment and the real stop time."""
        ...

    def set_bfd_loss(self, cut: bool) -> float:
        """Drop or pass BFD between the LBs (VRRP still passes)."""
        ...


class SpecDrillTarget:
    """The parts of :class:`DrillTarget` that every target (namespaces, VMs) reads off its spec."""

    spec: LabSpec

    @property
    def lb_names(self) -> list[str]:
        """The LBs, preferred master (highest VRRP priority) first, then by falling priority."""
        return [h.name for h in self.spec.lbs_by_priority]

    @property
    def web_names(self) -> list[str]:
        """The web nodes."""
        return [h.name for h in self.spec.hosts_with_role(Role.WEB)]

    @property
    def public_url(self) -> str:
        """The URL clients use: through the edge when there is one."""
        return self.spec.public_url

    @property
    def settings(self) -> dict[str, Any]:
        """The spec values that decide the drills' figures."""
        return drill_settings(self.spec)


def drill_settings(spec: LabSpec) -> dict[str, Any]:
    """The spec values that decide the drills' figures (kept in every report)."""
    return {
        "stack": spec.stack,
        "vrrp_version": spec.vrrp_version,
        "vrrp_advert_interval_ms": spec.vrrp_advert_interval_ms,
        "vrrp_preempt": spec.vrrp_preempt,
        "vrrp_realtime": spec.vrrp_realtime,
        "vrrp_priorities": list(spec.lb_priorities),
        "vrrp_fast_detection": spec.vrrp_fast_detection,
        "vrrp_down_timer_adverts": spec.down_timer_adverts,
        "vrrp_startup_delay_s": spec.vrrp_startup_delay_s,
        "bfd_interval_ms": spec.bfd_interval_ms if spec.vrrp_fast_detection else None,
        "bfd_multiplier": spec.bfd_multiplier if spec.vrrp_fast_detection else None,
        "health_check_interval_ms": spec.health_check_interval_ms,
        "health_check_fall": spec.health_check_fall,
        "health_check_rise": spec.health_check_rise,
        "haproxy_retries": spec.haproxy_retries,
        "haproxy_redispatch": spec.haproxy_redispatch,
        "haproxy_retry_on": spec.haproxy_retry_on,
        "haproxy_timeout_connect_ms": spec.haproxy_timeout_connect_ms,
        "web_nodes": len(spec.web_hosts),
    }


#: Requests of the round-robin drill, one after another.
ROUND_ROBIN_REQUESTS = 20


@dataclass(frozen=True)
class Bounds:
    """Pass/fail limits: generous defaults for the normal test run."""

    max_lb_outage_s: float = 2.0
    max_haproxy_outage_s: float = 2.0
    max_app_crash_failures: int = 5
    max_time_to_503_s: float = 1.0
    max_503_latency_s: float = 1.5
    min_alternation: float = 0.9
    max_heal_s: float = 2.0


@dataclass
class DrillResult:
    """Everything one drill saw, its figures and its checks."""

    name: str
    title: str
    stack: str
    settings: dict[str, Any]
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
            "settings": self.settings,
            "started": self.started,
            "passed": self.passed,
            "figures": self.figures,
            "checks": self.checks,
            "notes": self.notes,
            "events": [e.to_json() for e in self.events],
            "samples": [s.to_json() for s in self.samples],
        }


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


def _result(name: str, title: str, target: DrillTarget, stack: str) -> DrillResult:
    return DrillResult(name, title, stack, dict(target.settings), time.time())


def _finish(result: DrillResult, rec: Recorder, samples: list[Sample]) -> DrillResult:
    result.samples = sorted(samples, key=lambda s: s.seq)
    result.events = sorted(rec.events, key=lambda e: e.t)
    return result


def _advert_s(target: DrillTarget) -> float:
    return float(target.settings.get("vrrp_advert_interval_ms", 1000)) / 1000


def settle(target: DrillTarget, exclude: str | None = None, timeout: float = 20.0) -> list[str]:
    """Wait until one LB holds the VIP and nothing changed for 3 adverts + 0.3 s.

    A drill must start from a settled pair: right after a repair, a preempting LB takes the VIP
    back within about an advert interval, and that move would land inside the next drill.
    ``exclude``: a crashed LB whose namespace still shows the stale VIP.
    """
    quiet = 3 * _advert_s(target) + 0.3
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


def _healthy_before(result: DrillResult, samples: Sequence[Sample], t0: float) -> None:
    """Add a check that the client saw no failure before the fault, so an earlier drill's
    after-effects (e.g. a stale ARP entry on the edge) are not counted as this drill's."""
    # Only requests that had finished before the fault: those in flight at it belong to it.
    before = [s for s in samples if s.t + s.latency < t0]
    result.checks["client healthy before the fault"] = bool(before) and all(s.ok for s in before)


def round_robin(target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig) -> DrillResult:
    """Drill 1: with nothing broken, answers alternate between the web nodes.

    The requests go one after another (a sequential probe): what a balancer hands out in turn
    is only seen in turn when requests do not overlap.
    """
    result = _result("round-robin", "Round robin across the web nodes", target, stack)
    probe = replace(probe, sequential=True, max_requests=ROUND_ROBIN_REQUESTS)
    rec = Recorder(target, probe)
    bound = ROUND_ROBIN_REQUESTS * (probe.total_timeout + probe.interval) + 1.0
    with rec.observing(bound) as (_watcher, samples):
        assert rec.run is not None
        rec.run.wait(bound + 5.0)
    m = analysis.metrics(samples)
    changed, pairs = analysis.alternation(samples)
    result.figures = {**m.to_json(), "alternating_pairs": changed, "pairs": pairs}
    ratio = changed / pairs if pairs else 0.0
    result.figures["alternation"] = round(ratio, 3)
    result.checks = {
        "no failed request": m.failed == 0,
        f"every web node answered ({len(target.web_names)})": set(m.backends)
        == set(target.web_names),
        f"alternation >= {bounds.min_alternation}": ratio >= bounds.min_alternation,
    }
    return _finish(result, rec, samples)


def _master_and_backups(target: DrillTarget, holders: Sequence[str]) -> tuple[str, list[str]]:
    """The LB holding the VIP now (the preferred master if none is seen yet), and the others,
    highest priority first: the first of them is the one that should take over."""
    master = holders[0] if holders else target.lb_names[0]
    return master, [n for n in target.lb_names if n != master]


def _holder_among(holders: Sequence[str], candidates: Sequence[str]) -> bool:
    """True when exactly one LB holds the VIP and it is one of ``candidates``."""
    return len(holders) == 1 and holders[0] in candidates


def lb_hard_failure(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig, rng: random.Random
) -> DrillResult:
    """Drill 2: the master LB freezes and dies; the VIP moves; what did the client see?"""
    result = _result("lb-hard-failure", "Hard failure of the master LB", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(15.0) as (watcher, samples):
        master, backups = _master_and_backups(target, watcher.holders)
        # The kill lands at a random phase of the advert cycle, as a real crash would.
        time.sleep(0.8 + rng.uniform(0, _advert_s(target)))
        t0 = target.crash_host(master)
        rec.mark("inject", f"{master}: SIGSTOP all processes, then SIGKILL", master, t0)
        # The crashed LB's namespace still shows the VIP (nobody removed it): not a holder.
        moved = watcher.wait_for(lambda h: any(b in h for b in backups), 10.0)
        time.sleep(1.2)
        new_master = [h for h in watcher.holders if h != master]
    gain = analysis.first_vip_gain(rec.events, t0, exclude=master)
    after = analysis.window(samples, t0 - 0.3)
    m = analysis.metrics(after)
    result.figures = {
        **m.to_json(),
        "master": master,
        "new_master": new_master[0] if len(new_master) == 1 else new_master,
        # The backup with the highest priority has the shortest master-down timer.
        "expected_new_master": backups[0],
        "vip_move_s": round(gain.t - t0, 4) if gain else None,
    }
    result.checks = {
        "VIP moved to one other LB": moved is not None and _holder_among(new_master, backups),
        "client recovered": m.recovered,
        f"outage < {bounds.max_lb_outage_s}s": m.outage_s < bounds.max_lb_outage_s,
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def master_returns(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig, host: str
) -> DrillResult:
    """Drill 5: the failed LB comes back; the VIP stays (nopreempt) or returns (preempt)."""
    result = _result("master-returns", "The failed master returns", target, stack)
    rec = Recorder(target, probe)
    preempt = bool(target.settings.get("vrrp_preempt", False))
    with rec.observing(15.0) as (watcher, samples):
        # The crashed LB's namespace may still show the VIP (nobody removed it): not a holder.
        holder_before = [h for h in watcher.holders if h != host]
        time.sleep(0.5)
        t0 = target.restore_host(host)
        rec.mark("restore", f"{host}: haproxy + keepalived started again", host, t0)
        # Long enough for a preempting master: its start-up (VRRP's start-up delay first), then
        # the takeover timer.
        startup = float(target.settings.get("vrrp_startup_delay_s") or 0.0)
        settle = startup + max(2.0, 5 * _advert_s(target) + 1.5)
        # nopreempt: the VIP stays where it is. preempt: it goes to the highest priority of the
        # holder and the returning LB (lb_names is in priority order).
        expected = list(holder_before)
        if preempt:
            candidates = {host, *holder_before}
            expected = [next(n for n in target.lb_names if n in candidates)]
            watcher.wait_for(lambda h: h == expected, settle + 5)
        time.sleep(settle)
        holder_after = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0))
    result.figures = {
        **m.to_json(),
        "preempt": preempt,
        "holder_before": holder_before,
        "holder_after": holder_after,
        "vip_moves": analysis.vip_moves(rec.events, t0),
    }
    result.checks = {
        f"VIP on {expected} ({'preempt' if preempt else 'nopreempt'})": holder_after == expected,
        "client recovered": m.recovered,
    }
    return _finish(result, rec, samples)


def haproxy_death(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig
) -> DrillResult:
    """Drill 3: HAProxy dies on the master, the host stays up; the tracked process moves the VIP."""
    result = _result("haproxy-death", "HAProxy dies on the master", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(15.0) as (watcher, samples):
        master, backups = _master_and_backups(target, watcher.holders)
        time.sleep(0.8)
        t0 = target.kill_daemon(master, "haproxy")
        rec.mark("inject", f"{master}: SIGKILL haproxy", master, t0)
        moved = watcher.wait_for(lambda h: _holder_among(h, backups), 10.0)
        time.sleep(1.0)
        t1 = target.start_daemon(master, "haproxy")
        rec.mark("restore", f"{master}: haproxy started again", master, t1)
        if target.settings.get("vrrp_preempt"):
            # With preempt the repaired LB takes the VIP back: keep probing through that move.
            watcher.wait_for(lambda h: h == [master], 5 * _advert_s(target) + 3.0)
        time.sleep(0.5)
    gain = analysis.first_vip_gain(rec.events, t0, exclude=master)
    m = analysis.metrics(analysis.window(samples, t0 - 0.3, t1))
    back = analysis.metrics(analysis.window(samples, t1))
    result.figures = {
        **m.to_json(),
        "master": master,
        "vip_move_s": round(gain.t - t0, 4) if gain else None,
        "failed_after_repair": back.failed,
    }
    result.checks = {
        "VIP moved to one other LB": moved is not None,
        "client recovered": m.recovered,
        f"outage < {bounds.max_haproxy_outage_s}s": m.outage_s < bounds.max_haproxy_outage_s,
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def app_crash(target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig) -> DrillResult:
    """Drill 4: one web node's app (uvicorn) dies; HAProxy routes around it."""
    result = _result("app-crash", "A web node's app crashes", target, stack)
    rec = Recorder(target, probe)
    web = target.web_names[0]
    interval = float(target.settings.get("health_check_interval_ms", 2000)) / 1000
    fall = int(target.settings.get("health_check_fall", 3))
    with rec.observing(30.0) as (_watcher, samples):
        time.sleep(0.8)
        t0 = target.kill_daemon(web, "uvicorn")
        rec.mark("inject", f"{web}: SIGKILL uvicorn (nginx stays up)", web, t0)
        # Until the health checks mark the node DOWN, and a margin after.
        time.sleep(interval * (fall + 1) + 1.0)
        t1 = target.start_daemon(web, "uvicorn")
        rec.mark("restore", f"{web}: uvicorn started again", web, t1)
        target.wait_backends(30.0)
        rec.mark("note", "every web node UP again")
        time.sleep(0.3)
    m = analysis.metrics(analysis.window(samples, t0))
    result.figures = {**m.to_json(), "web": web}
    result.checks = {
        f"failed requests <= {bounds.max_app_crash_failures}": m.failed
        <= bounds.max_app_crash_failures,
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def all_webs_down(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig
) -> DrillResult:
    """Drill 6: every web node is down; the client gets a clear 503 quickly, not a hang.

    The probe waits up to 3 s per request here (not its usual 300 ms), so a slow answer shows
    as its real latency instead of a timeout: HAProxy delays a retry to the same server by
    min(timeout connect, 1 s) after a refused connection.
    """
    result = _result("all-webs-down", "Every web node down", target, stack)
    patient = replace(probe, total_timeout=max(probe.total_timeout, 3.0))
    rec = Recorder(target, patient)
    with rec.observing(30.0) as (_watcher, samples):
        time.sleep(0.8)
        t0 = time.time()
        for web in target.web_names:
            target.crash_host(web)
        rec.mark("inject", "every web node: nginx + uvicorn killed", None, t0)
        time.sleep(2.5)
        t1 = time.time()
        for web in target.web_names:
            target.restore_host(web)
        rec.mark("restore", "web daemons started again", None, t1)
        target.wait_backends(30.0)
        rec.mark("note", "every web node UP again")
        time.sleep(0.3)
    during = analysis.window(samples, t0, t1)
    first = analysis.first_status_after(samples, 503, t0)
    m = analysis.metrics(during)
    time_to_503 = round(first.t + first.latency - t0, 4) if first else None
    slow = [s for s in during if s.latency > probe.total_timeout]
    last_second = analysis.window(samples, t1 - 1.0, t1)
    result.figures = {
        **m.to_json(),
        "time_to_503_s": time_to_503,
        f"slower_than_{int(1000 * probe.total_timeout)}ms": len(slow),
        "answered_by": sorted({s.lb for s in during if s.lb}),
    }
    result.checks = {
        f"a 503 within {bounds.max_time_to_503_s}s": time_to_503 is not None
        and time_to_503 <= bounds.max_time_to_503_s,
        f"no answer slower than {bounds.max_503_latency_s}s (no hang)": m.max_latency_s
        <= bounds.max_503_latency_s,
        "a fast 503 for every request once HAProxy marked the nodes DOWN": bool(last_second)
        and all(s.status == 503 and s.latency < probe.total_timeout for s in last_second),
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def partition(
    target: DrillTarget,
    stack: str,
    bounds: Bounds,
    probe: ProbeConfig,
    cut_s: float | None = None,
) -> DrillResult:
    """Issue 6: VRRP between the LBs is cut (both may claim the VIP), then healed.

    The LBs settle on one owner within a few adverts; what can lag is the edge's ARP entry for the
    VIP, which the second master's gratuitous ARPs pointed at itself during the cut. So the client
    is watched past ``bounds.max_heal_s``: a stale entry shows as timeouts until it ages out.
    """
    result = _result("partition", "VRRP partition between the LBs, then healed", target, stack)
    # Long enough for the backup's master-down timer (at most 4 adverts) to expire: the cut must
    # really split the pair, also with the tutorial's 1 s adverts.
    cut_s = cut_s if cut_s is not None else max(3.0, 4 * _advert_s(target) + 1.0)
    rec = Recorder(target, probe)
    with rec.observing(cut_s + bounds.max_heal_s + 15.0) as (watcher, samples):
        time.sleep(0.8)
        holder_before = list(watcher.holders)
        t0 = target.set_vrrp_partition(True)
        rec.mark("inject", "VRRP between the LBs dropped at the switch", None, t0)
        split = watcher.wait_for(lambda h: len(h) >= 2, cut_s)
        remaining = cut_s - (time.time() - t0)
        if remaining > 0:
            time.sleep(remaining)
        t1 = target.set_vrrp_partition(False)
        rec.mark("restore", "VRRP passes again", None, t1)
        single = watcher.wait_for(lambda h: len(h) == 1, 10.0)
        time.sleep(max(0.0, t1 + bounds.max_heal_s + 1.0 - time.time()))
        owner_after = list(watcher.holders)
    heal = round(single - t1, 4) if single else None
    m = analysis.metrics(analysis.window(samples, t0))
    after_heal = analysis.window(samples, t1)
    failed_after_heal = [s for s in after_heal if not s.ok]
    # Requests started once the bound has passed must all succeed.
    late = analysis.window(samples, t1 + bounds.max_heal_s)
    result.figures = {
        **m.to_json(),
        "holder_before": holder_before,
        "both_claimed_vip": split is not None,
        "single_owner_after_heal_s": heal,
        "owner_after_heal": owner_after,
        "failed_after_heal": len(failed_after_heal),
        "last_failure_after_heal_s": (
            round(max(s.t for s in failed_after_heal) - t1, 4) if failed_after_heal else None
        ),
    }
    result.checks = {
        f"exactly one VIP owner within {bounds.max_heal_s}s of healing": heal is not None
        and heal <= bounds.max_heal_s
        and len(owner_after) == 1,
        f"client served again within {bounds.max_heal_s}s of healing": bool(late)
        and all(s.ok for s in late),
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def load_run(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig, seconds: float = 60.0
) -> DrillResult:
    """Issue 6: the request loop plus a CPU hog on every core; the fast timers must not flap."""
    result = _result("load-run", f"{seconds:.0f}s of requests with every core busy", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(seconds + 10) as (watcher, samples):
        t0 = rec.mark("inject", f"CPU hog on every core for {seconds:.0f}s")
        with target.cpu_hog(seconds):
            time.sleep(seconds)
        t1 = rec.mark("restore", "CPU hog stopped")
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0, t1))
    moves = analysis.vip_moves(rec.events, t0)
    result.figures = {**m.to_json(), "vip_moves": moves, "holders_at_end": holders}
    result.checks = {"no VIP move": moves == 0, "no failed request": m.failed == 0}
    return _finish(result, rec, samples)


def detection_s(settings: dict[str, Any]) -> float:
    """How long the backup waits before it takes over from a silent master (skew left out):
    BFD's interval x multiplier with fast detection, else the master-down timer's adverts."""
    if settings.get("vrrp_fast_detection"):
        return float(settings["bfd_interval_ms"] * settings["bfd_multiplier"]) / 1000
    adverts = int(settings.get("vrrp_down_timer_adverts") or STANDARD_DOWN_TIMER_ADVERTS)
    return adverts * float(settings["vrrp_advert_interval_ms"]) / 1000


def lb_stall(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig, stall_s: float = 0.05
) -> DrillResult:
    """Issue 15: the master stops for ``stall_s`` (SIGSTOP, then SIGCONT) and lives on.

    A stall shorter than the detection time must leave the pair as it is; a longer one looks
    exactly like a death for that long, and the VIP moving is then what the setting trades.
    """
    result = _result("lb-stall", f"The master LB stalls for {stall_s * 1000:.0f} ms", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(10.0) as (watcher, samples):
        master, _backups = _master_and_backups(target, watcher.holders)
        time.sleep(0.8)
        t0, stopped = target.stall_host(master, stall_s)
        rec.mark(
            "inject", f"{master}: SIGSTOP all processes for {stopped * 1000:.0f} ms", master, t0
        )
        time.sleep(3.0)
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0 - 0.3))
    moves = analysis.vip_moves(rec.events, t0)
    detect = detection_s(target.settings)
    result.figures = {
        **m.to_json(),
        "master": master,
        "stopped_s": round(stopped, 4),
        "detection_s": detect,
        "vip_moves": moves,
        "holders_after": holders,
    }
    if moves:
        result.notes.append(
            f"the VIP moved {moves} time(s): a stall of {stopped * 1000:.0f} ms against "
            f"{detect * 1000:.0f} ms of detection"
            + (" (longer: the trade of fast detection)" if stopped >= detect else " (shorter!)")
        )
    result.checks = {
        "one VIP owner after": len(holders) == 1,
        "client recovered": m.recovered,
        "no VIP move when the stall is shorter than detection": stopped >= detect or moves == 0,
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


def bfd_loss(
    target: DrillTarget, stack: str, bounds: Bounds, probe: ProbeConfig, cut_s: float = 3.0
) -> DrillResult:
    """Issue 15: BFD between the LBs is dropped while VRRP passes, then passes again.

    Both LBs then believe their peer dead and run at the top priority; VRRP must still keep one
    owner, or recover to one cleanly once BFD is back.
    """
    result = _result("bfd-loss", "BFD between the LBs lost, VRRP passing", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(cut_s + bounds.max_heal_s + 10.0) as (watcher, samples):
        time.sleep(0.8)
        t0 = target.set_bfd_loss(True)
        rec.mark("inject", "BFD between the LBs dropped at the switch", None, t0)
        split = watcher.wait_for(lambda h: len(h) >= 2, cut_s)
        time.sleep(max(0.0, t0 + cut_s - time.time()))
        t1 = target.set_bfd_loss(False)
        rec.mark("restore", "BFD passes again", None, t1)
        time.sleep(bounds.max_heal_s + 1.0)
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0))
    late = analysis.window(samples, t1 + bounds.max_heal_s)
    result.figures = {
        **m.to_json(),
        "vip_moves_during_loss": analysis.vip_moves([e for e in rec.events if e.t < t1], t0),
        "vip_moves_after": analysis.vip_moves(rec.events, t1),
        "both_claimed_vip": split is not None,
        "holders_after": holders,
    }
    result.checks = {
        "one VIP owner after": len(holders) == 1,
        f"client served {bounds.max_heal_s}s after BFD is back": bool(late)
        and all(s.ok for s in late),
    }
    _healthy_before(result, samples, t0)
    return _finish(result, rec, samples)


#: Drill names in the order a full run uses (each leaves the lab as it found it, except that
#: the VIP may sit on the other LB with nopreempt).
ALL = (
    "round-robin",
    "app-crash",
    "all-webs-down",
    "haproxy-death",
    "lb-hard-failure",
    "master-returns",
    "partition",
)
#: Run only when asked: the load run, and the fast-detection drills (issue 15).
EXTRA = ("load-run", "lb-stall", "bfd-loss")


def run_drills(
    target: DrillTarget,
    stack: str,
    names: Sequence[str] = ALL,
    *,
    bounds: Bounds | None = None,
    probe: ProbeConfig | None = None,
    seed: int | None = None,
    on_result: Callable[[DrillResult], None] | None = None,
    load_seconds: float = 60.0,
) -> list[DrillResult]:
    """Run drills in order; ``master-returns`` brings back the LB ``lb-hard-failure`` killed."""
    bounds = bounds or Bounds()
    probe = probe or ProbeConfig(url=target.public_url)
    rng = random.Random(seed)  # noqa: S311 - a kill-phase jitter, not a secret
    results: list[DrillResult] = []
    crashed: str | None = None
    for name in names:
        settle(target, exclude=crashed)
        if name == "round-robin":
            r = round_robin(target, stack, bounds, probe)
        elif name == "lb-hard-failure":
            r = lb_hard_failure(target, stack, bounds, probe, rng)
            crashed = str(r.figures["master"])
        elif name == "master-returns":
            if crashed is None:
                # Nothing failed before: crash the master first (not measured here).
                with VipWatcher(target) as w:
                    crashed = w.holders[0] if w.holders else target.lb_names[0]
                target.crash_host(crashed)
                time.sleep(max(1.0, 5 * _advert_s(target)))
            r = master_returns(target, stack, bounds, probe, crashed)
            crashed = None
        elif name == "haproxy-death":
            r = haproxy_death(target, stack, bounds, probe)
        elif name == "app-crash":
            r = app_crash(target, stack, bounds, probe)
        elif name == "all-webs-down":
            r = all_webs_down(target, stack, bounds, probe)
        elif name == "partition":
            r = partition(target, stack, bounds, probe)
        elif name == "load-run":
            r = load_run(target, stack, bounds, probe, load_seconds)
        elif name == "lb-stall":
            r = lb_stall(target, stack, bounds, probe)
        elif name == "bfd-loss":
            r = bfd_loss(target, stack, bounds, probe)
        else:
            raise ValueError(f"unknown drill {name!r} (known: {', '.join(ALL + EXTRA)})")
        results.append(r)
        if on_result is not None:
            on_result(r)
    if crashed is not None:
        target.restore_host(crashed)
    return results

"""A drill target that replays a script instead of running a lab: who holds the VIP, which
daemons are down, and what the client sees at each moment. The drills run against it unchanged,
so their logic and bounds are tested in the ordinary test run, without root, namespaces or VMs.

Time is the script's own (:class:`ScriptClock`): the drill modules' ``time`` is patched with it
(:func:`use_script_clock`), so a drill's sleeps take no wall time and every figure follows from
the script alone. The one real thread, the drills' VIP watcher, is kept in step with it: the
clock stops at each scripted VIP change until the watcher has seen it.

A well-behaved lab is the default; each keyword of :class:`ScriptedTarget` that names a
misbehaviour (a VIP that never moves, a 503 that never comes, two masters that stay...) turns
one part of it bad, so a test can show that the drill fails on the check that should catch it.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from halab.drills import core, lb, load, network, web
from halab.drills.baseline import Baseline
from halab.drills.core import Bounds, DrillRun
from halab.model.drill_settings import DrillSettings, TargetKind, drill_settings
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from halab.target.probe import HTTP_ERROR, OK, REFUSED, TIMEOUT, ProbeConfig, Sample

#: What the scripted lab is configured with where the dev stack's values would make a test slow:
#: 100 ms adverts (takeover 0.4 s) and health checks every 100 ms (a node dropped in 0.3 s).
SCRIPTED_CONFIG: dict[str, Any] = {
    "vrrpAdvertIntervalMs": 100,
    "healthCheckIntervalMs": 100,
    "healthCheckFall": 2,
}

#: The probe the drills start from; a baseline slows it for a slow lab (as on VMs).
FASTEST = ProbeConfig("https://192.0.2.10/", interval=0.1, connect_timeout=1.0, total_timeout=2.0)

#: Where the script's clock starts (wall-clock seconds): a fixed moment, so every run of a test
#: sees the same sample times.
EPOCH = 1_700_000_000.0

#: The modules whose ``time`` the script's clock replaces: every drill and what they share.
DRILL_MODULES = (core, web, lb, network, load)

#: How long the clock waits (wall time) for the VIP watcher to see a change before it gives up:
#: far more than the watcher's 10 ms polls, so only a watcher that died hits it.
WATCHER_TIMEOUT_S = 5.0


def scripted_settings(**config: Any) -> DrillSettings:
    """The drill settings of the dev stack with :data:`SCRIPTED_CONFIG` and ``config`` (config
    keys, as a stack file writes them), built as every target builds them."""
    values = {**read_stack("dev").values, **SCRIPTED_CONFIG, **config}
    spec = load_spec(values, stack="scripted", secrets_present=frozenset({"fortigateToken"}))
    return drill_settings(spec, TargetKind.NAMESPACES)


class ScriptClock:
    """The script's time, standing in for the ``time`` module of the drills.

    :meth:`sleep` moves the time on at once. A VIP change the script put in the future
    (:meth:`change_at`) is a stop on the way: the clock stands there until the VIP watcher has
    polled the holders three times (the first poll may have read them just before the change;
    the third starts only after the second has stamped and recorded what it saw), so the
    watcher's events carry the scripted moment, not the end of the sleep.
    """

    def __init__(self, start: float = EPOCH) -> None:
        self.now = start
        self._start = start
        #: Moments of VIP changes still ahead of (or at) the clock, in order.
        self._changes: list[float] = []
        #: VIP readers open now: only with one is there a watcher to wait for.
        self.readers = 0
        self._polls = 0
        self._polled = threading.Condition()

    def time(self) -> float:
        """The script's wall clock."""
        return self.now

    def monotonic(self) -> float:
        """The script's monotonic clock (the same time, from zero)."""
        return self.now - self._start

    def sleep(self, seconds: float) -> None:
        """Move the time on by ``seconds``, stopping at each VIP change on the way."""
        end = self.now + max(0.0, seconds)
        while self._changes and self._changes[0] <= end:
            self.now = max(self.now, self._changes.pop(0))
            self._wait_for_watcher()
        self.now = end

    def change_at(self, t: float) -> None:
        """Note a VIP change at ``t``, for :meth:`sleep` to stop at."""
        bisect.insort(self._changes, t)

    def polled(self) -> None:
        """Called by the VIP reader on each poll."""
        with self._polled:
            self._polls += 1
            self._polled.notify_all()

    def _wait_for_watcher(self) -> None:
        if not self.readers:
            return
        with self._polled:
            target = self._polls + 3
            if not self._polled.wait_for(lambda: self._polls >= target, WATCHER_TIMEOUT_S):
                raise RuntimeError("the VIP watcher stopped polling the scripted holders")


def use_script_clock(monkeypatch: pytest.MonkeyPatch, start: float = EPOCH) -> ScriptClock:
    """A :class:`ScriptClock` that every drill module reads its time from (for the test)."""
    clock = ScriptClock(start)
    for module in DRILL_MODULES:
        monkeypatch.setattr(module, "time", clock)
    return clock


class Answer(NamedTuple):
    """What the client sees of one request: outcome, web node, latency and HTTP status.

    A latency longer than the probe's total timeout (``math.inf``: no answer ever) is that
    probe's timeout, as the real probe records it.
    """

    outcome: str
    backend: str | None
    latency: float
    status: int | None = None


@dataclass
class ScriptedRun:
    """A probe whose samples are the script's answers at each of its slots."""

    cfg: ProbeConfig
    answer: Callable[[float, int], Answer]
    clock: ScriptClock
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock.now

    def wait(self, timeout: float) -> None:
        """Until the probe's requests are all sent (``max_requests``), ``timeout`` at most."""
        if self.cfg.max_requests is not None:
            self.clock.sleep(min(timeout, self.cfg.max_requests * self.cfg.interval))

    def stop(self) -> list[Sample]:
        """Every slot from the start to now, answered by the script (one after another for a
        sequential probe: a request starts at its slot or when the previous one ended)."""
        samples: list[Sample] = []
        t = self.started
        seq = 0
        while t <= self.clock.now and (
            self.cfg.max_requests is None or seq < self.cfg.max_requests
        ):
            samples.append(self._sample(seq, t))
            seq += 1
            t = self.started + seq * self.cfg.interval
            if self.cfg.sequential:
                t = max(t, samples[-1].t + samples[-1].latency)
        return samples

    def _sample(self, seq: int, t: float) -> Sample:
        answer = self.answer(t, seq)
        if answer.latency > self.cfg.total_timeout:
            return Sample(seq, t, self.cfg.total_timeout, TIMEOUT)
        status = (
            answer.status if answer.status is not None else (200 if answer.outcome == OK else None)
        )
        return Sample(seq, t, answer.latency, answer.outcome, status, answer.backend)


@dataclass
class Fault:
    """A host, or one daemon of it (``host`` for the whole host), down from ``start`` until
    ``end`` (None: still down)."""

    host: str
    what: str
    start: float
    end: float | None = None

    def active(self, t: float) -> bool:
        """Down at ``t``."""
        return self.start <= t and (self.end is None or t < self.end)


class ScriptedTarget:
    """Two LBs, two web nodes; faults take effect on the script's own clock.

    Every answer is a function of the time it is asked about, so a probe stopped after a repair
    still answers its earlier requests as the lab was then. The keywords set the lab's timings
    (a well-behaved lab) or, where their doc says so, make it misbehave.
    """

    def __init__(
        self,
        settings: DrillSettings,
        *,
        clock: ScriptClock,
        normal_latency: float,
        vip_moves_after: float | None,
        haproxy_tracked_after: float | None = 0.2,
        node_down_after: float | None = None,
        retries_502: bool = True,
        answers_per_turn: int = 1,
        no_web_503_s: float = 0.2,
        split_heals_after: float | None = 0.2,
        stale_arp_s: float = 0.0,
        two_masters_on_return: bool = False,
        bfd_loss_splits: bool = False,
        flaps_after: float | None = None,
        real_detection_s: float | None = None,
    ) -> None:
        """The lab's timings, each with the value of a well-behaved lab where it has a default;
        a misbehaviour where noted.

        - ``normal_latency``: every answer with nothing wrong.
        - ``vip_moves_after``: from the master's crash until the backup holds the VIP (None:
          it never does).
        - ``haproxy_tracked_after``: from HAProxy's death on the master until keepalived moves
          the VIP (None: it does not track HAProxy).
        - ``node_down_after``: from a web node's (or its app's) death until HAProxy drops it
          (None: its checks' detection time, as configured; ``math.inf``: never, as where the
          check reaches only nginx).
        - ``retries_502``: HAProxy sends a dead app's 502 on to another node (False: the client
          gets it).
        - ``answers_per_turn``: requests each web node answers in a row (1: round robin).
        - ``no_web_503_s``: how long HAProxy takes to answer 503 while it still tries dead
          nodes (``math.inf``: it hangs until it drops them).
        - ``split_heals_after``: from VRRP passing again until the lower priority yields (None:
          two masters stay).
        - ``stale_arp_s``: how long the edge still sends to the LB that yielded.
        - ``two_masters_on_return``: a returning master claims the VIP and the holder keeps it.
        - ``bfd_loss_splits``: losing BFD makes the backup claim the VIP too, for good.
        - ``flaps_after``: under a CPU hog the VIP moves to the backup this long after the
          hog's start (None: it stays).
        - ``real_detection_s``: the shortest stall that moves the VIP, where the lab's
          detection is not what its settings say (None: it is).
        """
        self.lb_names = ["lb-1", "lb-2"]
        self.web_names = ["web-1", "web-2"]
        self.public_url = "https://192.0.2.10/"
        self.settings = settings
        self.clock = clock
        self.normal_latency = normal_latency
        self.vip_moves_after = vip_moves_after
        self.haproxy_tracked_after = haproxy_tracked_after
        self.node_down_after = (
            settings.haproxy_node_down_s if node_down_after is None else node_down_after
        )
        self.retries_502 = retries_502
        self.answers_per_turn = answers_per_turn
        self.no_web_503_s = no_web_503_s
        self.split_heals_after = split_heals_after
        self.stale_arp_s = stale_arp_s
        self.two_masters_on_return = two_masters_on_return
        self.bfd_loss_splits = bfd_loss_splits
        self.flaps_after = flaps_after
        self.real_detection_s = real_detection_s
        self.faults: list[Fault] = []
        #: The probes the drills started, in order.
        self.probes: list[ProbeConfig] = []
        #: (moment, holders) from the clock's start, in time order.
        self._vip: list[tuple[float, list[str]]] = [(clock.now, ["lb-1"])]
        #: Windows in which the edge sends to an LB that no longer holds the VIP (stale ARP).
        self._stale: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    # ---- the script's state ------------------------------------------------------------------

    def holders_at(self, t: float) -> list[str]:
        """The LBs holding the VIP at ``t``."""
        with self._lock:
            i = bisect.bisect_right([m for m, _ in self._vip], t)
            return list(self._vip[i - 1][1])

    def _vip_at(self, t: float, holders: list[str]) -> None:
        """From ``t``, ``holders`` hold the VIP (the watcher is made to see it then)."""
        with self._lock:
            bisect.insort(self._vip, (t, sorted(holders)), key=lambda e: e[0])
        self.clock.change_at(t)

    def _down(self, host: str, what: str, t: float) -> bool:
        """The host is down at ``t``, or the daemon ``what`` on it is."""
        return any(f.host == host and f.what in ("host", what) and f.active(t) for f in self.faults)

    def _start_fault(self, host: str, what: str) -> float:
        t = self.clock.now
        self.faults.append(Fault(host, what, t))
        return t

    def _end_faults(self, host: str, what: str) -> float:
        t = self.clock.now
        for f in self.faults:
            if f.host == host and f.what == what and f.end is None:
                f.end = t
        return t

    def _marked_down(self, web_node: str, t: float) -> bool:
        """HAProxy has taken ``web_node`` out of its pool by ``t``: it (or its app) has been
        down for ``node_down_after``."""
        since = t - self.node_down_after
        return any(
            f.host == web_node
            and f.what in ("host", "uvicorn")
            and f.active(t)
            and f.start <= since
            for f in self.faults
        )

    def _other(self, host: str) -> str:
        return next(n for n in self.lb_names if n != host)

    # ---- what the client sees ----------------------------------------------------------------

    def answer(self, t: float, seq: int) -> Answer:
        """What request ``seq``, sent at ``t``, gets: nothing while the VIP sits on a dead LB
        (or the edge still sends to one that gave it up); a refusal while it sits on an LB whose
        HAProxy is dead; else the web tier's answer."""
        holders = self.holders_at(t)
        if any(start <= t < end for start, end in self._stale):
            return Answer(TIMEOUT, None, math.inf)
        # Where both LBs claim the VIP, the edge is taken to follow the backup's gratuitous ARPs
        # (it claimed last in a split); both serve alike, so the choice shows only in stale ARP.
        lb_node = holders[-1]
        if self._down(lb_node, "host", t):
            return Answer(TIMEOUT, None, math.inf)
        if self._down(lb_node, "haproxy", t):
            return Answer(REFUSED, None, 0.001)
        return self._web_answer(t, seq)

    def _web_answer(self, t: float, seq: int) -> Answer:
        """HAProxy's answer: the node whose turn it is, among those it has not marked down.

        A dead node's turn waits out the connect timeout, then goes to a live node; a dead app's
        turn gets nginx's 502, sent on to a live node where HAProxy retries it; with no live
        node left, a 503 (slow while HAProxy still tries the dead nodes, then fast).
        """
        pool = [w for w in self.web_names if not self._marked_down(w, t)]
        live = [w for w in pool if not self._down(w, "uvicorn", t)]
        if not pool:
            return Answer(HTTP_ERROR, None, self.normal_latency, 503)
        turn = pool[(seq // self.answers_per_turn) % len(pool)]
        if self._down(turn, "host", t):
            if not live:
                return Answer(HTTP_ERROR, None, self.no_web_503_s, 503)
            connect = self.settings.haproxy_timeout_connect_s
            return Answer(OK, live[seq % len(live)], connect + self.normal_latency)
        if self._down(turn, "uvicorn", t):
            if self.retries_502 and live:
                return Answer(OK, live[seq % len(live)], 2 * self.normal_latency)
            return Answer(HTTP_ERROR, turn, self.normal_latency, 502)
        return Answer(OK, turn, self.normal_latency)

    # ---- the drill target protocol -----------------------------------------------------------

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ScriptedRun:
        """A probe answered by :meth:`answer` from now on."""
        self.probes.append(cfg)
        return ScriptedRun(cfg, self.answer, self.clock)

    @contextlib.contextmanager
    def vip_reader(self) -> Iterator[Callable[[], list[str]]]:
        """The scripted holders now; each read tells the clock the watcher polled."""

        def read() -> list[str]:
            holders = self.holders_at(self.clock.now)
            self.clock.polled()
            return holders

        self.clock.readers += 1
        try:
            yield read
        finally:
            self.clock.readers -= 1

    def crash_host(self, host: str) -> float:
        """Down until restored; a crashed master's VIP goes to the backup after
        ``vip_moves_after`` (as a dead LB's namespace is gone, it shows no VIP then)."""
        t = self._start_fault(host, "host")
        if host in self.holders_at(t) and self.vip_moves_after is not None:
            self._vip_at(t + self.vip_moves_after, [self._other(host)])
        return t

    def restore_host(self, host: str) -> float:
        """Up again at once; a returning LB takes the VIP back after VRRP's start-up delay and
        takeover with preempt (or, misbehaving, claims it beside the holder)."""
        t = self._end_faults(host, "host")
        if host in self.lb_names:
            back = t + self.settings.vrrp_startup_delay_s + self.settings.vrrp_takeover_s
            holders = self.holders_at(t)
            if self.two_masters_on_return:
                self._vip_at(back, [*holders, host])
            elif self.settings.vrrp_preempt and host == self.lb_names[0] and host not in holders:
                self._vip_at(back, [host])
        return t

    def kill_daemon(self, host: str, name: str) -> float:
        """One daemon down until started; HAProxy's death on the master moves the VIP after
        ``haproxy_tracked_after``."""
        t = self._start_fault(host, name)
        tracked = self.haproxy_tracked_after
        if name == "haproxy" and host in self.holders_at(t) and tracked is not None:
            self._vip_at(t + tracked, [self._other(host)])
        return t

    def start_daemon(self, host: str, name: str) -> float:
        """The daemon up again at once (the VIP stays where it is: nopreempt here)."""
        return self._end_faults(host, name)

    def wait_backends(self, timeout: float = 30.0, up: Sequence[str] | None = None) -> float:
        """At once: a node started again is in the pool at once."""
        return self.clock.now

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """A stall as long as the backup's detection or longer moves the VIP at once; a
        shorter one goes unnoticed."""
        t = self.clock.now
        detection = (
            self.settings.vrrp_detection_s
            if self.real_detection_s is None
            else self.real_detection_s
        )
        if host in self.holders_at(t) and seconds >= detection:
            self._vip_at(t, [self._other(host)])
        return t, seconds

    def set_vrrp_partition(self, cut: bool) -> float:
        """Cut: the backup's master-down timer runs out and it claims the VIP too. Healed: the
        lower priority yields after ``split_heals_after``, and the edge may still send to it for
        ``stale_arp_s``."""
        t = self.clock.now
        master = self.lb_names[0]
        if cut:
            self._vip_at(t + self.settings.vrrp_takeover_s, self.lb_names)
        elif self.split_heals_after is not None and len(self.holders_at(t)) > 1:
            healed = t + self.split_heals_after
            self._vip_at(healed, [master])
            self._stale.append((healed, healed + self.stale_arp_s))
        return t

    def set_bfd_loss(self, cut: bool) -> float:
        """VRRP still passes, so the owner stays (misbehaving: the backup claims the VIP too)."""
        t = self.clock.now
        if cut and self.bfd_loss_splits:
            self._vip_at(t + self.settings.vrrp_detection_s, self.lb_names)
        return t

    @contextlib.contextmanager
    def cpu_hog(self, seconds: float) -> Iterator[None]:
        """Nothing moves (misbehaving: the VIP flaps to the backup ``flaps_after`` in)."""
        if self.flaps_after is not None:
            self._vip_at(self.clock.now + self.flaps_after, [self.lb_names[1]])
        yield


def baseline(p90: float) -> Baseline:
    """A measured baseline whose slow end is ``p90`` (the probe is sized from it)."""
    return Baseline(requests=20, failed=0, p50_s=p90 * 0.8, p90_s=p90, max_s=p90 * 1.1)


def drill_run(
    target: ScriptedTarget, measured: Baseline, bounds: Bounds | None = None, **kw: Any
) -> DrillRun:
    """A run of drills against ``target``, its probe sized from ``measured`` as on VMs; ``kw``
    for the rest of :class:`DrillRun` (``load_seconds``...)."""
    return DrillRun(
        target,
        "scripted",
        bounds or Bounds(),
        measured.paced_probe(FASTEST),
        # The kill's phase in the advert cycle: the same in every run.
        random.Random(8),
        baseline=measured,
        **kw,
    )
